"""The hybrid's ``next`` component (:mod:`graphrec.core.recs.hybrid`): a network that learns
*what users went on to do*, the next part of their own sequence, from the part before it, rather
than co-occurrence over whole histories (EASE) or single-step successions (``trans``).

Every user's sequence of distinct positive items (by time) is cut at several fractions of its
length (:data:`CUTS`); each cut gives one training pair: as the input, the prefix's most recent
``history`` items weighted by position (``2^(-rank / half)``, rank 0 the newest before the cut, as
the ``ease`` view weighs a request's history) beside every item of the prefix (unweighted, as
``breadth`` reads a history; each part L2-normalised: :func:`graphrec.core.recs.hybrid.next_rows`)
and, as the target, the next ``max(MIN_NEXT,
⌈NEXT_FRACTION · prefix⌉)`` items after the cut (the part of a history a temporal holdout asks
for). The network has Mult-DAE's shape (Liang et al. 2018: one tanh hidden layer, a softmax over
the catalogue, the multinomial likelihood, dropout on the L2-normalised input), trained on these
pairs with torch; the engine's forward pass is numpy
(:func:`graphrec.core.recs.hybrid.next_scores`): a few hundred thousand multiply-adds a request.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.core.recs.hybrid import next_rows
from graphrec.core.snapshot import KIND_CODE, Snapshot

HALF = 10.0  # the input's position half-life (items back from the newest)
HIDDEN = 256  # the network's hidden units
EPOCHS = 6
LEARNING_RATE = 3e-3
DROPOUT = 0.5  # of the input
CUTS = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))  # where each user's sequence is cut into prefix / next
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


def fit_dae(x: sp.csr_matrix, y: sp.csr_matrix, hidden: int, epochs: int, lr: float = 1e-3, dropout: float = 0.5,
            batch: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """A one-hidden-layer network from prefixes to next items (Mult-DAE's shape, Liang et al. 2018,
    trained on prefix → next pairs): ``log_softmax(tanh(dropout(x̂) W1 + b1) W2 + b2)`` against
    the targets' multinomial likelihood, ``x̂`` the L2-normalised prefix; Adam, torch on one thread
    (the caller's). Returns ``w1, b1, w2, b2`` as float32 arrays (the forward pass:
    :func:`graphrec.core.recs.hybrid.next_scores`)."""
    import torch

    n_in, n = x.shape[1], y.shape[1]
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.nn.Parameter(torch.randn(n_in, hidden, generator=gen) / np.sqrt(n_in))
    b1 = torch.nn.Parameter(torch.zeros(hidden))
    w2 = torch.nn.Parameter(torch.randn(hidden, n, generator=gen) / np.sqrt(hidden))
    b2 = torch.nn.Parameter(torch.zeros(n))
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=lr)
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()) + 1e-9
    xn = sp.csr_matrix(sp.diags(1.0 / norm) @ x, dtype=np.float32)
    yc = sp.csr_matrix(y, dtype=np.float32)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = rng.permutation(x.shape[0])
        for s in range(0, len(perm), batch):
            b = perm[s:s + batch]
            xb = torch.from_numpy(xn[b].toarray())
            if dropout > 0:  # the generator's mask, not torch's global RNG: a fit is reproducible
                xb = xb * (torch.rand(xb.shape, generator=gen) >= dropout) / (1.0 - dropout)
            yb = torch.from_numpy(yc[b].toarray())
            logp = torch.log_softmax(torch.tanh(xb @ w1 + b1) @ w2 + b2, dim=1)
            loss = -(logp * yb).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: a.detach().numpy().astype(np.float32) for k, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))}


def fit_next(snap: Snapshot, mask: np.ndarray, half: float | None, history: int = 50, seed: int = 0
             ) -> dict[str, np.ndarray]:
    """The ``next`` network fit on the positives of ``mask`` (:func:`pairs`, :func:`fit_dae`), its
    input each prefix's recent items and its whole (:func:`graphrec.core.recs.hybrid.next_rows`)."""
    recent, y = pairs(snap, mask, half, history)
    whole, _ = pairs(snap, mask, None, np.iinfo(np.int32).max)  # the same rows: every prefix item, 1 each
    return fit_dae(next_rows(recent, whole), y, HIDDEN, EPOCHS, LEARNING_RATE, DROPOUT, seed=seed)
