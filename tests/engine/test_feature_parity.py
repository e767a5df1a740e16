"""Train/serve parity: one request's ranker features, computed by the engine against the real
Neo4j and by the offline replay (gnn.ranking.offline) from a snapshot of the same graph,
are equal, sessions included; and the answer the engine serves is the one the replay
computes, with a promotion active and with exploration on."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from neo4j import RoutingControl

from graphrec.core.config import Promotion, Settings
from graphrec.core.recs import features as F
from graphrec.core.recs.dcn import DCNv2
from graphrec.core.recs.model import LiveModel
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.engine.ranker import LoadedRanker
from loaders.synthetic import SyntheticCatalog, SyntheticSpec
from loaders.writer import GraphWriter

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _latest_session(store: Any, user_id: str) -> list[str]:
    """The user's latest session's items (not skipped), oldest first: what a client in that
    session passes as ``sessionItemIds``."""
    rows = store.run_text("MATCH (:User {id: $u})-[r]->(i:Item) WHERE r.session IS NOT NULL "
                          "RETURN i.id AS item, r.session AS session, r.ts AS ts, type(r) AS type ORDER BY r.ts, i.id",
                          RoutingControl.READ, u=user_id)
    latest = rows[-1]["session"]
    out: list[str] = []
    for r in rows:
        if r["session"] == latest and r["type"] != "SKIPPED":
            if r["item"] in out:
                out.remove(r["item"])
            out.append(r["item"])
    return out


@dataclasses.dataclass
class Case:
    """One user's home-feed request, servable by the engine (``settings``) and by the replay."""

    settings: Settings
    world: Any  # gnn.ranking.offline.World
    u: int
    user_id: str
    session: list[str]
    model: LiveModel
    ranker: LoadedRanker


def _case(store: Any, neo4j_settings: Settings, tmp_path: Path) -> Case:
    """A synthetic graph in the real Neo4j with its neighbour lists, its snapshot's replay (the
    history's last instant), the user with the longest history in their latest session, a
    random model and an untrained ranker bound to it; engine settings without exploration."""
    from pydantic import SecretStr

    from gnn.neighbours import refresh
    from gnn.ranking.offline import World
    from graphrec.core.export import export_snapshot
    from graphrec.core.graph.store import resolve_password

    cat = SyntheticCatalog(SyntheticSpec(users=120, items=150, interactions=3000, categories=6, seed=7))
    w = GraphWriter(store, batch_size=2000, progress=False)
    w.users(cat.users())
    w.items(cat.items())
    w.interactions(cat.interactions())
    snap = export_snapshot(store, progress=False)
    refresh(store, snap, neo4j_settings.interactions.score_weights, k=50, progress=False)
    u = int(np.bincount(snap.user).argmax())
    user_id = snap.user_ids[u]
    session = _latest_session(store, user_id)
    assert session
    emb = np.random.default_rng(1).standard_normal((snap.num_items, 16)).astype(np.float32)
    model = LiveModel("gnn-test", list(snap.item_ids), emb / np.linalg.norm(emb, axis=1, keepdims=True))
    torch.manual_seed(0)  # the ranker's (untrained) weights: the same scores every run
    # Trained on this GNN: the engine uses it.
    ranker = LoadedRanker("ranker-test", DCNv2(len(F.FEATURE_NAMES)), np.zeros(len(F.FEATURE_NAMES)),
                          np.ones(len(F.FEATURE_NAMES)), True, gnn_version="gnn-test")
    neo4j = neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))})
    s = neo4j_settings.model_copy(update={"var_dir": tmp_path, "neo4j": neo4j, "engine": neo4j_settings.engine.model_copy(
        update={"explore_epsilon": 0.0, "request_budget_ms": 5000.0, "source_budget_ms": 5000.0, "warm_up_s": 0.0})})
    world = World.build(snap, np.ones(snap.num_interactions, dtype=bool), model, engine=s.engine,
                        type_weights=s.interactions.score_weights)
    return Case(s, world, u, user_id, session, model, ranker)


