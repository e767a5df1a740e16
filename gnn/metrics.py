"""Full-ranking metrics: every item is a candidate except the user's training items.

NDCG@10, Recall@10, Recall@100, HitRate@10 (averaged over users with held-out items) and catalog
coverage@10 (share of the catalogue that appears in anyone's top 10).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp


def ranking_metrics(score_fn: Callable[[np.ndarray], np.ndarray], train: sp.csr_matrix, test: sp.csr_matrix,
                    batch: int = 512, k_max: int = 100) -> dict[str, float]:
    """``score_fn(users) -> [len(users), n_items]``; ``train``/``test`` are user×item 0/1 matrices."""
    users = np.nonzero(np.diff(test.indptr) > 0)[0]
    n_items = train.shape[1]
    batch = max(1, min(batch, (1 << 24) // max(1, n_items)))  # at most 16M scores (128 MB) at a time
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ndcg, r10, r100, hit = [], [], [], []
    seen = np.zeros(n_items, dtype=bool)
    for s in range(0, len(users), batch):
        u = users[s:s + batch]
        scores = np.asarray(score_fn(u), dtype=np.float64).copy()
        tr = train[u]
        scores[tr.nonzero()] = -np.inf
        k = min(k_max, n_items - 1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        te = test[u]
        for r in range(len(u)):
            rel = set(te.indices[te.indptr[r]:te.indptr[r + 1]].tolist())
            hits = np.array([i in rel for i in top[r].tolist()])
            dcg = float((hits[:10] * discounts[: len(hits[:10])]).sum())
            idcg = float(discounts[: min(10, len(rel))].sum())
            ndcg.append(dcg / idcg)
            r10.append(hits[:10].sum() / len(rel))
            r100.append(hits[:100].sum() / len(rel))
            hit.append(float(hits[:10].any()))
            seen[top[r, :10]] = True
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(r10)), "recall@100": float(np.mean(r100)),
            "hitrate@10": float(np.mean(hit)), "coverage@10": float(seen.mean()), "users": int(len(users))}


def interaction_matrix(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(user), np.float32), (user, item)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
