r"""Fitting the served hybrid model (:mod:`graphrec.core.recs.hybrid`): the GNN's user-item cosine,
an EASE item-item model over the user's most recent positives (weighted by position) and
over all of them (unweighted, for breadth), a "what came next" transition model, a network from a recent history to
the next part of a sequence (:mod:`gnn.nextk`), a trend popularity
prior, the trend of the items new to the graph (:func:`fresh`) and a sequence-stage popularity prior, z-scored per user and summed with weights; users without
history are ranked by the trend and stage priors with their own weights, and users returning
after a long absence (``return_days`` from their newest positive to their request) with weights
of their own.

Everything is fit on positive (non-SKIPPED) interactions of a mask. Every hyperparameter and
weight is chosen on validation (:func:`choose`), **jointly over several splits** (one per
evaluation protocol: per-user temporal and global time cut), so that the served recipe is not
tuned to one protocol. For each split the reference is EASE (its lambda chosen on that split's
validation as the baseline's is) with MostPopular for users without history, and the objective
is the smallest of the ratios, averaged over bootstrap resamples of each split's validation users

.. math::
    \frac{1}{B} \sum_{b=1}^{B} \min_{s \in \text{splits}} \min_{m \in \{\text{NDCG@10}, \text{Recall@100}\}}
    \frac{m_s^b(\text{hybrid})}{m_s^b(\text{EASE + MostPopular})}

on the splits' validation targets, with models fit on their train parts (``m^b_s``: the mean of
the users' metric over resample ``b`` of split ``s``'s validation users, :data:`RESAMPLES` of them;
:func:`resampled_min`). The smallest ratio of one sample of users is a noisy target: weights that
lift it on the users validation happens to hold, and lose on others, score lower here than weights
whose smallest ratio holds on every resample. The search runs in
stages so that it stays small: EASE's lambda and position half-life on EASE alone (the next
network, its architecture and input weighting fixed, is fit once per split); then the
trend and stage priors and the cold weights on the users without history; then the transition
window and the weights by coordinate ascent on the grid, then per returning threshold the returning
users' weights with the others' (one ascent over both, kept when the objective improves). Every
validation user asks at the train's clock, as from the API serving the train
(:func:`graph_clock`). Training runs the search twice: on validation for the evaluation's tables,
then on the tables' test windows for the model it serves (:func:`gnn.evaluate.served_choice`).

The item-item matrices are dense ``n_items x n_items``: the hybrid is fit only for catalogues of
at most ``gnn.hybrid.max_items`` items (the engine then ranks with the GNN and fusion alone).

One module over 400 lines: the components' fits (:func:`fit`, :func:`views`, :func:`score_fn`)
and the validation search that chooses their parameters (:func:`choose`, about half the module)
are one job, fitting the hybrid: the search scores the same :class:`Views` with the same
functions over the grids below.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn import nextk
from gnn.baselines import ease_weights
from gnn.metrics import interaction_matrix
from gnn.user import user_matrix
from graphrec.core.recs.hybrid import (
    COMPONENTS,
    HybridScorer,
    cold_scores,
    combine,
    next_rows,
    next_scores,
    position_weights,
    reads_whole,
    returning,
    standardise,
    zscore,
)
from graphrec.core.snapshot import KIND_CODE, Snapshot

DAY = 86400.0
# The validation search (internal tuning, not user settings).
LAMBDAS = (250.0, 500.0, 1000.0, 2000.0)
POSITION_HALVES = (2.5, 5.0, 10.0)  # weight halves every this many interactions back
WINDOWS = (3, 6)
TREND_HALF_LIVES = (3.0, 7.0, 30.0)  # days
FRESH_DAYS = 30.0  # an item's age (days since its first positive) at which its fresh score is trend / e
STAGE_SPANS = (10, 20)  # sequence positions [n, n + span) counted by the stage prior
STAGE_HALF_LIFE_DAYS = 30.0
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # each known-user weight's grid (coordinate ascent)
COLD_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
ROUNDS = 3  # coordinate-ascent passes over the weights at most
REFERENCE_LAMBDAS = (100.0, 250.0, 500.0, 1000.0)  # the EASE baseline's grid (gnn.evaluate.baselines)
RETURN_DAYS: tuple[float | None, ...] = (None, 14.0, 30.0)  # a returning user's days without a positive
RESAMPLES = 64  # bootstrap resamples of each split's validation users the objective averages over
RESAMPLE_SEED = 1234  # split j draws its resamples with seed RESAMPLE_SEED + j
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
    """EASE on ``x`` (:func:`gnn.baselines.ease_weights`: solved once per matrix and λ in a run)."""
    return ease_weights(x, lam)


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


def fresh(snap: Snapshot, mask: np.ndarray, trend_row: np.ndarray, days: float) -> np.ndarray:
    """``e^(-age / days) · trend_row`` per item, ``age`` the days from the item's first positive of
    ``mask`` to the end of ``mask`` (0 for an item without a positive: it has no trend either)."""
    m = positives(snap, mask)
    if not m.any():
        return np.zeros(snap.num_items, dtype=np.float32)
    first = np.full(snap.num_items, np.inf)
    np.minimum.at(first, snap.item[m], snap.ts[m])
    age = (float(snap.ts[m].max()) - first) / DAY
    decay = np.where(np.isfinite(age), np.exp(-np.maximum(age, 0.0) / days), 0.0)
    return (decay * np.asarray(trend_row, dtype=np.float64)).astype(np.float32)


def stage_matrix(snap: Snapshot, mask: np.ndarray, span: int, half_life_days: float, cap: int = HISTORY
                 ) -> np.ndarray:
    """``[cap + 1, n_items]``: row ``k`` is log(1 + Σ 2^(-age / half-life)) over the positives of
    ``mask`` at positions ``[k, k + span)`` of their user's sequence (position 0 = a user's first
    distinct item; ages from the end of ``mask``); the last row counts positions ``>= cap``."""
    idx = np.nonzero(positives(snap, mask))[0]
    out = np.zeros((cap + 1, snap.num_items), dtype=np.float64)
    if len(idx) == 0:
        return out.astype(np.float32)
    order = idx[np.lexsort((snap.item[idx], snap.ts[idx], snap.user[idx]))]
    u, it = snap.user[order], snap.item[order]
    pair = u.astype(np.int64) * snap.num_items + it
    _, first = np.unique(pair, return_index=True)  # an item counts at its first position
    keep = np.zeros(len(order), dtype=bool)
    keep[first] = True
    order, u, it = order[keep], u[keep], it[keep]
    starts = np.r_[0, np.nonzero(np.diff(u))[0] + 1]
    rank = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    now = float(snap.ts[idx].max())
    w = np.power(2.0, -(now - snap.ts[order]) / (half_life_days * DAY))
    top = cap + span
    per = np.zeros((top + 1, snap.num_items), dtype=np.float64)
    np.add.at(per, (np.minimum(rank, top), it), w)
    cum = np.vstack([np.zeros((1, snap.num_items)), np.cumsum(per, axis=0)])
    for k in range(cap):
        out[k] = cum[k + span] - cum[k]
    out[cap] = cum[-1] - cum[cap]
    return np.log1p(np.maximum(out, 0.0)).astype(np.float32)


@dataclass
class Views:
    """What the components need for a set of users, from one mask of history."""

    ease_rows: dict[float | None, sp.csr_matrix]  # position half -> user x item weights; None: every positive, 1 each
    trans_rows: sp.csr_matrix
    known: np.ndarray  # users with a positive in the history
    counts: np.ndarray  # distinct positive items per user (at most ``history``): their stage row
    last: np.ndarray  # per user, the time of their newest positive (-inf: none)
    user_vecs: np.ndarray | None
    item_emb: np.ndarray | None


def views(snap: Snapshot, mask: np.ndarray, halves: tuple[float | None, ...], emb: np.ndarray | None,
          params: dict[str, Any] | None, history: int = HISTORY) -> Views:
    u, i, r = recent_rows(snap, mask, history)
    shape = (snap.num_users, snap.num_items)
    rows = {h: sp.csr_matrix((position_weights(r, h), (u, i)), shape=shape) for h in (*halves, nextk.HALF)}
    every = positives(snap, mask)  # breadth: every positive item, once (the engine: the user state's consumed items)
    rows[None] = interaction_matrix(snap.user[every], snap.item[every], *shape).astype(np.float64)
    t = r < TRANS_HISTORY
    trans_rows = sp.csr_matrix((np.power(0.9, r[t]), (u[t], i[t])), shape=shape)
    known = np.zeros(snap.num_users, dtype=bool)
    known[u] = True
    counts = np.bincount(u, minlength=snap.num_users)
    pm = positives(snap, mask)
    last = np.full(snap.num_users, -np.inf)
    np.maximum.at(last, snap.user[pm], snap.ts[pm])
    vecs = None
    if emb is not None and params is not None:
        now = float(snap.ts[mask].max())
        vecs = user_matrix(emb, snap.user[mask], snap.item[mask], snap.kind[mask], snap.value[mask], snap.ts[mask],
                           snap.num_users, now, params)
    return Views(rows, trans_rows, known, counts, last, vecs, emb)


def graph_clock(snap: Snapshot, mask: np.ndarray) -> float:
    """The engine's clock when ``mask`` is the graph: its newest interaction (``Catalog.now``; a
    request without its own ``now`` is ranked at this time). An offline evaluation's users ask for
    recommendations at the clock of the history they are ranked from, every user at the same time,
    as they would ask the API serving that history; not at the time of their first held-out
    interaction, which the API does not know (it would make every user of a per-user temporal
    split look active right before their request)."""
    return float(snap.ts[mask].max()) if mask.any() else float("nan")


def score_fn(v: Views, model: HybridScorer, now: np.ndarray | float | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``users -> [len(users), n_items]`` hybrid scores, as :meth:`HybridScorer.scores` gives one
    user; ``now``: the request's clock, one for every user (:func:`graph_clock`) or one per user
    (None: no user returning)."""
    half = float(model.params["position_half"])

    def score(users: np.ndarray) -> np.ndarray:
        comps = {"trend": model.trend[None, :], "ease": np.asarray(v.ease_rows[half][users] @ model.ease),
                 "breadth": np.asarray(v.ease_rows[None][users] @ model.ease),
                 "trans": np.asarray(v.trans_rows[users] @ model.trans)}
        if v.user_vecs is not None and v.item_emb is not None:
            comps["gnn"] = v.user_vecs[users] @ v.item_emb.T
        if model.fresh is not None:
            comps["fresh"] = model.fresh[None, :]
        if model.stage is not None:
            comps["stage"] = model.stage[np.minimum(v.counts[users], len(model.stage) - 1)]
        if model.next is not None:
            x = v.ease_rows[model.params.get("next_half")][users]
            comps["next"] = next_scores(next_rows(x, v.ease_rows[None][users]) if reads_whole(model.next) else x,
                                        model.next)
        at = now[users] if isinstance(now, np.ndarray) else now
        ret = returning(at, v.last[users], model.params.get("return_days"))
        return combine(comps, model.weights, v.known[users], model.cold_components(), model.cold_weights, ret,
                       model.return_weights)
    return score