def test_one_requests_features_are_the_same_online_and_offline(store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    c = _case(store, neo4j_settings, tmp_path)
    s, world, u, user_id, session, model, ranker = c.settings, c.world, c.u, c.user_id, c.session, c.model, c.ranker

    # Offline: the replay of this user's home feed at the history's last instant, in their latest session.
    cands, vec = world.candidates(u)
    offline = dict(zip([c.item_id for c in cands], world.features(u, cands, vec), strict=True))

    async def online() -> dict[str, np.ndarray]:
        e = await Engine.create(s, vectors=None, background=False)
        seen: list[tuple[list[str], np.ndarray]] = []
        try:
            e.model, e.ranker = model, ranker
            real = ranker.features

            def recording(cands: list[Any], *a: Any) -> np.ndarray:
                x = real(cands, *a)
                seen.append(([c.item_id for c in cands], x))
                return x

            ranker.features = recording  # the real computation, recorded
            await e.recommend(RecRequest(user_id, first=20, context=RequestContext(
                now=world.now, session_item_ids=tuple(session), explore=False)))
        finally:
            await e.close()
        assert len(seen) == 1
        return dict(zip(seen[0][0], seen[0][1], strict=True))

    served = asyncio.run(online())
    assert set(served) == set(offline), (sorted(set(served) - set(offline))[:5], sorted(set(offline) - set(served))[:5])
    names = F.FEATURE_NAMES
    sess = names.index("session_sim")
    assert any(served[i][sess] != 0 for i in served)  # the session counted
    assert any(served[i][names.index("session.present")] for i in served)
    for item, row in served.items():
        np.testing.assert_allclose(row, offline[item], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{item}: " + ", ".join(f"{n}: {a} vs {b}" for n, a, b in zip(
                                       names, row.tolist(), offline[item].tolist(), strict=True) if abs(a - b) > 1e-6))


def _served_order(s: Settings, model: LiveModel, ranker: LoadedRanker, user_id: str, now: float, session: list[str],
                  explore: bool) -> list[tuple[str, tuple[str, ...]]]:
    """The engine's answer (item, sources) to the user's home feed at ``now`` in ``session``, on a
    fresh engine (no result cache) with settings ``s``, no vector index (``ann`` from memory)."""

    async def run() -> list[tuple[str, tuple[str, ...]]]:
        e = await Engine.create(s, vectors=None, background=False)
        try:
            e.model, e.ranker = model, ranker
            res = await e.recommend(RecRequest(user_id, first=20, context=RequestContext(
                now=now, session_item_ids=tuple(session), explore=explore)))
        finally:
            await e.close()
        # No vector index here: ann is the exact scan over the model in memory, as in the replay.
        assert set(res.degraded_reasons) <= {"vectors"}, res.degraded_reasons
        return [(r.item_id, r.sources) for r in res.items]

    return asyncio.run(run())


def test_promotions_and_exploration_change_the_served_and_the_replayed_answer_alike(
        store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    """The replay (World.serve) answers a request as the engine does, rules included: the same
    items in the same order without promotions, with an active promotion (which changes the
    order), and with exploration when the replay is given the engine's seed."""
    from gnn.ranking.offline import World

    c = _case(store, neo4j_settings, tmp_path)
    s, world, u, user_id, session, model, ranker = c.settings, c.world, c.u, c.user_id, c.session, c.model, c.ranker

    def scorer(u: int, cands: list[Any], vec: np.ndarray | None) -> np.ndarray:
        return ranker.score(world.features(u, cands, vec))

    def replayed(w: World, explore_seed: int | None = None) -> list[tuple[str, tuple[str, ...]]]:
        chosen, _ = w.serve(u, scorer, 20, explore_seed)
        return [(c.item_id, tuple(sorted(c.sources))) for c in chosen]

    def ids(answer: list[tuple[str, tuple[str, ...]]]) -> list[str]:
        return [i for i, _ in answer]

    # Without promotions or exploration: the same answer.
    plain = ids(replayed(world))
    assert len(plain) == 20
    assert ids(_served_order(s, model, ranker, user_id, world.now, session, explore=False)) == plain

    # A promotion of the 10th item, active now: it moves (up when its score is positive, down when
    # negative), in the served answer and in the replay alike.
    promo = Promotion(item_id=plain[9], boost=3.0, expires_at=time.time() + 3600)
    sp = s.model_copy(update={"engine": s.engine.model_copy(update={"promotions": [promo]})})
    served = ids(_served_order(sp, model, ranker, user_id, world.now, session, explore=False))
    assert served != plain  # the promotion changes the order
    assert ids(replayed(dataclasses.replace(world, engine=sp.engine))) == served

    # Exploration: the engine's epsilon-greedy draw (seeded by Settings.seed, the user and the
    # day) is the replay's when it is given the engine's seed.
    se = s.model_copy(update={"engine": s.engine.model_copy(update={"explore_epsilon": 0.5})})
    explored = replayed(dataclasses.replace(world, engine=se.engine), explore_seed=se.seed)
    assert any("explore" in src for _, src in explored) and ids(explored) != plain
    assert ids(_served_order(se, model, ranker, user_id, world.now, session, explore=True)) == ids(explored)
