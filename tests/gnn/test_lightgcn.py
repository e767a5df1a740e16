"""LightGCN (torch_geometric.nn.models.LightGCN) on the toy snapshot, and the HeteroData view."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.nn.models import LightGCN

from gnn.features import build_features
from gnn.hetero import positive_edges, to_hetero_data
from gnn.lightgcn import bipartite, cold_item_embeddings, train_lightgcn
from gnn.split import train_val_test
from graphrec.core.gnn_config import GNNConfig, LightGCNConfig
from graphrec.core.snapshot import KIND_CODE, Snapshot
from tests.gnn.test_gnn import _toy


def test_hetero_data_has_every_node_and_edge_type() -> None:
    snap = _toy(10)
    kind = snap.kind.copy()
    kind[:5] = KIND_CODE["SKIPPED"]
    snap = Snapshot(snap.user_ids, snap.item_ids, snap.user, snap.item, snap.ts, kind, snap.value, snap.items)
    mask = np.ones(snap.num_interactions, bool)
    mask[-3:] = False
    data = to_hetero_data(snap, mask)
    assert isinstance(data, HeteroData)
    assert set(data.node_types) == {"user", "item", "tag", "category", "entity"}
    assert data["user"].num_nodes == 10 and data["item"].num_nodes == 40
    assert data["user", "rated", "item"].edge_index.shape == (2, snap.num_interactions - 5 - 3)
    assert data["user", "skipped", "item"].edge_index.shape == (2, 5)
    assert data["item", "in_category", "category"].edge_index.shape == (2, 40)  # one category each
    assert sorted(data["category"].name) == ["A", "B"]
    # SKIPPED is not a positive edge; the masked-out interactions are not in the graph.
    assert positive_edges(data).shape == (2, snap.num_interactions - 8)


def test_lightgcn_learns_the_toy_clusters() -> None:
    snap = _toy()
    tr, va, te = train_val_test(snap)
    cfg = LightGCNConfig(layers=2, epochs=60, eval_every=5, patience=4, batch=256, lr=0.05)
    res = train_lightgcn(snap, tr, va, cfg, seed=0, dim=16, progress=False)
    assert isinstance(res.model, LightGCN)
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert res.best_val_ndcg > 0.15  # far above random (about 0.05)
    assert res.item_emb.shape == (40, 16) and res.user_emb.shape == (120, 16)
    assert len(res.alpha) == 3 and min(res.alpha) >= 0  # one weight per layer output (0, 1, 2)
    # A user of cluster A scores cluster-A items above cluster-B items.
    scores = res.user_emb[0] @ res.item_emb.T
    assert scores[:19].mean() > scores[20:39].mean()
    # The refit runs the given epochs with the given layer weights.
    again = train_lightgcn(snap, tr | va, None, cfg, seed=0, dim=16, progress=False, epochs=3, alpha=res.alpha)
    assert len(again.history) == 3 and again.alpha == res.alpha


def test_bipartite_graph_is_symmetric_and_offsets_items() -> None:
    snap = _toy(4)
    edge_index, pos = bipartite(snap, np.ones(snap.num_interactions, bool))
    assert pos.shape[1] == len({(u, i) for u, i in zip(snap.user.tolist(), snap.item.tolist(), strict=True)})
    assert edge_index.shape[1] == 2 * pos.shape[1]
    assert int(edge_index[0, : pos.shape[1]].max()) < 4 <= int(edge_index[1, : pos.shape[1]].min())
    assert torch.equal(edge_index[0, pos.shape[1]:], edge_index[1, : pos.shape[1]])


def test_cold_items_land_near_their_content_cluster() -> None:
    snap = _toy()
    mask = np.ones(snap.num_interactions, bool)
    feats = build_features(snap, mask, GNNConfig())
    rng = np.random.default_rng(0)
    emb = np.zeros((40, 8), np.float32)
    emb[:20, 0], emb[20:, 1] = 1.0, 1.0  # cluster A on axis 0, cluster B on axis 1
    emb += 0.05 * rng.standard_normal(emb.shape).astype(np.float32)
    seen = np.ones(40, bool)
    seen[[19, 39]] = False
    out = cold_item_embeddings(emb, seen, feats)
    assert np.array_equal(out[seen], emb[seen])  # warm items keep theirs
    assert out[19, 0] > abs(out[19, 1]) and out[39, 1] > abs(out[39, 0])