def fit(snap: Snapshot, mask: np.ndarray, params: dict[str, Any], weights: dict[str, float],
        cold_weights: dict[str, float] | None = None, return_weights: dict[str, float] | None = None) -> HybridScorer:
    """The hybrid model on the positives of ``mask`` with chosen ``params`` and ``weights`` (the
    stage prior when ``params`` has ``stage_span``, the fresh row when it has ``fresh_days``)."""
    x = interaction_matrix(snap.user[positives(snap, mask)], snap.item[positives(snap, mask)], snap.num_users,
                           snap.num_items)
    stage = None
    if "stage_span" in params:
        stage = stage_matrix(snap, mask, int(params["stage_span"]), float(params["stage_half_life_days"]),
                             int(params.get("history", HISTORY)))
    nxt = None
    if "next_half" in params and (weights.get("next") or (return_weights or {}).get("next")):
        nxt = nextk.fit_next(snap, mask, params["next_half"], int(params.get("history", HISTORY)),
                             int(params.get("next_seed", 0)))
    tr = trend(snap, mask, float(params["trend_half_life_days"]))
    new = fresh(snap, mask, tr, float(params["fresh_days"])) if "fresh_days" in params else None
    return HybridScorer(fit_ease(x, float(params["lambda"])), fit_transitions(snap, mask, int(params["window"])),
                        tr, dict(weights), dict(params), stage, dict(cold_weights or {}), dict(return_weights or {}),
                        nxt, new)


