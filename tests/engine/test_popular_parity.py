"""The popular score has two implementations that cannot share code: the engine's Cypher
(cypher/recs/popular.cypher, popular_page.cypher) and the offline replay's numpy
(gnn.ranking.offline.popular_lists, graphrec.core.recs.popularity.decay). On one small graph,
with the same window, half-life and type weights, they score the same items alike."""

from __future__ import annotations

import numpy as np
import pytest
from neo4j import RoutingControl

from gnn.ranking.offline import popular_lists
from graphrec.core.config import InteractionSettings
from graphrec.core.export import export_snapshot
from graphrec.core.records import InteractionRow, InteractionType
from graphrec.testing import tiny_graph
from loaders.writer import GraphWriter, Source

pytestmark = pytest.mark.integration


def test_the_replays_popular_scores_are_the_querys(store) -> None:  # noqa: ANN001
    """A half-life short enough that the decay separates the items, a window that leaves the
    oldest interactions out, a skip (never counted) and an unavailable item (never listed)."""
    tiny_graph(store)
    GraphWriter(store, batch_size=10, on_error="stop", progress=False).interactions(
        [(InteractionRow(user_id="carol", item_id="heat", type=InteractionType.parse("SKIP"), ts=1900.0), Source("t", 1))])
    store.run_text("MATCH (i:Item {id: 'up'}) SET i.available = false", RoutingControl.WRITE)
    weights = InteractionSettings().score_weights
    now, window_s, half_life_s = 2000.0, 850.0, 200.0  # the window starts at 1150: alice's ratings are out

    rows = store.read("recs/popular", since=now - window_s, now=now, half_life_s=half_life_s, type_weights=weights,
                      category=None, limit=100)
    snap = export_snapshot(store, progress=False)
    available = np.array([it.available for it in snap.items])
    replay = popular_lists(snap, now, window_s, half_life_s, available, weights, top=len(rows))

    assert "up" not in dict(replay) and len(rows) >= 3
    assert [i for i, _ in replay] == [r["item_id"] for r in rows]
    assert [s for _, s in replay] == pytest.approx([r["score"] for r in rows], rel=1e-9)
