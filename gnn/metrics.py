"""Full-ranking metrics: every item is a candidate except the user's training items.

NDCG@10, Recall@10, Recall@100, HitRate@10 (averaged over users with held-out items) and catalog
coverage@10 (share of the catalogue that appears in anyone's top 10). The ranking metrics are
``torch_geometric.metrics`` (``LinkPredNDCG``, ``LinkPredRecall``, ``LinkPredHitRatio``) over each
user's top 100.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.metrics import (
    LinkPredHitRatio,
    LinkPredMetricCollection,
    LinkPredNDCG,
    LinkPredRecall,
)


def ranking_metrics(score_fn: Callable[[np.ndarray], np.ndarray], train: sp.csr_matrix, test: sp.csr_matrix,
                    batch: int = 512, k_max: int = 100) -> dict[str, float]:
    """``score_fn(users) -> [len(users), n_items]``; ``train``/``test`` are user×item 0/1 matrices."""
    users = np.nonzero(np.diff(test.indptr) > 0)[0]
    n_items = train.shape[1]
    batch = max(1, min(batch, (1 << 24) // max(1, n_items)))  # at most 16M scores (128 MB) at a time
    k = min(k_max, n_items - 1)
    metrics = LinkPredMetricCollection({
        "ndcg@10": LinkPredNDCG(10), "recall@10": LinkPredRecall(10), "recall@100": LinkPredRecall(100),
        "hitrate@10": LinkPredHitRatio(10)})
    shown = np.zeros(n_items + 1, dtype=bool)
    for s in range(0, len(users), batch):
        u = users[s:s + batch]
        scores = np.asarray(score_fn(u), dtype=np.float64).copy()
        scores[train[u].nonzero()] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        # A user who has seen nearly everything has fewer than k candidates: the rest of the row is
        # padding (index n_items, never relevant), not their train items.
        top[np.isneginf(np.take_along_axis(scores, top, 1))] = n_items
        shown[top[:, :10]] = True
        te = test[u].tocoo()  # rows are the batch's users, columns their held-out items
        metrics.update(torch.from_numpy(top), torch.from_numpy(np.stack([te.row, te.col]).astype(np.int64)))
    out = {name: float(v) for name, v in metrics.compute().items()}
    return {**out, "coverage@10": float(shown[:n_items].mean()), "users": int(len(users))}


def interaction_matrix(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(user), np.float32), (user, item)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
