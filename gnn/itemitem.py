"""Fitting the served hybrid model (:mod:`graphrec.core.recs.hybrid`): the GNN's user-item cosine,
an EASE item-item model over the user's most recent positives weighted by position, a
"what came next" transition model and a trend popularity prior, z-scored per user and summed
with weights.

Everything is fit on positive (non-SKIPPED) interactions of a mask; every hyperparameter
(EASE's lambda, the position half-life, the transition window, the trend half-life) and the
weights are chosen on a validation split (:func:`choose`), in stages so that the search stays
small: EASE's lambda and position half-life on EASE alone, then the transition window and the
trend half-life with the weights, all by NDCG@10 + Recall@100 on validation.

The item-item matrices are dense ``n_items x n_items``: the hybrid is fit only for catalogues of
at most ``gnn.hybrid.max_items`` items (the engine then ranks with the GNN and fusion alone).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.user import user_matrix
from graphrec.core.recs.hybrid import HybridScorer, combine, position_weights, zscore
from graphrec.core.snapshot import KIND_CODE, Snapshot

DAY = 86400.0
# The validation search (internal tuning, not user settings).
LAMBDAS = (250.0, 500.0, 1000.0, 2000.0)
POSITION_HALVES = (2.5, 5.0, 10.0)  # weight halves every this many interactions back
WINDOWS = (3, 6)
TREND_HALF_LIVES = (3.0, 7.0, 30.0)  # days
WEIGHT_GRID = {"gnn": (0.0, 0.5, 1.0, 2.0, 4.0), "trans": (0.0, 0.25, 0.5, 1.0), "trend": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)}
HISTORY = 50  # most recent positives per user (the engine reads engine.history interactions)
TRANS_HISTORY = 20


def positives(snap: Snapshot, mask: np.ndarray) -> np.ndarray:
    return mask & (snap.kind != KIND_CODE["SKIPPED"])


def recent_rows(snap: Snapshot, mask: np.ndarray, history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, rank) of each user's ``history`` most recent positives of ``mask`` (rank 0 =
    newest; ties in time by item index), an item counted once."""
    idx = np.nonzero(positives(snap, mask))[0]
    order = idx[np.lexsort((snap.item[idx], -snap.ts[idx], snap.user[idx]))]
    u, i = snap.user[order], snap.item[order]
    pair = u.astype(np.int64) * snap.num_items + i
    _, first = np.unique(pair, return_index=True)
    keep = np.zeros(len(order), dtype=bool)
    keep[first] = True
    u, i = u[keep], i[keep]
    starts = np.r_[0, np.nonzero(np.diff(u))[0] + 1]
    rank = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    sel = rank < history
    return u[sel], i[sel], rank[sel]


def fit_ease(x: sp.csr_matrix, lam: float) -> np.ndarray:
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def fit_transitions(snap: Snapshot, mask: np.ndarray, window: int, smoothing: float = 5.0) -> np.ndarray:
    """Row i: how often each item followed i within ``window`` steps of a user's sequence
    (1/distance), normalised by the row total + ``smoothing``."""
    idx = np.nonzero(positives(snap, mask))[0]
    order = idx[np.lexsort((snap.item[idx], snap.ts[idx], snap.user[idx]))]
    u, it = snap.user[order], snap.item[order]
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = u[d:] == u[:-d]
        rows.append(it[:-d][same])
        cols.append(it[d:][same])
        vals.append(np.full(int(same.sum()), 1.0 / d))
    n = snap.num_items
    t = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).toarray()
    return (t / np.maximum(t.sum(axis=1, keepdims=True) + smoothing, 1e-12)).astype(np.float32)


def trend(snap: Snapshot, mask: np.ndarray, half_life_days: float) -> np.ndarray:
    """log(1 + Σ 2^(-age / half-life)) per item over the positives of ``mask``, ages from its end."""
    m = positives(snap, mask)
    if not m.any():
        return np.zeros(snap.num_items, dtype=np.float32)
    now = float(snap.ts[m].max())
    w = np.power(2.0, -(now - snap.ts[m]) / (half_life_days * DAY))
    return np.log1p(np.bincount(snap.item[m], weights=w, minlength=snap.num_items)).astype(np.float32)


@dataclass
class Views:
    """What the components need for a set of users, from one mask of history."""

    ease_rows: dict[float, sp.csr_matrix]  # position half -> user x item weights
    trans_rows: sp.csr_matrix
    known: np.ndarray  # users with a positive in the history
    user_vecs: np.ndarray | None
    item_emb: np.ndarray | None


def views(snap: Snapshot, mask: np.ndarray, halves: tuple[float, ...], emb: np.ndarray | None,
          params: dict[str, Any] | None, history: int = HISTORY) -> Views:
    u, i, r = recent_rows(snap, mask, history)
    shape = (snap.num_users, snap.num_items)
    rows = {h: sp.csr_matrix((position_weights(r, h), (u, i)), shape=shape) for h in halves}
    t = r < TRANS_HISTORY
    trans_rows = sp.csr_matrix((np.power(0.9, r[t]), (u[t], i[t])), shape=shape)
    known = np.zeros(snap.num_users, dtype=bool)
    known[u] = True
    vecs = None
    if emb is not None and params is not None:
        now = float(snap.ts[mask].max())
        vecs = user_matrix(emb, snap.user[mask], snap.item[mask], snap.kind[mask], snap.value[mask], snap.ts[mask],
                           snap.num_users, now, params)
    return Views(rows, trans_rows, known, vecs, emb)


