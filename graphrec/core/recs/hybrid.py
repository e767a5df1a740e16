"""The hybrid scorer the engine ranks with when the live model version has one (fit by
:mod:`gnn.itemitem`): per user, over the whole catalogue,

.. math::
    s(u, i) = \\sum_c w_c \\, z_u\\big(s_c(u, \\cdot)\\big)_i

where ``z_u`` standardises a component's scores over the catalogue (mean 0, std 1 per user) and
the components are

- ``gnn``: cosine of the user vector (the live model's pooled history) with the item;
- ``ease``: an EASE item-item model (Steck 2019), the user's most recent positive interactions
  weighted by position (``2^(-rank / position_half)``, rank 0 = the newest);
- ``breadth``: the same EASE model over every item the user has a positive interaction with,
  unweighted (what the whole history points to, as the EASE baseline reads it: depth for
  Recall@100 where ``ease`` concentrates on the newest items); a model fit before that
  (``params["breadth"]`` absent) reads the same recent items as ``ease``;
- ``trans``: what followed each item in users' sequences (within ``window`` steps), applied to
  the user's most recent ``trans_history`` positives (``0.9^rank``);
- ``trend``: log(1 + time-decayed popularity) at the end of the training data;
- ``fresh``: the trend of the items new to the graph, ``e^(-age / fresh_days) · trend`` with ``age``
  the days from an item's first positive interaction to the end of the training data (what is
  catching on among the titles that just arrived);
- ``stage``: log(1 + time-decayed popularity) of the items users interacted with at the same
  point of their own sequence, i.e. at positions ``[n, n + stage_span)`` where ``n`` is how many
  distinct positive items the user has (capped at ``history``; the last row: positions beyond).
- ``next``: a network from the user's recent positives (weighted by position as ``ease``, with
  ``next_half``) and every positive item (unweighted, as ``breadth`` reads them; a network fit
  before it reads the recent ones alone) to what users went on to do after such a history, learned from prefixes of
  users' own sequences and the items that followed them (:mod:`gnn.nextk`; the forward pass,
  :func:`next_scores`, is numpy).

A user with no positive interaction the model knows is ranked with the cold weights alone,

.. math::
    s(u, i) = \\sum_c v_c \\, z\\big(s_c\\big)_i, \\quad c \\in \\{\\mathrm{trend}, \\mathrm{stage}\\}

(``stage`` at ``n = 0``: what users interact with first); a model without cold weights (fit
before they existed) ranks them by ``trend``. A known user whose request comes ``return_days``
or more after their newest positive interaction (the request's clock minus that time) is
*returning* and is ranked with the return weights instead of ``w`` (a model without them: ``w``). The weights ``w``, ``v`` and every
hyperparameter are chosen on validation, jointly over the evaluation protocols' splits
(:func:`gnn.itemitem.choose`); the offline evaluation scores users with :func:`combine`, the
function the engine calls here.

Artifacts (``<artifact_dir>/hybrid.npz``: ``ease``, ``trans``, ``trend``, ``fresh``, ``stage`` and the next
network's ``next_w1``, ``next_b1``, ``next_w2``, ``next_b2``;
``hybrid.json``: ``weights``, ``cold_weights``, ``return_weights`` and ``params``) are read by :meth:`HybridScorer.load`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.core.recs.candidate import Candidate, Ranked

COMPONENTS = ("gnn", "ease", "breadth", "trans", "trend", "fresh", "stage", "next")
COLD_COMPONENTS = ("trend", "stage")
NOT_POSITIVE = frozenset({"SKIPPED"})
NEXT_ARRAYS = ("w1", "b1", "w2", "b2")


#: Components whose standardised scores are clipped at ± this. ``fresh`` is near zero for almost
#: every item (only the few new to the graph are not): standardised, those few get values so large
#: that at any weight the grid offers they would fill every user's first places.
CLIP = {"fresh": 3.0}


def zscore(x: np.ndarray) -> np.ndarray:
    """Each row standardised (mean 0, std 1)."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(axis=-1, keepdims=True)) / (x.std(axis=-1, keepdims=True) + 1e-9)


