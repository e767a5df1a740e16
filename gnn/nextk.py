r"""The hybrid's ``next`` component (:mod:`graphrec.core.recs.hybrid`): a linear item-item model
learned from *what users went on to do*, the next part of their own sequence, rather than from
co-occurrence over whole histories (EASE) or single-step successions (``trans``).

Every user's sequence of distinct positive items (by time) is cut at several fractions of its
length; each cut gives one training pair: the prefix's most recent ``history`` items weighted by
position (``2^(-rank / half)``, rank 0 the newest before the cut, as the ``ease`` view weighs a
request's history) and, as the target, the indicator of the next ``max(min_next, ⌈next_fraction ·
prefix⌉)`` items after the cut (the part of a history a temporal holdout asks for). The weights
are ridge regression from prefixes to targets,

.. math::
    W = (X^\top X + \lambda I)^{-1} X^\top Y,

one dense ``n_items x n_items`` solve (the hybrid runs only for catalogues of at most
``gnn.hybrid.max_items`` items). A user's scores are their position-weighted recent items times
``W``: the same product as the ``ease`` view, with another matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from graphrec.core.snapshot import KIND_CODE, Snapshot

CUTS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # where each user's sequence is cut into prefix / next
NEXT_FRACTION = 0.25  # the target: the next ⌈this · prefix length⌉ items ...
MIN_NEXT = 3  # ... and at least this many
MIN_PREFIX = 3  # a cut with fewer prefix items gives no pair


def sequences(snap: Snapshot, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, position) of each user's distinct positive items of ``mask`` in time order
    (position 0 = the first; an item counted at its first interaction; ties by item index)."""
    idx = np.nonzero(mask & (snap.kind != KIND_CODE["SKIPPED"]))[0]
    order = idx[np.lexsort((snap.item[idx], snap.ts[idx], snap.user[idx]))]
    u, it = snap.user[order], snap.item[order]
    _, first = np.unique(u.astype(np.int64) * snap.num_items + it, return_index=True)
    keep = np.zeros(len(order), dtype=bool)
    keep[first] = True
    u, it = u[keep], it[keep]
    if len(u) == 0:
        return u, it, np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.nonzero(np.diff(u))[0] + 1]
    pos = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    return u, it, pos


def pairs(snap: Snapshot, mask: np.ndarray, half: float | None, history: int = 50,
          cuts: tuple[float, ...] = CUTS) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(X, Y)``: one row per (user, cut) with a prefix of at least :data:`MIN_PREFIX` items and a
    non-empty next part: the prefix's position-weighted recent items and the next items' indicator."""
    u, it, pos = sequences(snap, mask)
    n_items = snap.num_items
    length = np.bincount(u, minlength=snap.num_users)[u] if len(u) else np.zeros(0, dtype=np.int64)
    xr, xc, xv, yr, yc = [], [], [], [], []
    row = 0
    for f in cuts:
        c = np.floor(f * length).astype(np.int64)  # per interaction: its user's prefix length at this cut
        k = np.maximum(MIN_NEXT, np.ceil(NEXT_FRACTION * c)).astype(np.int64)
        ok = (c >= MIN_PREFIX) & (c < length)
        users = np.unique(u[ok])
        rid = np.full(snap.num_users, -1, dtype=np.int64)
        rid[users] = row + np.arange(len(users))
        row += len(users)
        back = c - 1 - pos  # rank back from the newest prefix item
        inx = ok & (back >= 0) & (back < history)
        iny = ok & (pos >= c) & (pos < c + k)
        xr.append(rid[u[inx]])
        xc.append(it[inx])
        xv.append(np.ones(int(inx.sum())) if half is None else np.power(2.0, -back[inx] / float(half)))
        yr.append(rid[u[iny]])
        yc.append(it[iny])
    shape = (row, n_items)
    x = sp.csr_matrix((np.concatenate(xv), (np.concatenate(xr), np.concatenate(xc))), shape=shape)
    yrow = np.concatenate(yr)
    y = sp.csr_matrix((np.ones(len(yrow)), (yrow, np.concatenate(yc))), shape=shape)
    return x, y


def gram(x: sp.csr_matrix, y: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(XᵀX, XᵀY)`` dense: what :func:`solve` needs, once for several λ."""
    xt = x.T.tocsr()
    return np.asarray((xt @ x).toarray(), dtype=np.float64), np.asarray((xt @ y).toarray(), dtype=np.float64)


def solve(g: tuple[np.ndarray, np.ndarray], lam: float) -> np.ndarray:
    """The ridge weights ``(XᵀX + λI)⁻¹ XᵀY`` from :func:`gram`'s products."""
    xx, xy = g
    a = xx.copy()
    a[np.diag_indices_from(a)] += float(lam)
    return scipy.linalg.solve(a, xy, assume_a="pos", overwrite_a=True, check_finite=False).astype(np.float32)


def fit_next(snap: Snapshot, mask: np.ndarray, lam: float, half: float | None, history: int = 50) -> np.ndarray:
    """``[n_items, n_items]``: the ``next`` model fit on the positives of ``mask`` (row: a history item)."""
    return solve(gram(*pairs(snap, mask, half, history)), lam)