def user_metrics(scores: np.ndarray, seen: sp.csr_matrix, targets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per user, NDCG@10 and Recall@100 of ``scores`` (rows: the users of ``seen``/``targets``),
    items in ``seen`` ranked out: the definitions of :func:`gnn.metrics.ranking_metrics`, in
    numpy for the validation search."""
    neg = -np.asarray(scores, dtype=np.float64)  # a copy: the seen items are set to +inf in it
    if len(neg) == 0:
        return np.zeros(0), np.zeros(0)
    r, c = seen.nonzero()
    neg[r, c] = np.inf
    k = min(100, neg.shape[1] - 1)
    top = np.argpartition(neg, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(neg, top, 1), axis=1, kind="stable"), 1)
    finite = np.isfinite(np.take_along_axis(neg, top, 1))
    disc = 1.0 / np.log2(np.arange(2, 12))
    n_rel = np.array([len(rel) for rel in targets], dtype=np.int64)
    relevant = np.zeros(neg.shape, dtype=bool)  # [users, items]: the targets, looked up at the top ranks
    relevant[np.repeat(np.arange(len(targets)), n_rel), np.concatenate(targets).astype(np.int64)] = True
    hit = np.take_along_axis(relevant, top, 1) & finite
    ideal = np.array([disc[:n].sum() for n in range(11)])
    ndcg = (hit[:, :10] * disc[: min(10, k)]).sum(axis=1) / ideal[np.minimum(10, n_rel)]
    recall = hit.sum(axis=1) / n_rel
    return ndcg, recall


@dataclass
class Choice:
    """What :func:`choose` chose: the hybrid's ``params``, ``weights`` and ``cold_weights``,
    ``value`` (the smallest validation ratio to the reference), ``ratios`` (per split, the
    validation NDCG@10 and Recall@100 as multiples of the reference's) and ``objective`` (what the
    search maximised: that smallest ratio averaged over resamples of the validation users,
    :func:`resampled_min`)."""

    params: dict[str, Any]
    weights: dict[str, float]
    cold_weights: dict[str, float]
    value: float
    ratios: list[dict[str, float]] = field(default_factory=list)
    return_weights: dict[str, float] = field(default_factory=dict)
    objective: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "weights": self.weights, "cold_weights": self.cold_weights,
                "return_weights": self.return_weights, "value": self.value, "ratios": self.ratios,
                "objective": self.objective}


@dataclass
class _Split:
    """One split's validation: its users, their seen items and targets, the reference's metrics."""

    j: int  # its index in the splits given
    v: Views
    x: sp.csr_matrix  # train positives
    users: np.ndarray
    seen: sp.csr_matrix
    targets: list[np.ndarray]
    known: np.ndarray  # per validation user
    #: [2, users]: the reference's (EASE + MostPopular) NDCG@10 and Recall@100 per validation user,
    #: the known users first, then the others (the order the search concatenates the hybrid's in)
    ref_users: np.ndarray
    gap: np.ndarray  # per known validation user: days from their newest train positive to their first target
    resamples: np.ndarray  # [users, RESAMPLES]: the objective's resamples of the rows of ref_users (resample_matrix)
    z: dict[str, np.ndarray] = field(default_factory=dict)  # z-scored components of the known users

    @property
    def ref(self) -> tuple[float, float]:
        """The reference's NDCG@10 and Recall@100 over every validation user."""
        return float(self.ref_users[0].mean()), float(self.ref_users[1].mean())

    @property
    def ref_cold(self) -> tuple[float, float]:
        """MostPopular's (the reference's rows) on the users without history; (0, 0): none."""
        cold = self.ref_users[:, int(self.known.sum()):]
        return (float(cold[0].mean()), float(cold[1].mean())) if cold.shape[1] else (0.0, 0.0)


def _prepare(snap: Snapshot, j: int, train: np.ndarray, val: np.ndarray, emb: np.ndarray | None,
             params: dict[str, Any] | None) -> _Split | None:
    hist = interaction_matrix(snap.user[train], snap.item[train], snap.num_users, snap.num_items)
    vp = positives(snap, val)
    target = interaction_matrix(snap.user[vp], snap.item[vp], snap.num_users, snap.num_items)
    users = np.nonzero(np.diff(target.indptr) > 0)[0]
    if len(users) == 0:
        return None
    tp = positives(snap, train)
    x = interaction_matrix(snap.user[tp], snap.item[tp], snap.num_users, snap.num_items)
    v = views(snap, train, POSITION_HALVES, emb, params)
    seen = hist[users]
    targets = [target.indices[target.indptr[u]:target.indptr[u + 1]] for u in users]
    known = v.known[users]
    pop = np.asarray(x.sum(axis=0), dtype=np.float64)  # MostPopular: train counts
    best: tuple[float, np.ndarray] = (-1.0, np.zeros((2, 0)))
    for lam in REFERENCE_LAMBDAS:  # the EASE baseline's choice: best validation NDCG@10
        ease = np.asarray(x[users] @ fit_ease(x, lam), dtype=np.float64)
        nd, rc = user_metrics(np.where(known[:, None], ease, pop), seen, targets)
        if nd.mean() > best[0]:
            best = (float(nd.mean()), np.stack([np.r_[nd[known], nd[~known]], np.r_[rc[known], rc[~known]]]))
    k = users[known]
    gap = (graph_clock(snap, train) - v.last[k]) / DAY  # days before the request (the train's clock)
    draws = np.random.default_rng(RESAMPLE_SEED + j).integers(0, len(users), size=(RESAMPLES, len(users)))
    return _Split(j, v, x, users, seen, targets, known, best[1], gap, resample_matrix(draws))


def _ratios(nd: np.ndarray, rc: np.ndarray, ref: tuple[float, float]) -> tuple[float, float]:
    return float(nd.mean()) / max(ref[0], 1e-12), float(rc.mean()) / max(ref[1], 1e-12)


def resample_matrix(draws: np.ndarray) -> np.ndarray:
    """``[users, resamples]``: per resample of ``draws`` (``[resamples, users]`` row indices, users
    drawn with replacement), how often it drew each user over how many it drew, so that per-user
    metrics ``[metrics, users] @`` it are the resamples' means (one product per trial of the search,
    not a gather of every resample)."""
    n_res, n = draws.shape
    counts = np.bincount((np.arange(n_res)[:, None] * n + draws).ravel(), minlength=n_res * n)
    return (counts.reshape(n_res, n) / n).T


def resampled_min(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """The search's objective: per resample, the smallest ratio over splits and metrics of the
    hybrid's mean to the reference's over the resampled users; averaged over the resamples.
    ``parts``: per split ``(hybrid, reference, resamples)``, the first two ``[metrics, users]``
    per-user metrics, ``resamples`` the :func:`resample_matrix` of the split's draws."""
    mins = np.full(parts[0][2].shape[1], np.inf)
    for h, r, m in parts:
        ratio = (h @ m) / np.maximum(r @ m, 1e-12)  # [metrics, resamples]
        mins = np.minimum(mins, ratio.min(axis=0))
    return float(mins.mean())


def choose(snap: Snapshot, splits: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any] | None]],
           progress: bool = False, exclude: Collection[str] = (), seed: int = 0,
           nets: Sequence[dict[str, np.ndarray] | None] | None = None) -> Choice:
    """Hyperparameters and weights chosen on validation, jointly over ``splits``: each
    ``(train, val, emb, params)`` with ``val`` the relevant validation targets and ``emb``/``params``
    the served GNN fit on ``train`` and its user-vector recipe (None: no GNN component). Returns
    the :class:`Choice` maximising the smallest ratio to the reference over splits and metrics
    (see the module docstring). ``exclude``: components left out (weight 0; an ablation);
    ``seed``: the next network's initialisation and batches; ``nets``: per split, the next network
    already fit on its ``train`` with this seed (:func:`fit` fits the same one), or None to fit it here."""
    prepared = [p for p in (_prepare(snap, j, *s) for j, s in enumerate(splits)) if p is not None]
    if not prepared:
        raise ValueError("no validation targets to choose the hybrid on")
    have_gnn = all(p.v.user_vecs is not None for p in prepared)

    # Stage 1: EASE's lambda and position half-life, EASE alone on the known users.
    stage1: tuple[float, float, float] = (-np.inf, LAMBDAS[0], POSITION_HALVES[0])
    eases: dict[float, list[np.ndarray]] = {}
    for lam in LAMBDAS:
        models = [fit_ease(p.x, lam) for p in prepared]
        for half in POSITION_HALVES:
            total = 0.0
            for p, b in zip(prepared, models, strict=True):
                k = p.users[p.known]
                nd, rc = user_metrics(np.asarray(p.v.ease_rows[half][k] @ b), p.seen[p.known],
                                      [t for t, kn in zip(p.targets, p.known, strict=True) if kn])
                total += sum(_ratios(nd, rc, p.ref))
            if total > stage1[0]:
                stage1 = (total, lam, half)
                eases = {lam: models}
    _, lam, half = stage1
    for p, b in zip(prepared, eases[lam], strict=True):
        k = p.users[p.known]
        p.z = {"ease": zscore(np.asarray(p.v.ease_rows[half][k] @ b)),
               "breadth": zscore(np.asarray(p.v.ease_rows[None][k] @ b))}
        if p.v.user_vecs is not None and p.v.item_emb is not None:
            p.z["gnn"] = zscore(p.v.user_vecs[k] @ p.v.item_emb.T)
    # The next network (gnn.nextk) on each split's train (its architecture and input weighting fixed).
    for p in prepared if "next" not in exclude else ():
        given = nets[p.j] if nets is not None else None
        net = given if given is not None else nextk.fit_next(snap, splits[p.j][0], nextk.HALF, HISTORY, seed)
        k = p.users[p.known]
        p.z["next"] = zscore(next_scores(next_rows(p.v.ease_rows[nextk.HALF][k], p.v.ease_rows[None][k]), net))
    # Stage 2: the trend and stage priors and the cold weights, on the users without history.
    cold_splits = [p for p in prepared if (~p.known).any()]
    best2: tuple[float, float, int, dict[str, float]] = (-np.inf, TREND_HALF_LIVES[0], STAGE_SPANS[0], {"trend": 1.0})
    trends = {hl: [trend(snap, tr, hl).astype(np.float64) for tr, *_ in splits] for hl in TREND_HALF_LIVES}
    stages = {span: [stage_matrix(snap, tr, span, STAGE_HALF_LIFE_DAYS).astype(np.float64) for tr, *_ in splits]
              for span in STAGE_SPANS}
    for hl in TREND_HALF_LIVES:
        for span in STAGE_SPANS:
            for wt, ws in itertools.product(COLD_WEIGHTS, COLD_WEIGHTS):
                if not (wt or ws):
                    continue
                cw = {"trend": wt, "stage": ws}
                total = 0.0
                for p in cold_splits:
                    j = p.j
                    row = cold_scores(trends[hl][j], {"trend": trends[hl][j], "stage": stages[span][j][0]}, cw)
                    cold = ~p.known
                    nd, rc = user_metrics(np.broadcast_to(row, (int(cold.sum()), snap.num_items)), p.seen[cold],
                                          [t for t, kn in zip(p.targets, p.known, strict=True) if not kn])
                    total += sum(_ratios(nd, rc, p.ref_cold))
                if total > best2[0]:
                    best2 = (total, hl, span, cw)
            if not cold_splits:
                break
        if not cold_splits:
            break
    _, hl, span, cold_w = best2
    if not cold_splits:
        cold_w = {"trend": 1.0}
    cold_part = []
    for p in prepared:
        j = p.j
        row = cold_scores(trends[hl][j], {"trend": trends[hl][j], "stage": stages[span][j][0]}, cold_w)
        cold = ~p.known
        cold_part.append(user_metrics(np.broadcast_to(row, (int(cold.sum()), snap.num_items)), p.seen[cold],
                                      [t for t, kn in zip(p.targets, p.known, strict=True) if not kn]))
        k = p.users[p.known]
        p.z["trend"] = zscore(trends[hl][j][None, :])
        if "fresh" not in exclude:
            p.z["fresh"] = standardise("fresh", fresh(snap, splits[j][0], trends[hl][j], FRESH_DAYS)[None, :])
        p.z["stage"] = zscore(stages[span][j][np.minimum(p.v.counts[k], HISTORY)])
    # Stage 3: the transition window and the known users' weights (coordinate ascent on the grid);
    # then, per window and returning threshold the returning users' weights and again
    # the others' (one ascent over both vectors from the weights found), kept when the objective
    # improves. A step changes one vector: only the users it ranks are scored again.
    names = [c for c in COMPONENTS if (c != "gnn" or have_gnn) and c not in exclude]
    known_targets = [[t for t, kn in zip(p.targets, p.known, strict=True) if kn] for p in prepared]

    def scores_with(p: _Split, w: dict[str, float]) -> np.ndarray:
        """The known users of ``p`` scored with ``w``: ``[known users, items]``."""
        out = np.zeros((int(p.known.sum()), snap.num_items))
        for c in names:
            if w.get(c):
                out += w[c] * p.z[c]
        return out

    Scored = tuple[float, list[tuple[float, float]]]  # the objective, and per split the two ratios

    def ascend(w: dict[str, float], wr: dict[str, float], days: float | None
               ) -> tuple[dict[str, float], dict[str, float], Scored]:
        rets = [p.gap >= days if days is not None else np.zeros(len(p.gap), dtype=bool) for p in prepared]
        sels = [[~ret, ret] for ret in rets]  # per split, the known users each vector ranks
        # Per split and vector, its users' seen items and targets (fixed for the ascent).
        truth = [[(p.seen[p.known][sel], [t[i] for i in np.nonzero(sel)[0]]) for sel in pair]
                for p, t, pair in zip(prepared, known_targets, sels, strict=True)]
        vecs = [dict(w), dict(wr)]
        # Per vector and split, every known user scored with it: a trial adds one component's change.
        totals = [[scores_with(p, vec) for p in prepared] for vec in (vecs if days is not None else vecs[:1])]
        per = []  # per split, per known user: (NDCG@10, Recall@100) as ranked now
        for pi, ret in enumerate(rets):
            nd, rc = np.zeros(len(ret)), np.zeros(len(ret))
            for which, sel in enumerate(sels[pi]):
                if sel.any():
                    nd[sel], rc[sel] = user_metrics(totals[which][pi][sel], *truth[pi][which])
            per.append((nd, rc))

        def scored(per: list[tuple[np.ndarray, np.ndarray]]) -> Scored:
            rows = [np.stack([np.r_[nd, cnd], np.r_[rc, crc]])
                    for (nd, rc), (cnd, crc) in zip(per, cold_part, strict=True)]
            return (resampled_min([(h, p.ref_users, p.resamples) for h, p in zip(rows, prepared, strict=True)]),
                    [_ratios(h[0], h[1], p.ref) for h, p in zip(rows, prepared, strict=True)])

        cur = scored(per)
        keys = [(0, c) for c in names] + ([(1, c) for c in names] if days is not None else [])
        for _ in range(ROUNDS):
            improved = False
            for which, c in keys:
                for g in WEIGHTS:
                    vec = vecs[which]
                    if g == vec[c] or not any(vec[o] for o in names if o != c) and not g:
                        continue
                    trial = dict(vec, **{c: g})
                    step = g - vec[c]
                    new = []
                    for pi, (p, (nd, rc)) in enumerate(zip(prepared, per, strict=True)):
                        sel = sels[pi][which]
                        nd, rc = nd.copy(), rc.copy()
                        if sel.any():
                            zc = np.broadcast_to(p.z[c], totals[which][pi].shape)
                            nd[sel], rc[sel] = user_metrics(totals[which][pi][sel] + step * zc[sel], *truth[pi][which])
                        new.append((nd, rc))
                    r = scored(new)
                    if r[0] > cur[0] + 1e-6:
                        vecs[which], per, cur, improved = trial, new, r, True
                        for pi, p in enumerate(prepared):
                            totals[which][pi] += step * p.z[c]
            if not improved:
                break
        return vecs[0], vecs[1], cur

    Found = tuple[float, int, float | None, dict[str, float], dict[str, float], list[tuple[float, float]]]
    best3: Found = (-np.inf, WINDOWS[0], None, {}, {}, [])  # the objective first
    for window in WINDOWS:
        for p in prepared:
            p.z["trans"] = zscore(np.asarray(p.v.trans_rows[p.users[p.known]]
                                             @ fit_transitions(snap, splits[p.j][0], window)))
        w0 = {c: 0.0 for c in names}
        w0.update(ease=1.0, trans=0.25, trend=0.5, next=1.0 if "next" in names else 0.0)  # fresh from 0
        w, _, cur = ascend(w0, w0, None)
        found: Found = (cur[0], window, None, w, {}, cur[1])
        for days in RETURN_DAYS:
            if days is None or not any((p.gap >= days).any() for p in prepared):
                continue
            wd, wr, cur_d = ascend(w, w, days)
            if cur_d[0] > found[0] + 1e-6:
                found = (cur_d[0], window, days, wd, wr, cur_d[1])
        if found[0] > best3[0]:
            best3 = found
    objective, window, days, weights, ret_w, ratios = best3
    params: dict[str, Any] = {
        "lambda": lam, "position_half": half, "window": window, "trend_half_life_days": hl, "stage_span": span,
        "stage_half_life_days": STAGE_HALF_LIFE_DAYS, "history": HISTORY, "trans_history": TRANS_HISTORY,
        "breadth": "all"}
    if "fresh" not in exclude:
        params["fresh_days"] = FRESH_DAYS
    if "next" not in exclude:
        params.update(next_half=nextk.HALF, next_seed=seed, next_hidden=nextk.HIDDEN, next_epochs=nextk.EPOCHS)
    if days is not None:
        params["return_days"] = days
    weights = {c: float(weights.get(c, 0.0)) for c in COMPONENTS}
    return_weights = {c: float(ret_w.get(c, 0.0)) for c in COMPONENTS} if days is not None else {}
    return Choice(params, weights, {c: float(x) for c, x in cold_w.items()}, min(min(r) for r in ratios),
                  [{"ndcg@10": a, "recall@100": b} for a, b in ratios], return_weights, float(objective))
