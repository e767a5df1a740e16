"""LightGCN (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126) on the snapshot, through
:class:`torch_geometric.nn.models.LightGCN`.

The propagation graph is the user–item bipartite graph of the positive interactions of the
training split (:func:`gnn.hetero.positive_edges` of the snapshot's :class:`HeteroData`), users
as nodes ``0..U-1`` and items as ``U..U+I-1``, both directions. Training: BPR loss over every
positive edge per epoch, each with one negative item drawn uniformly or, with probability
``pop_negatives``, in proportion to popularity^0.75 (harder: popular items the user skipped);
L2 on the batch's layer-0 embeddings. Early stopping on validation NDCG@10; then the layer
combination weights ``alpha`` are chosen on validation from :data:`ALPHAS`.

Serving (``gnn.model = "lightgcn"``): the item embeddings are published like the GNN's, and the
engine pools a user's recent items into the user vector with the same recipe as for the GNN
(:mod:`gnn.user`), so a fresh interaction moves it without retraining and a user unknown at
training time is served from their first interaction. LightGCN has no content features: an item
nobody interacted with in training gets the content projection of :func:`cold_item_embeddings`
(its content features mapped through the feature centroids of the warm items), not its untrained
random vector.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LightGCN
from torch_geometric.utils import to_torch_csr_tensor
from tqdm import tqdm

from gnn.features import ItemFeatures
from gnn.hetero import positive_edges, to_hetero_data
from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.nn.sparse import spmm_sum
from gnn.threads import choose_threads
from graphrec.core.gnn_config import LightGCNConfig
from graphrec.core.snapshot import Snapshot

#: Layer-combination weights tried on validation after training (normalised to sum 1).
ALPHAS: tuple[tuple[float, ...], ...] = ((1, 1, 1, 1), (1, 1, 1, 0), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 2, 2),
                                         (0, 1, 1, 1), (1, 1, 0, 0))

#: A cold item's vector norm, relative to the warm items' median: it has no popularity yet.
COLD_NORM = 0.5


@dataclass
class LightGCNResult:
    model: LightGCN
    item_emb: np.ndarray  # [I, dim], the served vectors (cold items filled in when features are given)
    user_emb: np.ndarray  # [U, dim], LightGCN's own user vectors (for the users of the training graph)
    alpha: list[float]
    history: list[dict[str, float]]
    best_epoch: int
    best_val_ndcg: float
    seconds: float
    examples: int = 0  # BPR triples, summed over the epochs run
    extra: dict[str, Any] = field(default_factory=dict)


def bipartite(snap: Snapshot, mask: np.ndarray) -> tuple[Tensor, Tensor]:
    """``(edge_index [2, 2E] over U+I nodes, both directions; positive pairs [2, E] (user, item))``."""
    ui = positive_edges(to_hetero_data(snap, mask))
    ui = torch.unique(ui, dim=1)  # a repeated interaction is one edge
    u, i = ui[0], ui[1] + snap.num_users
    return torch.stack([torch.cat([u, i]), torch.cat([i, u])]), ui


def normalized_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """LightGCN's symmetric normalisation D^-1/2 A D^-1/2 as a sparse CSR ``adj_t``, computed once:
    the model then propagates with ``normalize=False`` (a sparse product per layer, much faster
    than re-normalising and scattering over the edge list at every step)."""
    ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=False)
    return to_torch_csr_tensor(torch.stack([ei[1], ei[0]]), w, size=(num_nodes, num_nodes))


def layer_embeddings(model: LightGCN, edge_index: Tensor) -> list[Tensor]:
    """The embeddings after each propagation, layer 0 (the free parameters) first
    (``edge_index``: the normalised adjacency; each layer is ``LGConv(normalize=False)``'s sum
    ``adj @ x``, through :func:`gnn.nn.sparse.spmm_sum`)."""
    x = model.embedding.weight
    out = [x]
    for _ in model.convs:
        x = spmm_sum(edge_index, x)
        out.append(x)
    return out


def get_embedding(model: LightGCN, edge_index: Tensor) -> Tensor:
    """``model.get_embedding(edge_index)`` (the layers mixed by the model's ``alpha``), with each
    propagation through :func:`gnn.nn.sparse.spmm_sum`: the transposed adjacency the gradient
    needs is built once per fit instead of at every backward pass."""
    x = model.embedding.weight
    out = x * model.alpha[0]
    for i in range(model.num_layers):
        x = spmm_sum(edge_index, x)
        out = out + x * model.alpha[i + 1]
    return out


def combine(layers: list[Tensor], alpha: tuple[float, ...] | list[float]) -> Tensor:
    a = torch.tensor(alpha[: len(layers)], dtype=layers[0].dtype)
    a = a / a.sum()
    return sum((w * x for w, x in zip(a, layers, strict=False)), torch.zeros_like(layers[0]))


def _metrics(emb: Tensor, n_users: int, train: sp.csr_matrix, target: sp.csr_matrix) -> dict[str, float]:
    e = emb.detach().numpy()
    u, i = e[:n_users], e[n_users:]
    return ranking_metrics(lambda users: u[users] @ i.T, train, target)


def train_lightgcn(snap: Snapshot, train_mask: np.ndarray, val_mask: np.ndarray | None, cfg: LightGCNConfig | None = None,
                   seed: int = 42, dim: int = 64, threads: int = 0, progress: bool = True, epochs: int | None = None, alpha: list[float] | None = None,
                   features: ItemFeatures | None = None, start: Tensor | None = None) -> LightGCNResult:
    """Train on ``train_mask``; early-stop on ``val_mask`` and choose ``alpha`` there. With
    ``val_mask=None`` (a refit) it runs ``epochs`` epochs and uses the given ``alpha``.
    ``start``: layer-0 embeddings to start from instead of a random initialisation (those of a
    fit on part of these interactions, same users and items)."""
    cfg = cfg or LightGCNConfig()
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    choose_threads(threads)
    rng = np.random.default_rng(seed)
    n_u, n_i = snap.num_users, snap.num_items
    edge_index, pos = bipartite(snap, train_mask)
    edge_index = normalized_adjacency(edge_index, n_u + n_i)
    model = LightGCN(n_u + n_i, dim, cfg.layers, normalize=False)
    if start is not None:
        with torch.no_grad():
            model.embedding.weight.copy_(start)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    pop = np.bincount(pos[1].numpy(), minlength=n_i).astype(np.float64) ** 0.75
    pop_p = pop / pop.sum() if pop.sum() > 0 else np.full(n_i, 1.0 / n_i)
    m_train = interaction_matrix(snap.user[train_mask], snap.item[train_mask], n_u, n_i)
    m_val = (interaction_matrix(snap.user[val_mask], snap.item[val_mask], n_u, n_i) if val_mask is not None else None)
    n_epochs = epochs if epochs is not None else cfg.epochs
    best: tuple[float, int, dict[str, Tensor]] = (-1.0, 0, copy.deepcopy(model.state_dict()))
    history: list[dict[str, float]] = []
    bad, examples = 0, 0
    bar = tqdm(range(1, n_epochs + 1), desc="train LightGCN", unit="epoch", disable=not progress)
    for epoch in bar:
        t_ep = time.perf_counter()
        model.train()
        order = torch.from_numpy(rng.permutation(pos.shape[1]))
        losses = []
        for s in range(0, len(order), cfg.batch):
            b = order[s:s + cfg.batch]
            users, items = pos[0, b], pos[1, b]
            neg = np.where(rng.random(len(b)) < cfg.pop_negatives, rng.choice(n_i, len(b), p=pop_p),
                           rng.integers(0, n_i, len(b)))
            negs = torch.from_numpy(neg)
            emb = get_embedding(model, edge_index)
            eu = emb[users]
            pos_r = (eu * emb[items + n_u]).sum(-1)
            neg_r = (eu * emb[negs + n_u]).sum(-1)
            nodes = torch.cat([users, items + n_u, negs + n_u])
            loss = model.recommendation_loss(pos_r, neg_r, node_id=nodes, lambda_reg=cfg.reg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            examples += len(b)
        row: dict[str, float] = {"epoch": epoch, "loss": float(np.mean(losses)), "train_seconds": time.perf_counter() - t_ep}
        if m_val is not None and (epoch % cfg.eval_every == 0 or epoch == n_epochs):
            model.eval()
            with torch.no_grad():
                val = _metrics(get_embedding(model, edge_index), n_u, m_train, m_val)
            row.update({"val_ndcg@10": val["ndcg@10"], "val_recall@100": val["recall@100"]})
            bar.set_postfix(loss=f"{row['loss']:.4f}", val_ndcg=f"{val['ndcg@10']:.4f}")
            if val["ndcg@10"] > best[0]:
                best, bad = (val["ndcg@10"], epoch, copy.deepcopy(model.state_dict())), 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    history.append(row)
                    break
        history.append(row)
    if m_val is not None:
        model.load_state_dict(best[2])
    else:
        best = (float("nan"), len(history), model.state_dict())
    model.eval()
    with torch.no_grad():
        layers = layer_embeddings(model, edge_index)
        if m_val is not None:  # the layer weights: chosen on validation
            def score(a: tuple[float, ...]) -> float:
                m = _metrics(combine(layers, a), n_u, m_train, m_val)
                return float(m["ndcg@10"] + m["recall@100"])
            chosen: tuple[float, ...] = max(ALPHAS, key=score)
            alpha = list(chosen)
        alpha = list(alpha or ALPHAS[0])[: len(layers)]
        final = combine(layers, alpha).numpy().astype(np.float32)
    item_emb = final[n_u:].copy()
    if features is not None:
        seen = np.bincount(pos[1].numpy(), minlength=n_i) > 0
        item_emb = cold_item_embeddings(item_emb, seen, features)
    return LightGCNResult(model=model, item_emb=item_emb, user_emb=final[:n_u].copy(), alpha=[float(a) for a in alpha],
                          history=history, best_epoch=best[1], best_val_ndcg=best[0],
                          seconds=time.perf_counter() - t0, examples=examples)


def feature_matrix(features: ItemFeatures) -> sp.csr_matrix:
    """Items × content features (the GNN's bags) as a sparse matrix."""
    n = len(features.offsets) - 1
    return sp.csr_matrix((features.weight, features.index, features.offsets), shape=(n, features.num_features))


def cold_item_embeddings(item_emb: np.ndarray, seen: np.ndarray, features: ItemFeatures) -> np.ndarray:
    """Embeddings for the items not ``seen`` in training: their content features times each
    feature's centroid (the mean LightGCN embedding of the warm items that have the feature,
    weighted by the feature's value), so a new item lands near warm items with the same
    categories, tags, entities and title words. The ``bias``, ``log_pop`` and ``recent_share``
    features (shared by all, or zero for a cold item) are left out. Warm items keep their own."""
    x = feature_matrix(features).tocsc()
    drop = [k for k, name in enumerate(features.names) if name in ("bias", "log_pop", "recent_share")]
    keep = np.setdiff1d(np.arange(x.shape[1]), drop)
    x = x[:, keep].tocsr()
    xw = x[np.nonzero(seen)[0]]
    mass = np.asarray(np.abs(xw).sum(axis=0)).ravel()
    centroids = (xw.T @ item_emb[seen]) / np.maximum(mass, 1e-12)[:, None]
    out = item_emb.copy()
    cold = np.nonzero(~seen)[0]
    if len(cold):
        xc = x[cold]
        rowmass = np.asarray(np.abs(xc).sum(axis=1)).ravel()
        proj = np.asarray(xc @ centroids) / np.maximum(rowmass, 1e-12)[:, None]
        # Scaled to COLD_NORM x the warm items' median norm: LightGCN's dot product reads the norm as popularity.
        typical = float(np.median(np.linalg.norm(item_emb[seen], axis=1))) if seen.any() else 1.0
        n = np.linalg.norm(proj, axis=1, keepdims=True)
        out[cold] = np.where(n > 0, proj / np.maximum(n, 1e-12) * typical * COLD_NORM, 0.0)
    return out.astype(np.float32)