def standardise(name: str, x: np.ndarray) -> np.ndarray:
    """Component ``name``'s rows standardised (:func:`zscore`), clipped at ``CLIP[name]`` if it has one."""
    z = zscore(x)
    c = CLIP.get(name)
    return z if c is None else np.clip(z, -c, c)


def combine(comps: dict[str, np.ndarray], weights: dict[str, float], known: np.ndarray,
            cold: dict[str, np.ndarray] | None = None, cold_weights: dict[str, float] | None = None,
            returning: np.ndarray | None = None, return_weights: dict[str, float] | None = None) -> np.ndarray:
    """``[n_users, n_items]`` hybrid scores from per-component scores of the same shape (``trend``
    and ``fresh`` may be one row, broadcast); ``known``: users with a positive interaction the model knows. The
    others get ``Σ cold_weights[c] · z(cold[c])`` (``cold``: ``trend`` and ``stage`` at n = 0, one
    row each; without cold weights, the trend scores alone). Known users flagged ``returning``
    (see :func:`returning`) are summed with ``return_weights`` instead of ``weights``."""
    shape = np.broadcast_shapes(*(np.shape(c) for c in comps.values()))
    trend = np.broadcast_to(np.asarray(comps["trend"], dtype=np.float64), shape)
    z = {name: standardise(name, np.broadcast_to(comps[name], trend.shape)) for name in COMPONENTS
         if name in comps and (weights.get(name) or (return_weights or {}).get(name))}
    out = _weighted(z, weights, trend.shape)
    if return_weights and returning is not None and np.any(returning):
        out = np.where(np.asarray(returning, dtype=bool).reshape(-1, 1), _weighted(z, return_weights, trend.shape), out)
    return np.where(np.asarray(known, dtype=bool).reshape(-1, 1), out, cold_scores(comps["trend"], cold, cold_weights))


def _weighted(z: dict[str, np.ndarray], weights: dict[str, float], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float64)
    for name in COMPONENTS:  # a fixed order: the engine's sum is the offline one
        w = float(weights.get(name, 0.0))
        if w and name in z:
            out += w * z[name]
    return out


def returning(now: np.ndarray | float | None, last: np.ndarray | float, return_days: float | None) -> np.ndarray:
    """Whether a known user is *returning*: their request comes at least ``return_days`` days
    after their newest positive interaction (``now``: the request's clock; None or NaN: not
    returning; ``return_days`` None: no user is)."""
    if now is None or return_days is None:
        return np.zeros(np.shape(last), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.asarray(now, dtype=np.float64) - np.asarray(last, dtype=np.float64)
                          >= float(return_days) * 86400.0)


def cold_scores(trend: np.ndarray, cold: dict[str, np.ndarray] | None, cold_weights: dict[str, float] | None
                ) -> np.ndarray:
    """One row: how a user without a known positive interaction is ranked (see the module)."""
    if not cold_weights or not cold or not any(cold_weights.get(c) and c in cold for c in COLD_COMPONENTS):
        return np.asarray(trend, dtype=np.float64).reshape(1, -1)
    out = np.zeros((1, np.size(trend)), dtype=np.float64)
    for c in COLD_COMPONENTS:
        w = float(cold_weights.get(c, 0.0))
        if w and c in cold:
            out += w * zscore(np.asarray(cold[c], dtype=np.float64).reshape(1, -1))
    return out


def next_scores(x: Any, net: dict[str, np.ndarray], items: list[int] | None = None) -> np.ndarray:
    """The ``next`` network's scores ``tanh(x̂ w1 + b1) w2 + b2`` (``[rows, n]``) of history rows
    ``x`` (``x̂``: L2-normalised rows; dense ``[rows, len(items)]`` over the columns ``items``, or a
    scipy sparse ``[rows, n]`` with ``items`` None)."""
    if items is not None:
        x = np.asarray(x, dtype=np.float64)
        h = x @ net["w1"][items]
        sq = (x * x).sum(axis=1, keepdims=True)
    else:
        h = np.asarray(x @ net["w1"], dtype=np.float64)
        sq = np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).reshape(-1, 1)
    h = np.tanh(h / (np.sqrt(sq) + 1e-9) + net["b1"]).astype(net["w2"].dtype)  # no float64 copy of w2
    return np.asarray(h @ net["w2"] + net["b2"], dtype=np.float64)


