"""The served hybrid (gnn.itemitem fits it, graphrec.core.recs.hybrid serves it): the engine's
per-request scores equal the offline evaluation's, new users get the trend prior, the choices
come from the validation grid, the artifacts round-trip into the live model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from graphrec.core.snapshot import KIND_CODE, KINDS, ItemContent, Snapshot


def _snap(n_users: int = 30, n_items: int = 25, per_user: int = 12, seed: int = 0) -> Snapshot:
    """Users walk through items with a drift (item k is often followed by k+1), ratings 1-5,
    distinct timestamps; one SKIPPED interaction per user; the last user has no interaction."""
    rng = np.random.default_rng(seed)
    user, item, ts, kind, value = [], [], [], [], []
    t = 0.0
    for u in range(n_users - 1):
        k = int(rng.integers(0, n_items))
        seen: set[int] = set()
        for j in range(per_user):
            k = (k + 1) % n_items if rng.random() < 0.7 else int(rng.integers(0, n_items))
            if k in seen:
                continue
            seen.add(k)
            t += float(rng.integers(1, 5000))
            user.append(u)
            item.append(k)
            ts.append(t)
            skipped = j == 3
            kind.append(KIND_CODE["SKIPPED"] if skipped else KIND_CODE["RATED"])
            value.append(float(rng.integers(1, 6)))
    return Snapshot([f"u{u}" for u in range(n_users)], [f"i{i}" for i in range(n_items)], np.array(user),
                    np.array(item), np.array(ts), np.array(kind, dtype=np.int8), np.array(value, dtype=np.float32),
                    [ItemContent(title=f"t{i}") for i in range(n_items)])


def _params() -> dict:
    return {"type_weights": {"RATED": 1.0, "SKIPPED": -0.5}, "rating_center": 0.0, "half_life_days": 30.0,
            "max_history": 50}


def _history(snap: Snapshot, u: int, mask: np.ndarray) -> list[dict]:
    """The user's interactions as the engine's user state reads them."""
    sel = np.nonzero(mask & (snap.user == u))[0]
    return [{"item_id": snap.item_ids[snap.item[j]], "type": KINDS[snap.kind[j]], "ts": float(snap.ts[j]),
             "value": float(snap.value[j])} for j in sel[::-1]]


def test_request_scores_equal_the_offline_evaluation() -> None:
    """For every user, HybridScorer.scores (one request, from the history list the engine reads
    and the live model's user vector) equals the row gnn.itemitem.score_fn gives the evaluation:
    the same position weights, transitions, trend, GNN cosine and z-scoring. New users (no
    positive interaction) get the trend scores alone."""
    from gnn import itemitem
    from graphrec.core.recs.model import LiveModel

    snap = _snap()
    every = np.ones(snap.num_interactions, dtype=bool)
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((snap.num_items, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    params = _params()
    w = {"gnn": 1.0, "ease": 1.0, "trans": 0.5, "trend": 0.25}
    p = {"lambda": 5.0, "position_half": 2.5, "window": 3, "trend_half_life_days": 1.0, "history": 50,
         "trans_history": 20}
    model = itemitem.fit(snap, every, p, w)
    v = itemitem.views(snap, every, (2.5,), emb, params)
    offline = itemitem.score_fn(v, model)(np.arange(snap.num_users))
    live = LiveModel("v", list(snap.item_ids), emb, params, hybrid=model)
    now = float(snap.ts.max())
    for u in range(snap.num_users):
        hist = _history(snap, u, every)
        vec = live.user_vector(hist, now) if hist else None
        online = live.hybrid_scores(hist, vec)
        assert online is not None
        np.testing.assert_allclose(online, offline[u], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(offline[snap.num_users - 1], model.trend, rtol=1e-6)
    assert not np.allclose(offline[0], model.trend)


def test_position_weights_favour_the_newest_items() -> None:
    """Two users with the same items in opposite orders get different EASE scores, each closer
    to the neighbours of their own newest item (position weighting, not a bag of items)."""
    from graphrec.core.recs.hybrid import HybridScorer

    n = 4
    ease = np.zeros((n, n), dtype=np.float32)
    ease[0, 2] = 1.0  # item 0 -> item 2
    ease[1, 3] = 1.0  # item 1 -> item 3
    s = HybridScorer(ease, np.zeros((n, n), np.float32), np.zeros(n, np.float32), {"ease": 1.0},
                     {"position_half": 1.0, "history": 50, "trans_history": 20})
    index = {f"i{k}": k for k in range(n)}
    newest_0 = s.scores([{"item_id": "i0", "type": "RATED", "ts": 2.0}, {"item_id": "i1", "type": "RATED", "ts": 1.0}],
                        index, None, None)
    newest_1 = s.scores([{"item_id": "i0", "type": "RATED", "ts": 1.0}, {"item_id": "i1", "type": "RATED", "ts": 2.0}],
                        index, None, None)
    assert newest_0[2] > newest_0[3] and newest_1[3] > newest_1[2]


def test_transitions_count_what_followed() -> None:
    from gnn.itemitem import fit_transitions

    snap = Snapshot(["a", "b"], [f"i{k}" for k in range(3)], np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1]),
                    np.array([1.0, 2.0, 3.0, 1.0, 2.0]), np.full(5, KIND_CODE["CLICKED"], dtype=np.int8),
                    np.zeros(5, np.float32), [ItemContent(title="x")] * 3)
    t = fit_transitions(snap, np.ones(5, dtype=bool), window=2, smoothing=0.0)
    # item 0 was followed by 1 (twice, distance 1) and by 2 (once, distance 2): weights 2 and 0.5
    np.testing.assert_allclose(t[0], [0.0, 2.0 / 2.5, 0.5 / 2.5], rtol=1e-6)
    np.testing.assert_allclose(t[2], [0.0, 0.0, 0.0])


def test_choose_searches_the_validation_grid() -> None:
    """The choice is made on validation alone: its value is the validation NDCG@10 + Recall@100
    of the chosen model (recomputed here), and it comes from the module's grids."""
    from gnn import itemitem
    from gnn.metrics import interaction_matrix, ranking_metrics
    from gnn.split import relevant, train_val_test

    snap = _snap(seed=2)
    tr, va, _ = train_val_test(snap)
    params, weights, value = itemitem.choose(snap, tr, relevant(snap, va))
    assert params["lambda"] in itemitem.LAMBDAS and params["position_half"] in itemitem.POSITION_HALVES
    assert params["window"] in itemitem.WINDOWS and params["trend_half_life_days"] in itemitem.TREND_HALF_LIVES
    assert weights["gnn"] == 0.0  # no GNN given: no GNN component
    model = itemitem.fit(snap, tr, params, weights)
    v = itemitem.views(snap, tr, (params["position_half"],), None, None)
    m = ranking_metrics(itemitem.score_fn(v, model), interaction_matrix(snap.user[tr], snap.item[tr], snap.num_users,
                                                                         snap.num_items),
                        interaction_matrix(snap.user[relevant(snap, va)], snap.item[relevant(snap, va)],
                                           snap.num_users, snap.num_items))
    assert value == pytest.approx(m["ndcg@10"] + m["recall@100"], abs=1e-6)


def test_artifacts_round_trip_into_the_live_model(tmp_path) -> None:
    """A version directory with hybrid.npz/json loads into LiveModel.hybrid; without them the
    live model has none (and the engine ranks as before)."""
    import json

    from gnn import itemitem
    from graphrec.core.recs.model import LiveModel

    snap = _snap()
    model = itemitem.fit(snap, np.ones(snap.num_interactions, dtype=bool),
                         {"lambda": 5.0, "position_half": 5.0, "window": 3, "trend_half_life_days": 7.0},
                         {"ease": 1.0, "trend": 0.5})
    np.save(tmp_path / "item_embeddings.npy", np.ones((snap.num_items, 4), np.float32))
    (tmp_path / "item_ids.json").write_text(json.dumps(snap.item_ids))
    assert LiveModel.load("v1", tmp_path).hybrid is None
    model.save(tmp_path)
    loaded = LiveModel.load("v1", tmp_path).hybrid
    assert loaded is not None and loaded.weights == model.weights and loaded.params == model.params
    np.testing.assert_allclose(loaded.ease, model.ease)
    np.testing.assert_allclose(loaded.trend, model.trend)


def test_hybrid_source_answers_the_best_items_not_excluded() -> None:
    """The engine's ``hybrid`` source: the live model's best hybrid items, excluded ones left
    out, scores shifted to be non-negative; nothing when the model has no hybrid."""
    from graphrec.core.recs.candidate import SourceContext
    from graphrec.core.recs.hybrid import HybridScorer
    from graphrec.core.recs.model import LiveModel
    from graphrec.engine.sources import SOURCES

    n = 6
    trend = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.3], dtype=np.float32)
    scorer = HybridScorer(np.zeros((n, n), np.float32), np.zeros((n, n), np.float32), trend, {"trend": 1.0}, {})
    model = LiveModel("v", [f"i{k}" for k in range(n)], np.eye(n, dtype=np.float32), hybrid=scorer)
    ctx = SourceContext(store=None, params={"model": model, "recent": [], "user_vector": None, "exclude": {"i1"}})
    got = asyncio.run(SOURCES["hybrid"](ctx, 3))
    assert [c.item_id for c in got] == ["i3", "i2", "i5"] and all(c.score >= 0 for c in got)
    model.hybrid = None
    assert asyncio.run(SOURCES["hybrid"](ctx, 3)) == []


def test_a_live_hybrid_is_reindexed_to_the_current_catalogue() -> None:
    """The gate scores the live version's hybrid on the candidate's catalogue: its matrices
    follow the items by id; an item it never knew has no weights and the lowest trend."""
    from gnn.lifecycle import remap_hybrid
    from graphrec.core.recs.hybrid import HybridScorer

    ease = np.arange(9, dtype=np.float32).reshape(3, 3)
    h = HybridScorer(ease, ease + 100, np.array([1.0, 2.0, 3.0], np.float32), {"ease": 1.0}, {"position_half": 5.0})
    got = remap_hybrid(h, ["a", "b", "c"], ["c", "new", "a"])
    np.testing.assert_allclose(got.ease, [[8, 0, 6], [0, 0, 0], [2, 0, 0]])
    np.testing.assert_allclose(got.trans[0], [108, 0, 106])
    np.testing.assert_allclose(got.trend, [3.0, 1.0, 1.0])
    assert got.weights == h.weights and got.params == h.params
