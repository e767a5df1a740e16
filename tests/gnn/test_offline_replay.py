"""The offline replay's rules after ranking (gnn.ranking.offline.World.serve): the engine's
promotions always, its exploration only when given the engine's seed, never in the evaluation
(tests/engine/test_feature_parity.py compares both with the engine's answers)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from gnn.ranking.offline import World, evaluate, fusion_scorer, targets
from gnn.split import train_val_test
from graphrec.core.config import EngineSettings, InteractionSettings, Promotion
from graphrec.core.recs.model import LiveModel
from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot


def _world(engine: EngineSettings) -> tuple[World, Snapshot, np.ndarray]:
    """40 users clicking among 60 items in 4 categories over 100 days; a random 8-d model."""
    rng = np.random.default_rng(5)
    n, users, items = 1600, 40, 60
    user = rng.integers(0, users, n)
    item = np.minimum(rng.zipf(1.3, n) - 1, items - 1)  # a popular head, a long tail
    ts = 1.7e9 + np.sort(rng.uniform(0, 100 * 86400.0, n))
    snap = Snapshot([f"u{u}" for u in range(users)], [f"i{i}" for i in range(items)], user, item, ts,
                    np.full(n, KIND_CODE["CLICKED"], dtype=np.int8), np.zeros(n, np.float32),
                    [ItemContent(title=f"t{i}", categories=[f"c{i % 4}"], created_at=1.7e9) for i in range(items)])
    emb = rng.standard_normal((items, 8)).astype(np.float32)
    model = LiveModel("v", list(snap.item_ids), emb / np.linalg.norm(emb, axis=1, keepdims=True))
    tr, va, te = train_val_test(snap)
    world = World.build(snap, tr | va, model, engine=engine, type_weights=InteractionSettings().score_weights)
    return world, snap, te


def test_the_replay_applies_the_engines_promotions() -> None:
    world, _, _ = _world(EngineSettings(explore_epsilon=0.0))
    u = max(world.history, key=lambda k: len(world.history[k]))
    scorer = fusion_scorer(world)
    plain = [c.item_id for c in world.serve(u, scorer, 10)[0]]
    last = plain[-1]
    promo = Promotion(item_id=last, boost=100.0, expires_at=time.time() + 3600)
    promoted = dataclasses.replace(world, engine=world.engine.model_copy(update={"promotions": [promo]}))
    chosen, order = promoted.serve(u, scorer, 10)
    assert chosen[0].item_id == last and "promotion" in chosen[0].sources
    assert order[0].item_id == last  # the rest of the ranking sees the boost too
    expired = promo.model_copy(update={"expires_at": time.time() - 1})
    ended = dataclasses.replace(world, engine=world.engine.model_copy(update={"promotions": [expired]}))
    assert [c.item_id for c in ended.serve(u, scorer, 10)[0]] == plain


def test_exploration_is_replayed_only_when_asked_and_never_in_the_evaluation() -> None:
    """With every explorable slot explored (epsilon 1), the replay given the seed explores, and
    the evaluation's figures are those of a replay without exploration."""
    world, snap, te = _world(EngineSettings(explore_epsilon=1.0))
    calm = dataclasses.replace(world, engine=world.engine.model_copy(update={"explore_epsilon": 0.0}))
    scorer = fusion_scorer(world)
    u = max(world.history, key=lambda k: len(world.history[k]))
    plain = [c.item_id for c in world.serve(u, scorer, 10)[0]]
    explored = world.serve(u, scorer, 10, explore_seed=42)[0]
    assert [c.item_id for c in explored][:3] == plain[:3]  # the first three slots are never explored
    assert all("explore" in c.sources for c in explored[3:])
    assert explored != world.serve(u, scorer, 10, explore_seed=43)[0]  # another seed, another draw
    truth = targets(snap, te)
    assert evaluate(world, truth, scorer) == evaluate(calm, truth, fusion_scorer(calm))


def test_the_rankers_replay_has_the_live_versions_hybrid(tmp_path: Path) -> None:
    """graphrec train-ranker replays the live version with its evaluation embeddings, recipe and
    hybrid (the engine's hybrid source and its ranking without a ranker); without one, fusion."""
    from gnn.ranking.lifecycle import replay_model
    from graphrec.core.recs.hybrid import HybridScorer

    ids = [f"i{k}" for k in range(5)]
    (tmp_path / "item_ids.json").write_text(json.dumps(ids))
    np.save(tmp_path / "eval_item_embeddings.npy", np.eye(5, 3, dtype=np.float32) * 2)
    (tmp_path / "eval_user_params.json").write_text(json.dumps({"type_weights": {"CLICKED": 1.0}, "max_history": 7}))
    assert replay_model("v1", tmp_path).hybrid is None
    hybrid = HybridScorer(np.ones((5, 5), np.float32), np.zeros((5, 5), np.float32), np.arange(5, dtype=np.float32),
                          {"ease": 1.0, "trend": 0.5})
    hybrid.save(tmp_path / "eval_hybrid")
    model = replay_model("v1", tmp_path)
    assert model.item_ids == ids and model.user_params["max_history"] == 7
    np.testing.assert_allclose(np.linalg.norm(model.emb[:3], axis=1), 1.0)
    assert model.hybrid is not None and model.hybrid.weights == hybrid.weights
    np.testing.assert_array_equal(model.hybrid.trend, hybrid.trend)