def reads_whole(net: dict[str, np.ndarray]) -> bool:
    """Does the ``next`` network read the whole history beside the recent one (``w1`` has a row per
    item for each: ``[2n, h]``; a network fit before it: ``[n, h]``)?"""
    return net["w1"].shape[0] == 2 * net["w2"].shape[1]


def next_rows(recent: Any, whole: Any) -> Any:
    """The two-part input of a ``next`` network that reads the whole history (scipy sparse rows,
    ``[rows, n]`` each): ``[r / ‖r‖, a / ‖a‖] / √2`` per row, ``r`` the position-weighted recent
    items, ``a`` every positive item (1 each), as ``[rows, 2n]`` (its norm is 1: :func:`next_scores`
    normalises it again without change)."""
    import scipy.sparse as sp

    def unit(m: Any) -> Any:
        norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1), dtype=np.float64).ravel())
        return sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ m

    return sp.csr_matrix(sp.hstack([unit(recent), unit(whole)]) / np.sqrt(2.0))


def position_weights(rank: np.ndarray, half: float | None) -> np.ndarray:
    """``2^(-rank / half)``: the newest interaction (rank 0) weighs 1; ``half`` None: all 1."""
    if half is None:
        return np.ones(np.shape(rank), dtype=np.float64)
    return np.power(2.0, -np.asarray(rank, dtype=np.float64) / float(half))


