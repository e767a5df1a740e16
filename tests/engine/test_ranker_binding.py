"""The engine uses a ranker only with the GNN version it was trained on, and says why not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gnn.ranking.train import fit
from graphrec.core.config import Settings
from graphrec.core.recs import features as F
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.core.registry import Registry
from graphrec.engine.engine import Engine
from graphrec.testing import tiny_graph

pytestmark = pytest.mark.integration


def _gnn_version(reg: Registry, version: str, ids: list[str], seed: int) -> None:
    d = reg.artifact_dir(version)
    d.mkdir(parents=True)
    np.save(d / "item_embeddings.npy", np.random.default_rng(seed).standard_normal((len(ids), 8)).astype(np.float32))
    (d / "item_ids.json").write_text(json.dumps(ids))
    reg.register("gnn", version, seed=seed, config={}, metrics={"ndcg@10": 0.1, "recall@100": 0.1}, snapshot={},
                 training_seconds=1.0)


def test_a_ranker_serves_only_with_the_gnn_it_was_trained_on(store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    tiny_graph(store)
    snap = export_snapshot(store, progress=False)
    refresh(store, snap, neo4j_settings.interactions.score_weights, k=10, progress=False)
    from pydantic import SecretStr

    from graphrec.core.graph.store import resolve_password

    neo4j = neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))})
    s = neo4j_settings.model_copy(update={"var_dir": tmp_path, "neo4j": neo4j, "engine": neo4j_settings.engine.model_copy(update={
        "explore_epsilon": 0.0, "request_budget_ms": 3000.0, "source_budget_ms": 2000.0, "warm_up_s": 0.0})})
    reg = Registry(store, tmp_path / "models")
    _gnn_version(reg, "gnn-a", snap.item_ids, 1)
    _gnn_version(reg, "gnn-b", snap.item_ids, 2)
    # A ranker trained on gnn-a's candidates, enabled by its gate.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, len(F.FEATURE_NAMES))).astype(np.float32)
    fit(x, (x[:, 0] > 0).astype(np.float32), seed=1, epochs=2, progress=False).save(reg.artifact_dir("ranker-1"))
    reg.register("ranker", "ranker-1", seed=1, config={}, metrics={}, snapshot={}, training_seconds=1.0,
                 extra={"enabled": True, "gnn_version": "gnn-a"})
    reg.promote("ranker-1")
    reg.promote("gnn-b")  # the live GNN is another version

    async def go() -> tuple[list[int], list[str]]:
        e = await Engine.create(s, vectors=None, background=False)
        calls: list[int] = []
        statuses: list[str] = []
        try:
            real = e.ranker.score

            def counting(feats: np.ndarray) -> Any:
                calls.append(len(feats))
                return real(feats)

            e.ranker.score = counting  # the real scoring, counted
            await e.recommend(RecRequest("alice", first=5, context=RequestContext(now=2000.0, explore=False)))
            calls.append(-1)  # separator: the answer with gnn-b live is above
            statuses.append(getattr(e, "ranker_status", ""))
            reg.promote("gnn-a")  # the ranker's own GNN is live again
            await e.refresh_model()
            statuses.append(getattr(e, "ranker_status", ""))
            await e.recommend(RecRequest("alice", first=6, context=RequestContext(now=2000.0, explore=False)))
        finally:
            await e.close()
        return calls, statuses

    calls, statuses = asyncio.run(go())
    sep = calls.index(-1)
    assert calls[:sep] == [], "the ranker scored candidates while another GNN version was live"
    assert "not used" in statuses[0] and "gnn-a" in statuses[0] and "gnn-b" in statuses[0]
    assert calls[sep + 1:] and all(n > 0 for n in calls[sep + 1:])
    assert "in use" in statuses[1]
