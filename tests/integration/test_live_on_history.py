"""A historical dataset meets live traffic (the demo's normal first contact: MovieLens from 1998,
a few interactions recorded today): the popular list still reflects the history, its scores stay
readable, and "fresh" means created within engine.fresh_window_days of the clock (unknown
creation time: never). See graphrec.core.recs.popularity and docs/graph-model.md."""

from __future__ import annotations

import asyncio
import time

import pytest

from graphrec.core.config import Settings
from graphrec.core.records import InteractionRow, InteractionType, ItemRow
from graphrec.core.recs.candidate import SourceContext
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.engine.sources import SOURCES
from loaders.files import FileItemRow
from loaders.writer import GraphWriter, Source

pytestmark = pytest.mark.integration

T0 = 891_000_000.0  # March 1998
DAY = 86400.0
#: item -> how many users rated it in 1998 (spread over 60 days).
HISTORY = {"hit": 40, "second": 30, "third": 20, "niche-a": 2, "niche-b": 2, "quiet": 1}


def _historical_graph(store) -> None:  # noqa: ANN001
    w = GraphWriter(store, batch_size=100, on_error="stop", progress=False)
    w.items((ItemRow(id=i, title=i.title(), categories=["Drama"], created_at=T0 - 400 * DAY), Source("h", n))
            for n, i in enumerate(HISTORY, 1))
    # From a file without created_at: creation unknown, never fresh (not even once dated, here: 1998).
    w.items([(FileItemRow(id="undated", title="Undated", categories=["Drama"]), Source("h.csv", 1))])
    rows = []
    for item, n in HISTORY.items():
        for u in range(n):
            rows.append((InteractionRow(user_id=f"u{u}", item_id=item, type=InteractionType.parse("RATE"),
                                        ts=T0 + (u * 37 % 60) * DAY + len(rows), value=4.0), Source("h", len(rows) + 1)))
    w.interactions(rows)


def test_live_interactions_today_do_not_replace_the_historical_popular_list(store, neo4j_settings: Settings) -> None:  # noqa: ANN001
    _historical_graph(store)
    s = neo4j_settings.model_copy(update={"engine": neo4j_settings.engine.model_copy(
        update={"explore_epsilon": 0.0, "request_budget_ms": 5000.0, "source_budget_ms": 4000.0})})

    async def go() -> None:
        e = await Engine.create(s, vectors=None, background=False)
        try:
            history_popular = await e.popular(first=3)
            # Live traffic today: two users click the niche items (two events: the clock moves).
            now = time.time()
            for k, (user, item) in enumerate((("live-1", "niche-a"), ("live-2", "niche-b"))):
                await e.record_interaction({"user_id": user, "item_id": item, "type": "CLICK", "ts": now - k})
            await e.upsert_item({"id": "brand-new", "title": "Brand New", "categories": ["Drama"]})
            e.shared_popular.max_age_s = 0.0  # the lists are due again now
            await e.refresh_catalog(full=True)
            cat = e.catalog
            assert cat.now > now - 120  # the graph's clock is today
            # The popular list is still the catalogue's: the live clicks add to it, not replace it.
            assert history_popular == ["hit", "second", "third"]
            assert await e.popular(first=3) == ["hit", "second", "third"]
            assert cat.popular_window is not None and cat.popular_window.widened
            top_score = dict(cat.popular)["hit"]
            assert f"{top_score:.2f}" != "0.00" and top_score > 2 * dict(cat.popular)["niche-a"]
            # A newcomer (no history) is answered from it, with readable scores.
            res = await e.recommend(RecRequest("newcomer", first=5, context=RequestContext(explore=False)))
            assert res.items[0].item_id == "hit" and f"{res.items[0].score:.2f}" != "0.00"
            # Fresh: created within fresh_window_days of the clock. The 1998 items are not, the
            # item added today is, the undated one never is.
            ctx = SourceContext(store=e.store, user_id="newcomer", now=cat.now, timeout_s=4.0,
                                params={"catalog": cat, "fresh_window_s": s.engine.fresh_window_days * DAY})
            assert [c.item_id for c in await SOURCES["fresh"](ctx, 10)] == ["brand-new"]
            assert cat.items["undated"].created_at is None
        finally:
            await e.close()

    asyncio.run(go())


def test_a_busy_window_is_not_widened(store, neo4j_settings: Settings) -> None:  # noqa: ANN001
    """With at least popular_min_events interactions in the nominal window, the popular list is
    that window's, as configured (the history before it does not count)."""
    _historical_graph(store)
    s = neo4j_settings.model_copy(update={"engine": neo4j_settings.engine.model_copy(
        update={"popular_min_events": 2, "request_budget_ms": 5000.0})})  # the writes reach Neo4j, not the journal

    async def go() -> None:
        e = await Engine.create(s, vectors=None, background=False)
        try:
            now = time.time()
            for k, (user, item) in enumerate((("live-1", "niche-a"), ("live-2", "niche-b"))):
                await e.record_interaction({"user_id": user, "item_id": item, "type": "CLICK", "ts": now - k})
            e.shared_popular.max_age_s = 0.0  # the lists are due again now
            await e.refresh_catalog(full=True)
            assert e.catalog.popular_window is not None and not e.catalog.popular_window.widened
            assert {i for i, _ in e.catalog.popular[:2]} == {"niche-a", "niche-b"}
        finally:
            await e.close()

    asyncio.run(go())
