"""The ranker: DCN-v2 layer shapes and repr, features, training signal, the loaded form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gnn.ranking.train import fit
from graphrec.core.recs import features as F
from graphrec.core.recs.dcn import DCNv2
from graphrec.core.recs.rules import Scored
from graphrec.engine.ranker import LoadedRanker


def test_dcn_shapes_and_repr() -> None:
    m = DCNv2(10, cross_layers=3, hidden=16, dropout=0.0)
    assert repr(m) == "DCNv2(10, cross_layers=3, hidden=16, dropout=0.0)"
    assert m(torch.randn(7, 10)).shape == (7,)


def test_features_are_built_per_source() -> None:
    cands = [Scored("a", 0.0, {"ann": (0.9, 0), "popular": (10.0, 3)}), Scored("b", 0.0, {"co_interaction": (2.0, 0)})]
    x = F.build(cands, np.array([0.5, 0.1]), None, lambda i: (9, 0.0, ("Action",)), 86400.0 * 10, {"Action": 0.5})
    names = F.FEATURE_NAMES
    assert x.shape == (2, len(names))
    row = dict(zip(names, x[0].tolist(), strict=True))
    assert row["ann.present"] == 1 and row["ann.score"] == 1 and row["popular.inv_rank"] == 0.25
    assert row["emb_sim"] == 0.5 and row["category_affinity"] == 0.5 and row["n_sources"] == 2
    assert abs(row["log_popularity"] - np.log1p(9)) < 1e-6


def test_ranker_learns_a_separable_signal_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, len(F.FEATURE_NAMES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 3] > 0.8).astype(np.float32)
    art = fit(x, y, seed=1, epochs=8, progress=False)
    assert art.history[-1] < art.history[0]
    art.save(tmp_path)
    loaded = LoadedRanker.load("r1", tmp_path, enabled=True)
    s = loaded.score(x)
    assert s[y == 1].mean() > s[y == 0].mean() + 1.0
    # The request path scores in NumPy; it must equal the torch module it was loaded from.
    np.testing.assert_allclose(s, loaded.score_torch(x), rtol=1e-4, atol=1e-4)


def test_numpy_forward_matches_torch_for_other_shapes() -> None:
    torch.manual_seed(0)
    for layers, hidden in ((1, 8), (3, 32)):
        m = DCNv2(len(F.FEATURE_NAMES), cross_layers=layers, hidden=hidden, dropout=0.3)
        mean = np.linspace(-1, 1, len(F.FEATURE_NAMES)).astype(np.float32)
        r = LoadedRanker("r", m, mean, np.full(len(F.FEATURE_NAMES), 2.0, dtype=np.float32), True)
        x = np.random.default_rng(layers).standard_normal((300, len(F.FEATURE_NAMES))).astype(np.float32)
        np.testing.assert_allclose(r.score(x), r.score_torch(x), rtol=1e-4, atol=1e-4)


def test_the_ranker_gate_compares_with_the_pipeline_served_without_it() -> None:
    """A ranker that beats ranking by embedding similarity but not the pipeline the engine serves
    without it stays off; one that beats that pipeline is enabled."""
    from gnn.ranking.lifecycle import RANKER_ROW, SERVED_WITHOUT_ROW, gate

    rows = {SERVED_WITHOUT_ROW: {"ndcg@10": 0.20, "recall@100": 0.50},
            "pipeline (GNN similarity + MMR)": {"ndcg@10": 0.10, "recall@100": 0.40},
            RANKER_ROW: {"ndcg@10": 0.15, "recall@100": 0.45}}
    enabled, reason = gate(rows)
    assert not enabled and "served without it" in reason
    rows[RANKER_ROW] = {"ndcg@10": 0.21, "recall@100": 0.50}
    assert gate(rows)[0]
    rows[RANKER_ROW] = {"ndcg@10": 0.21, "recall@100": 0.49}  # NDCG up, Recall@100 down: off
    assert not gate(rows)[0]
