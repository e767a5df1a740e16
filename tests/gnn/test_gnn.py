"""The GNN on small synthetic graphs: neighbourhoods, layer shapes, loss, inductive embeddings,
user vectors, split, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import SumAggregation

import gnn.train
from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.nn import PinSageConv
from gnn.split import temporal_holdout, train_val_test
from gnn.train import build_model, train
from gnn.user import interaction_weights, user_matrix, user_params
from gnn.walks import importance_neighbourhoods
from graphrec.core.config import InteractionSettings
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot

#: The recipe's type weights: the code's default ``[interactions] vector_weights``.
VECTOR_WEIGHTS = InteractionSettings().vector_weights


def test_visit_counts_match_a_hand_checked_case() -> None:
    # Items 0,1,2 share users; item 3 shares one user with 0; item 4 is isolated from all.
    #   u0: 0 1 2    u1: 0 1    u2: 1 2    u3: 0 3    u4: 4
    edges = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 2), (3, 0), (3, 3), (4, 4)]
    user = np.array([u for u, _ in edges])
    item = np.array([i for _, i in edges])
    nbr, w = importance_neighbourhoods(user, item, 5, 5, top_t=3, walks=4000, length=1, restart=1.0, seed=1)
    # One hop from item 0: to u0 (1/3) → {0,1,2}, u1 (1/3) → {0,1}, u3 (1/3) → {0,3}.
    # P(1) = 1/9 + 1/6 = 5/18, P(2) = 1/9 = 2/18, P(3) = 1/6 = 3/18 (P(0) is the start, not counted).
    assert nbr[0].tolist() == [1, 3, 2]
    assert np.allclose(w[0], np.array([5, 3, 2]) / 10, atol=0.03)
    assert np.isclose(w[0].sum(), 1.0)
    assert nbr[4].tolist() == [-1, -1, -1] and w[4].sum() == 0  # only itself reachable
    again, _ = importance_neighbourhoods(user, item, 5, 5, top_t=3, walks=4000, length=1, restart=1.0, seed=1)
    assert (again == nbr).all()  # seeded


def test_pinsage_conv_shapes_repr_and_isolated_nodes() -> None:
    torch.manual_seed(0)
    conv = PinSageConv(16, 8, hidden_channels=12)
    assert repr(conv) == "PinSageConv(16, 8, hidden=12, aggr=sum)"
    assert isinstance(conv, MessagePassing) and isinstance(conv.aggr_module, SumAggregation)
    x = torch.randn(5, 16)
    # Node 4 has no incoming edge (no random-walk neighbour).
    edge_index = torch.tensor([[1, 2, 3, 0, 2], [0, 0, 0, 1, 3]])
    w = torch.tensor([5.0, 3.0, 2.0, 1.0, 4.0])
    out = conv(x, edge_index, w)
    assert out.shape == (5, 8) and torch.allclose(out.norm(dim=-1)[out.norm(dim=-1) > 0], torch.tensor(1.0))
    # Weights are importance: scaling them changes nothing (normalised per target), changing one does.
    assert torch.allclose(conv(x, edge_index, 7 * w), out, atol=1e-6)
    assert not torch.allclose(conv(x, edge_index, torch.tensor([1.0, 3.0, 2.0, 1.0, 4.0]))[0], out[0])
    # The isolated node sees a zero neighbourhood: its output is W·[x_4, 0] alone.
    n0 = torch.zeros(1, 12)
    alone = torch.nn.functional.normalize(torch.relu(conv.W(torch.cat([x[4:5], n0], dim=-1))), dim=-1)
    assert torch.allclose(out[4:5], alone, atol=1e-6)
    # Node 0 pools its neighbours' messages with normalised visit weights (the paper's γ).
    n = (torch.tensor([[0.5], [0.3], [0.2]]) * torch.relu(conv.Q(x[[1, 2, 3]]))).sum(0, keepdim=True)
    assert torch.allclose(out[0:1], torch.nn.functional.normalize(torch.relu(conv.W(torch.cat([x[0:1], n], -1))), dim=-1), atol=1e-5)
    # Bipartite: 7 sources into 3 targets.
    bi = conv((torch.randn(7, 16), torch.randn(3, 16)), torch.tensor([[6, 5, 0], [0, 0, 2]]), torch.ones(3))
    assert bi.shape == (3, 8)


def test_pinsage_conv_gradients_reach_every_parameter_and_the_neighbours() -> None:
    torch.manual_seed(0)
    conv = PinSageConv(16, 8, hidden_channels=12, normalize=False)
    x = torch.randn(4, 16, requires_grad=True)
    out = conv(x, torch.tensor([[1, 2], [0, 0]]), torch.tensor([1.0, 2.0]))
    out.sum().backward()
    assert x.grad is not None and x.grad[1].abs().sum() > 0 and x.grad[2].abs().sum() > 0  # neighbours get gradient
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _toy(n_users: int = 120, seed: int = 0) -> Snapshot:
    """Two clusters of items (content A / content B); users stick to one cluster; item 39 is new."""
    rng = np.random.default_rng(seed)
    items = [ItemContent(title=f"{'alpha' if i < 20 else 'beta'} item {i}", year=1990 + i % 10,
                         categories=["A" if i < 20 else "B"], tags=["a-tag" if i < 20 else "b-tag"]) for i in range(40)]
    u, it, ts = [], [], []
    for user in range(n_users):
        lo = 0 if user % 2 == 0 else 20
        for k, i in enumerate(rng.choice(np.arange(lo, lo + 19), size=12, replace=False)):
            u.append(user)
            it.append(int(i))
            ts.append(1000.0 * user + 10 * k)
    n = len(u)
    return Snapshot([f"u{x}" for x in range(n_users)], [f"i{x}" for x in range(40)], np.array(u), np.array(it),
                    np.array(ts), np.full(n, KIND_CODE["RATED"], np.int8), np.full(n, 4.0, np.float32), items)


def test_training_learns_and_new_items_get_content_embeddings() -> None:
    snap = _toy()
    tr, va, te = train_val_test(snap)
    cfg = GNNConfig(dim=16, hidden=32, epochs=12, patience=12, batch_users=32, walks_per_item=50, neighbors=5, examples_per_user=2,
                    id_dropout=0.5,
                    easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(2, 20))
    res = train(snap, tr, va, cfg, seed=3, progress=False, vector_weights=VECTOR_WEIGHTS)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]  # the loss decreases
    assert res.best_val_ndcg > 0.15  # far above random (about 0.05 here)
    emb = res.item_emb
    assert emb.shape == (40, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # Items 19 and 39 were never interacted with: their embeddings come from content alone and
    # sit nearer to their own cluster than to the other one.
    for new, own, other in ((19, range(0, 19), range(20, 39)), (39, range(20, 39), range(0, 19))):
        assert emb[new] @ emb[list(own)].mean(0) > emb[new] @ emb[list(other)].mean(0)


def test_repeat_interactions_are_not_softmax_positives() -> None:
    # Every user interacts with each of their items twice: most targets are already in the history,
    # where they are masked (as in evaluation); they must not turn the loss into -log(0).
    snap = _toy(60)
    rep = Snapshot(snap.user_ids, snap.item_ids, np.r_[snap.user, snap.user], np.r_[snap.item, snap.item],
                   np.r_[snap.ts, snap.ts + 500.0], np.r_[snap.kind, snap.kind], np.r_[snap.value, snap.value], snap.items)
    cfg = GNNConfig(dim=8, hidden=16, epochs=2, batch_users=16, walks_per_item=10, neighbors=3, easy_negatives=4,
                    hard_negatives_max=1, hard_negative_ranks=(2, 10))
    res = train(rep, np.ones(rep.num_interactions, bool), None, cfg, seed=0, progress=False, vector_weights=VECTOR_WEIGHTS)
    assert all(np.isfinite(h["loss"]) and h["loss"] < 50 for h in res.history)


def test_sampled_softmax_with_sparse_id_updates_learns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The large-catalogue path (sampled softmax, sparse id gradients with SparseAdam) on the toy.
    monkeypatch.setattr(gnn.train, "FULL_SOFTMAX_MAX_ITEMS", 10)
    snap = _toy()
    tr, va, _ = train_val_test(snap)
    cfg = GNNConfig(dim=16, hidden=32, epochs=8, patience=8, batch_users=32, walks_per_item=50, neighbors=5,
                    examples_per_user=2, easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(2, 20))
    res = train(snap, tr, va, cfg, seed=3, progress=False, vector_weights=VECTOR_WEIGHTS)
    assert res.model.ids is not None and res.model.ids.sparse
    assert res.history[-1]["loss"] < res.history[0]["loss"] and res.best_val_ndcg > 0.15


def test_user_vector_moves_with_a_fresh_interaction() -> None:
    emb = np.eye(4, dtype=np.float32)
    params = user_params(GNNConfig(half_life_days=1.0), VECTOR_WEIGHTS)
    rated = np.array([KIND_CODE["RATED"]], np.int8)
    before = user_matrix(emb, np.array([0]), np.array([0]), rated, np.array([5.0], np.float32), np.array([0.0]), 1, 0.0, params)
    after = user_matrix(emb, np.array([0, 0]), np.array([0, 3]), np.array([KIND_CODE["RATED"], KIND_CODE["PURCHASED"]], np.int8),
                        np.array([5.0, 0.0], np.float32), np.array([0.0, 0.0]), 1, 0.0, params)
    assert before[0, 3] == 0 and after[0, 3] > 0.5
    w = interaction_weights(np.array([KIND_CODE["RATED"]] * 2, np.int8), np.array([5.0, 5.0]), np.array([0.0, -86400.0]), 0.0, params)
    assert w[1] == pytest.approx(w[0] / 2)  # one half-life older, half the weight


def test_temporal_split_properties() -> None:
    snap = _toy(10)
    test = temporal_holdout(snap, 0.2, 5)
    for u in range(10):
        m = snap.user == u
        assert test[m].sum() == 3  # ceil(12 * 0.2)
        assert snap.ts[m & test].min() > snap.ts[m & ~test].max()  # held-out items are the latest
    small = Snapshot(["a"], ["x", "y"], np.array([0, 0]), np.array([0, 1]), np.array([1.0, 2.0]),
                     np.zeros(2, np.int8), np.zeros(2, np.float32), [ItemContent(), ItemContent()])
    assert not temporal_holdout(small, 0.2, 5).any()  # fewer than 5: all in train


def test_metrics_on_a_hand_computed_case() -> None:
    train = interaction_matrix(np.array([0]), np.array([0]), 1, 4)
    test = interaction_matrix(np.array([0, 0]), np.array([1, 3]), 1, 4)
    scores = np.array([[9.0, 1.0, 3.0, 2.0]])  # item 0 is train: ranking = 2, 3, 1
    m = ranking_metrics(lambda u: scores[u], train, test)
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg) and m["recall@10"] == 1.0 and m["hitrate@10"] == 1.0
    assert m["coverage@10"] == pytest.approx(3 / 4)
    assert isinstance(train, sp.csr_matrix)


def test_model_builds_on_unseen_items_without_neighbours() -> None:
    snap = _toy()
    tr = snap.item != 39
    model = build_model(snap, tr, GNNConfig(dim=8, hidden=16, walks_per_item=10, neighbors=3), seed=0)
    assert not bool(model.seen[39]) and model.nbr_w[39].sum() == 0
    out = model.embed(torch.tensor([39, 0]))
    assert out.shape == (2, 8) and torch.isfinite(out).all()


@pytest.mark.parametrize("n_items", [8, 40, 300])
def test_metrics_equal_a_per_user_reference_on_random_scores(n_items: int) -> None:
    # ranking_metrics goes through torch_geometric.metrics; the reference is the plain definition.
    rng = np.random.default_rng(n_items)
    n_users = 60
    train = interaction_matrix(rng.integers(0, n_users, 300), rng.integers(0, n_items, 300), n_users, n_items)
    test = interaction_matrix(rng.integers(0, n_users, 90), rng.integers(0, n_items, 90), n_users, n_items)
    scores = rng.standard_normal((n_users, n_items))
    got = ranking_metrics(lambda u: scores[u], train, test, batch=7)
    ndcg, r10, r100, hit, shown = [], [], [], [], set()
    for u in np.nonzero(np.diff(test.indptr))[0]:
        s = scores[u].copy()
        s[train[u].indices] = -np.inf
        ranked = [int(i) for i in np.argsort(-s, kind="stable") if s[i] > -np.inf][:100]  # train items never ranked
        rel = set(test[u].indices.tolist())
        hits = [i in rel for i in ranked]
        ndcg.append(sum(h / np.log2(r + 2) for r, h in enumerate(hits[:10]))
                    / sum(1 / np.log2(r + 2) for r in range(min(10, len(rel)))))
        r10.append(sum(hits[:10]) / len(rel))
        r100.append(sum(hits[:100]) / len(rel))
        hit.append(float(any(hits[:10])))
        shown.update(ranked[:10])
    assert got["ndcg@10"] == pytest.approx(np.mean(ndcg), abs=1e-6)
    assert got["recall@10"] == pytest.approx(np.mean(r10), abs=1e-6)
    assert got["recall@100"] == pytest.approx(np.mean(r100), abs=1e-6)
    assert got["hitrate@10"] == pytest.approx(np.mean(hit), abs=1e-6)
    assert got["coverage@10"] == pytest.approx(len(shown) / n_items, abs=1e-6)


def test_the_computation_graph_is_built_once_for_the_same_items_and_rebuilt_when_it_may_change() -> None:
    """Training embeds the same candidate set at every step: its K-hop graph is kept (same
    embeddings as building it again), other items get their own, and a loaded state (whose
    neighbourhood buffers may differ) is never embedded over the old graph."""
    snap = _toy()
    cfg = GNNConfig(dim=8, hidden=16, walks_per_item=10, neighbors=3)
    model = build_model(snap, np.ones(snap.num_interactions, dtype=bool), cfg, seed=0).eval()
    items = torch.arange(40)
    first = model.embed(items)
    kept = model._graph
    assert kept is not None and torch.equal(model.embed(items.clone()), first) and model._graph is kept
    assert model.embed(torch.tensor([3, 5])).shape == (2, 8) and model._graph is not kept
    model._graph = None
    assert torch.equal(model.embed(items), first)  # built again: the same graph
    other = build_model(snap, np.ones(snap.num_interactions, dtype=bool), cfg, seed=1).eval()  # other walks
    assert not torch.equal(other.nbr, model.nbr)
    model.load_state_dict(other.state_dict())
    assert torch.equal(model.embed(items), other.embed(items))