@dataclass
class HybridScorer:
    """The hybrid model of one version, indexed like the live model's items."""

    ease: np.ndarray  # [n, n] item-item weights (row: history item)
    trans: np.ndarray  # [n, n] what followed an item (row: history item)
    trend: np.ndarray  # [n] log(1 + decayed popularity)
    weights: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    #: [history + 1, n]: row k, log(1 + decayed popularity) at sequence positions [k, k + stage_span)
    stage: np.ndarray | None = None
    #: weights of the ranking of users without a known positive interaction (empty: trend alone)
    cold_weights: dict[str, float] = field(default_factory=dict)
    #: weights of the known users who return after ``params["return_days"]`` days or more
    #: without a positive interaction (empty: the same weights as every known user)
    return_weights: dict[str, float] = field(default_factory=dict)
    #: the network from a recent history to what the user does next (gnn.nextk): w1 [n, h], b1 [h],
    #: w2 [h, n], b2 [n] (None: none)
    next: dict[str, np.ndarray] | None = None
    #: [n] the trend of the items new to the graph (None: none, fit before it existed)
    fresh: np.ndarray | None = None
    #: the cold ranking, the same for every new user of this version: computed once (cold_row)
    _cold: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    #: the standardised rows of the components that do not depend on the user (see _z_const)
    _zs: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, artifact_dir: str | Path) -> HybridScorer | None:
        """The version's hybrid model, or None when it has none (``hybrid.json`` absent)."""
        d = Path(artifact_dir)
        if not (d / "hybrid.json").exists():
            return None
        meta = json.loads((d / "hybrid.json").read_text())
        arrays = np.load(d / "hybrid.npz")
        stage = arrays["stage"] if "stage" in arrays.files else None
        nxt = {k: arrays[f"next_{k}"] for k in NEXT_ARRAYS} if "next_w1" in arrays.files else None
        fresh = arrays["fresh"] if "fresh" in arrays.files else None
        return cls(arrays["ease"], arrays["trans"], arrays["trend"], dict(meta["weights"]), dict(meta["params"]),
                   stage, dict(meta.get("cold_weights") or {}), dict(meta.get("return_weights") or {}), nxt, fresh)

    def save(self, artifact_dir: str | Path) -> None:
        d = Path(artifact_dir)
        d.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"ease": self.ease.astype(np.float32), "trans": self.trans.astype(np.float32),
                                  "trend": self.trend.astype(np.float32)}
        if self.stage is not None:
            arrays["stage"] = self.stage.astype(np.float32)
        if self.fresh is not None:
            arrays["fresh"] = self.fresh.astype(np.float32)
        if self.next is not None:
            arrays.update({f"next_{k}": self.next[k].astype(np.float32) for k in NEXT_ARRAYS})
        np.savez(d / "hybrid.npz", **arrays)
        (d / "hybrid.json").write_text(json.dumps({"weights": self.weights, "cold_weights": self.cold_weights,
                                                   "return_weights": self.return_weights, "params": self.params},
                                                  indent=2))

    def stage_row(self, n: int) -> np.ndarray | None:
        """The ``stage`` scores of a user with ``n`` distinct positive items (None: no stage model)."""
        if self.stage is None:
            return None
        return np.asarray(self.stage[min(int(n), len(self.stage) - 1)], dtype=np.float64)

    def cold_row(self) -> np.ndarray:
        """How every user without a known positive interaction is ranked (one row, computed once
        per version: it does not depend on the user)."""
        if self._cold is None:
            self._cold = cold_scores(self.trend, self.cold_components(), self.cold_weights)[0]
        return self._cold

    def cold_components(self) -> dict[str, np.ndarray]:
        out = {"trend": np.asarray(self.trend, dtype=np.float64)}
        row = self.stage_row(0)
        if row is not None:
            out["stage"] = row
        return out

    def scores(self, recent: list[dict[str, Any]], index: dict[str, int], vec: np.ndarray | None,
               emb: np.ndarray | None, sims: np.ndarray | None = None, now: float | None = None,
               consumed: Mapping[str, AbstractSet[str]] | None = None) -> np.ndarray:
        """Hybrid scores of every item for one user: ``recent`` is their history as the engine
        reads it (``{item_id, type, ts, ...}``), ``index`` maps item ids to rows, ``vec`` the
        user vector (None: cold) and ``emb`` the live item embeddings; ``sims``: ``emb @ vec``
        when the caller has it already (the engine's ANN source takes its best from the same);
        ``now``: the request's clock (a user returning after ``return_days`` is ranked with the
        return weights; None: not returning); ``consumed``: every item the user interacted with
        and the types of those interactions (the user state's), whose positive items ``breadth``
        and the ``next`` network read (None, or none of them known: the recent positive items)."""
        p = self.params
        pos = sorted((-(h.get("ts") or 0.0), index[h["item_id"]]) for h in recent
                      if h.get("type") not in NOT_POSITIVE and h.get("item_id") in index)
        items = list(dict.fromkeys(k for _, k in pos))  # newest first; an item seen several times counts at its newest
        items = items[: int(p.get("history", 50))]
        n = len(self.trend)
        if not items:
            return self.cold_row().copy()
        ranks = np.arange(len(items))
        rows = self.ease[items]  # the recent items' EASE rows (ease; breadth when it reads them)
        # Each component standardised as combine() does it (one row each); the components that
        # do not depend on the user (trend, the stage rows) standardised once per version.
        w = self.weights
        if self.return_weights:
            newest = max((h.get("ts") or 0.0 for h in recent
                          if h.get("type") not in NOT_POSITIVE and h.get("item_id") in index), default=0.0)
            if returning(now, newest, p.get("return_days")):
                w = self.return_weights
        whole_next = bool(w.get("next")) and self.next is not None and reads_whole(self.next)
        every = items  # every positive item (the consumed ones), read when breadth or the next network needs them
        if consumed is not None and (whole_next or (w.get("breadth") and p.get("breadth") == "all")):
            every = positive_rows(consumed, index) or items
        z: dict[str, np.ndarray] = {}
        if w.get("trend"):
            z["trend"] = self._z_const("trend", lambda: self.trend[None, :])
        if w.get("fresh") and self.fresh is not None:
            z["fresh"] = self._z_const("fresh", lambda: np.asarray(self.fresh, dtype=np.float64)[None, :])
        if w.get("ease"):
            z["ease"] = zscore((position_weights(ranks, p.get("position_half", 10.0)) @ rows)[None, :])
        if w.get("breadth"):
            total = self.ease[every] if p.get("breadth") == "all" else rows
            z["breadth"] = zscore(total.sum(axis=0, dtype=np.float64)[None, :])
        if w.get("trans"):
            th = min(len(items), int(p.get("trans_history", 20)))
            z["trans"] = zscore((np.power(0.9, ranks[:th]) @ self.trans[items[:th]])[None, :])
        if w.get("next") and self.next is not None:
            x, cols = position_weights(ranks, p.get("next_half")), items
            if whole_next:  # [r / ‖r‖, a / ‖a‖] / √2 over the columns of both parts (next_rows)
                x = np.concatenate([x / np.linalg.norm(x), np.full(len(every), 1.0 / np.sqrt(len(every)))]) / np.sqrt(2.0)
                cols = items + [n + k for k in every]
            z["next"] = zscore(next_scores(x[None, :], self.next, cols))
        if w.get("gnn"):
            if vec is not None and emb is not None:
                z["gnn"] = zscore((emb @ vec if sims is None else sims)[None, :])
            else:
                z["gnn"] = zscore(np.zeros((1, n)))
        if w.get("stage") and self.stage is not None:
            k = min(len(items), len(self.stage) - 1)
            z["stage"] = self._z_const(f"stage{k}", lambda: np.asarray(self.stage[k], dtype=np.float64)[None, :])  # type: ignore[index]
        return _weighted(z, w, (1, n))[0]

    def _z_const(self, key: str, row: Callable[[], np.ndarray]) -> np.ndarray:
        """``standardise(key, row())`` of a component that is the same for every user, computed once
        (``key``: the component's name, or a name of one of its rows)."""
        got = self._zs.get(key)
        if got is None:
            got = self._zs[key] = standardise(key, row())
        return got