def score_fn(v: Views, model: HybridScorer) -> Callable[[np.ndarray], np.ndarray]:
    """``users -> [len(users), n_items]`` hybrid scores, as :meth:`HybridScorer.scores` gives one user."""
    half = float(model.params["position_half"])

    def score(users: np.ndarray) -> np.ndarray:
        comps = {"trend": model.trend[None, :], "ease": np.asarray(v.ease_rows[half][users] @ model.ease),
                 "trans": np.asarray(v.trans_rows[users] @ model.trans)}
        if v.user_vecs is not None and v.item_emb is not None:
            comps["gnn"] = v.user_vecs[users] @ v.item_emb.T
        return combine(comps, model.weights, v.known[users])
    return score


def fit(snap: Snapshot, mask: np.ndarray, params: dict[str, Any], weights: dict[str, float]) -> HybridScorer:
    """The hybrid model on the positives of ``mask`` with chosen ``params`` and ``weights``."""
    x = interaction_matrix(snap.user[positives(snap, mask)], snap.item[positives(snap, mask)], snap.num_users,
                           snap.num_items)
    return HybridScorer(fit_ease(x, float(params["lambda"])), fit_transitions(snap, mask, int(params["window"])),
                        trend(snap, mask, float(params["trend_half_life_days"])), dict(weights), dict(params))


def _by_row(scores: np.ndarray, row: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``users -> scores[row[users]]`` (scores computed once for the evaluated users)."""
    def score(users: np.ndarray) -> np.ndarray:
        return scores[row[users]]
    return score


def _val(score: Callable[[np.ndarray], np.ndarray], hist: sp.csr_matrix, target: sp.csr_matrix) -> float:
    m = ranking_metrics(score, hist, target)
    return m["ndcg@10"] + m["recall@100"]


def choose(snap: Snapshot, train: np.ndarray, val: np.ndarray, emb: np.ndarray | None = None,
           params: dict[str, Any] | None = None, progress: bool = False) -> tuple[dict[str, Any], dict[str, float], float]:
    """Hyperparameters and weights chosen on ``val`` (relevant targets) with models fit on
    ``train`` (``emb``/``params``: the GNN fit on ``train`` and its user-vector recipe; None: no
    GNN component). Returns (params, weights, validation NDCG@10 + Recall@100)."""
    hist = interaction_matrix(snap.user[train], snap.item[train], snap.num_users, snap.num_items)
    target = interaction_matrix(snap.user[positives(snap, val)], snap.item[positives(snap, val)], snap.num_users,
                                snap.num_items)
    v = views(snap, train, POSITION_HALVES, emb, params)
    x = interaction_matrix(snap.user[positives(snap, train)], snap.item[positives(snap, train)], snap.num_users,
                           snap.num_items)
    zero = np.zeros(snap.num_items, dtype=np.float32)
    eye = np.zeros((snap.num_items, snap.num_items), dtype=np.float32)
    best: tuple[float, float, float] = (-1.0, LAMBDAS[0], POSITION_HALVES[0])
    eases: dict[float, np.ndarray] = {}
    for lam in LAMBDAS:  # stage 1: EASE alone (cold users get nothing here: the same for every choice)
        eases[lam] = fit_ease(x, lam)
        for half in POSITION_HALVES:
            m = HybridScorer(eases[lam], eye, zero, {"ease": 1.0}, {"position_half": half})
            s = _val(score_fn(v, m), hist, target)
            if s > best[0]:
                best = (s, lam, half)
    _, lam, half = best
    ease = eases[lam]
    del eases
    choice: tuple[float, dict[str, Any], dict[str, float]] = (-1.0, {}, {})
    grid = {k: (g if (k != "gnn" or emb is not None) else (0.0,)) for k, g in WEIGHT_GRID.items()}
    users = np.nonzero(np.diff(target.indptr) > 0)[0]
    row = np.full(snap.num_users, -1)
    row[users] = np.arange(len(users))
    known = v.known[users]
    # Each component z-scored once for the validation users; a weight choice is then a weighted sum.
    fixed = {"ease": zscore(np.asarray(v.ease_rows[half][users] @ ease))}
    if v.user_vecs is not None and emb is not None:
        fixed["gnn"] = zscore(v.user_vecs[users] @ emb.T)
    for window in WINDOWS:  # stage 2: transitions, trend and the weights
        z_trans = zscore(np.asarray(v.trans_rows[users] @ fit_transitions(snap, train, window)))
        for hl in TREND_HALF_LIVES:
            tr = trend(snap, train, hl).astype(np.float64)
            z = {**fixed, "trans": z_trans, "trend": zscore(tr[None, :])}
            p = {"lambda": lam, "position_half": half, "window": window, "trend_half_life_days": hl,
                 "history": HISTORY, "trans_history": TRANS_HISTORY}
            for wg, wt, wp in itertools.product(grid["gnn"], grid["trans"], grid["trend"]):
                w = {"gnn": wg, "ease": 1.0, "trans": wt, "trend": wp}
                total = sum(w[k] * z[k] for k in z if w.get(k))
                scores = np.where(known[:, None], total, tr[None, :])
                s = _val(_by_row(scores, row), hist, target)
                if s > choice[0]:
                    choice = (s, p, w)
    return choice[1], choice[2], choice[0]