def positive_rows(consumed: Mapping[str, AbstractSet[str]], index: dict[str, int]) -> list[int]:
    """The rows of the items of ``consumed`` (item -> interaction types) the user has a positive
    interaction with (a type other than those of :data:`NOT_POSITIVE`) that ``index`` knows."""
    return [index[i] for i, types in consumed.items() if i in index and not types <= NOT_POSITIVE]


def scores_of(ids: list[str], scores: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """The hybrid scores of ``ids`` (an item the model does not know: below every known one)."""
    rows = np.fromiter((index.get(i, -1) for i in ids), dtype=np.intp, count=len(ids))
    low = float(scores.min()) - 1.0 if len(scores) else 0.0
    return np.where(rows >= 0, np.asarray(scores, dtype=np.float64)[rows], low)


def rescore(cands: list[Any], scores: np.ndarray | None, index: dict[str, int]) -> None:
    """Set each candidate's ``score`` to its hybrid score (in place; an item the model does not
    know ranks last; nothing without scores)."""
    if scores is None:
        return
    for c, x in zip(cands, scores_of([c.item_id for c in cands], scores, index).tolist(), strict=True):
        c.score = x


def top(scores: np.ndarray, item_ids: list[str], limit: int, exclude: set[str]) -> list[tuple[str, float]]:
    """The ``limit`` best-scored items not in ``exclude``, best first."""
    k = min(len(scores), limit + len(exclude))
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    idx = idx[np.argsort(-scores[idx], kind="stable")].tolist()
    sc = np.asarray(scores, dtype=np.float64)[idx].tolist()
    return [(item_ids[j], x) for j, x in zip(idx, sc, strict=True) if item_ids[j] not in exclude][:limit]


def candidates(scores: np.ndarray, item_ids: list[str], limit: int, exclude: set[str]) -> list[Candidate]:
    """The ``hybrid`` source's candidates (the engine's and the offline replay's): the ``limit``
    best items not in ``exclude``, scores shifted so the lowest is 0 (hybrid scores are z-scores,
    often negative; the merge's "score / best" must stay in [0, 1])."""
    found = top(scores, item_ids, limit, exclude)
    low = min((s for _, s in found), default=0.0)
    return [Candidate(i, s - low, "hybrid") for i, s in found]


def ranked(scores: np.ndarray, item_ids: list[str], limit: int, exclude: set[str]) -> Ranked:
    """:func:`candidates` as columns (what the engine's merge takes)."""
    found = top(scores, item_ids, limit, exclude)
    sc = np.array([s for _, s in found], dtype=np.float64)
    return Ranked([i for i, _ in found], sc - (sc.min() if len(sc) else 0.0), "hybrid")
