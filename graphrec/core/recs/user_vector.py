"""The user-vector recipe, one implementation for training, evaluation and serving.

A user vector is the importance-weighted, time-decayed sum of the embeddings of the items in the
user's ``max_history`` most recent interactions, L2-normalised:
weight = type weight × rating factor × 2^(-age / half-life), where the rating factor is
``(value - centre) / (5 - centre)`` for a rating with a value. Then ``prior_weight`` × the trend
prior (what is popular now) is added and the sum normalised again. Nothing here is learned: a
fresh interaction changes the vector at once. The recipe travels with each model version as a
dict (``user_params.json``): ``type_weights``, ``rating_center``, ``half_life_days``,
``max_history`` and, once tuned, ``prior`` and ``prior_weight``.

Pure numpy: training pools every user at once (:func:`user_matrix`), the engine one user's history
at request time (:func:`user_vector`); both go through :func:`interaction_weights` and
:func:`pool`, so they compute the same vector for the same history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

RATED = "RATED"


def recipe(type_weights: Mapping[str, float], rating_center: float, half_life_days: float,
           max_history: int) -> dict[str, Any]:
    """A recipe dict as saved with a model version (``type_weights`` from the
    ``[interactions] vector_weights`` setting, the rest from ``[gnn]``)."""
    return {"type_weights": dict(type_weights), "rating_center": float(rating_center),
            "half_life_days": float(half_life_days), "max_history": int(max_history)}


def type_weights(params: Mapping[str, Any], types: Sequence[str]) -> np.ndarray:
    """The recipe's weight of each of ``types`` (float32; a type it does not name counts 0)."""
    tw = params["type_weights"]
    return np.array([float(tw.get(t, 0.0)) for t in types], dtype=np.float32)


def interaction_weights(type_w: np.ndarray, rated: np.ndarray, value: np.ndarray, ts: np.ndarray,
                        now: np.ndarray | float, params: Mapping[str, Any]) -> np.ndarray:
    """Weights of interactions (float32): ``type_w`` per interaction, scaled by the rating factor
    where ``rated`` and by the time decay from ``ts`` to ``now`` (one value or per interaction)."""
    centre = float(params["rating_center"])
    w = np.where(rated, type_w * (value - centre) / (5.0 - centre), type_w)
    age = np.maximum(0.0, np.asarray(now, dtype=np.float64) - ts) / (float(params["half_life_days"]) * 86400.0)
    return (w * np.power(2.0, -age)).astype(np.float32)


def latest(owner: np.ndarray, ts: np.ndarray, cap: int) -> np.ndarray:
    """Indices of each owner's ``cap`` most recent interactions (all when ``cap`` is 0), grouped by
    owner, newest first."""
    order = np.lexsort((-ts, owner))
    if not cap:
        return order
    o_sorted = owner[order]
    starts = np.r_[0, np.nonzero(np.diff(o_sorted))[0] + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < cap]


def pool(item_emb: np.ndarray, owner: np.ndarray, item: np.ndarray, w: np.ndarray, num_owners: int,
         params: Mapping[str, Any]) -> np.ndarray:
    """Σ w·embedding per owner, normalised, plus the recipe's prior, normalised again: [n, d].
    An owner with nothing to pool gets the zero vector (the prior alone when there is one)."""
    if num_owners == 1:  # one user at request time: a product, not a scatter
        acc = (w @ item_emb[item])[None, :].astype(np.float32, copy=False)
    else:
        acc = np.zeros((num_owners, item_emb.shape[1]), dtype=np.float32)
        np.add.at(acc, owner, item_emb[item] * w[:, None])
    n = np.linalg.norm(acc, axis=1, keepdims=True)
    n[n == 0] = 1.0
    acc = acc / n
    prior = params.get("prior")
    if prior is not None and params.get("prior_weight", 0.0):
        acc = acc + float(params["prior_weight"]) * np.asarray(prior, dtype=np.float32)
        n = np.linalg.norm(acc, axis=1, keepdims=True)
        n[n == 0] = 1.0
        acc = acc / n
    return acc


def user_matrix(item_emb: np.ndarray, user: np.ndarray, item: np.ndarray, type_w: np.ndarray, rated: np.ndarray,
                value: np.ndarray, ts: np.ndarray, num_users: int, now: float, params: Mapping[str, Any]) -> np.ndarray:
    """Vectors of all users at once from arrays of interactions (``type_w``: each one's type
    weight, :func:`type_weights` indexed by its kind)."""
    keep = latest(user, ts, int(params.get("max_history") or 0))
    w = interaction_weights(type_w[keep], rated[keep], value[keep], ts[keep], now, params)
    return pool(item_emb, user[keep], item[keep], w, num_users, params)


def user_vector(item_emb: np.ndarray, index: Mapping[str, int], history: Sequence[Mapping[str, Any]], now: float,
                params: Mapping[str, Any]) -> np.ndarray | None:
    """One user's vector from ``history`` (``{item_id, type, ts, value}`` dicts, any order; a
    missing ``ts`` counts as ``now``): its ``max_history`` most recent interactions, of which the
    items not in ``index`` are skipped. None when nothing in it carries weight (a cold user)."""
    cap = int(params.get("max_history") or 0)
    if cap and len(history) > cap:
        history = sorted(history, key=lambda h: -(h["ts"] if h.get("ts") is not None else now))[:cap]
    rows = [(k, h) for h in history if (k := index.get(h["item_id"])) is not None]
    if not rows:
        return None
    tw = params["type_weights"]
    type_w = np.array([float(tw.get(h["type"], 0.0)) for _, h in rows], dtype=np.float32)
    rated = np.array([h["type"] == RATED and h.get("value") is not None for _, h in rows])
    value = np.array([float(h["value"]) if h.get("value") is not None else 0.0 for _, h in rows])
    ts = np.array([float(h["ts"]) if h.get("ts") is not None else now for _, h in rows])
    item = np.array([k for k, _ in rows], dtype=np.int64)
    w = interaction_weights(type_w, rated, value, ts, now, params)
    if not np.any(w @ item_emb[item]):  # nothing carries weight, or it cancels out
        return None
    return pool(item_emb, np.zeros(len(rows), dtype=np.int64), item, w, 1, params)[0]


@dataclass
class Embeddings:
    """A model's item embeddings (rows L2-normalised) with its recipe: what training's evaluation,
    the ranker's offline replay and the engine (:class:`graphrec.core.recs.model.LiveModel`) score with."""

    version: str
    item_ids: list[str]
    emb: np.ndarray  # [n_items, d], rows L2-normalised
    user_params: dict[str, Any] = field(default_factory=dict)  # the recipe; empty: see default_recipe
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {iid: k for k, iid in enumerate(self.item_ids)}
        if not self.user_params:
            self.user_params = default_recipe()

    def vector_of(self, item_id: str) -> np.ndarray | None:
        k = self.index.get(item_id)
        return None if k is None else self.emb[k]

    def vectors_of(self, item_ids: Sequence[str]) -> np.ndarray | None:
        """The vectors of ``item_ids``, stacked (rows as :meth:`vector_of` gives them), or None when
        one of them has none."""
        rows = [self.index.get(i) for i in item_ids]
        if None in rows:
            return None
        return self.emb[np.array(rows, dtype=np.intp)]

    def user_vector(self, history: Sequence[Mapping[str, Any]], now: float) -> np.ndarray | None:
        """The user's unit vector from ``history`` (see :func:`user_vector`), None for a cold user."""
        return user_vector(self.emb, self.index, history, now, self.user_params)

    def session_vector(self, item_ids: Sequence[str], now: float) -> np.ndarray | None:
        """The vector of a session's items, each counted as a click just now."""
        return self.user_vector([{"item_id": i, "type": "CLICKED", "ts": now, "value": None} for i in item_ids], now)

    def scores(self, vec: np.ndarray, item_ids: list[str]) -> np.ndarray:
        """Cosine similarity of ``vec`` with each item (0 for unknown items)."""
        out = np.zeros(len(item_ids), dtype=np.float32)
        rows = np.fromiter(map(self.index.get, item_ids, repeat(-1)), dtype=np.intp, count=len(item_ids))
        known = rows >= 0
        if known.any():
            out[known] = self.emb[rows[known]] @ vec
        return out

    def nearest(self, vec: np.ndarray, k: int, exclude: set[str] | None = None) -> list[tuple[str, float]]:
        """Exact top-k by cosine (the fallback when the vector index is unavailable)."""
        sims = self.emb @ vec
        k2 = min(len(sims), k + len(exclude or ()))
        idx = np.argpartition(-sims, k2 - 1)[:k2] if k2 < len(sims) else np.arange(len(sims))
        idx = idx[np.argsort(-sims[idx])]
        out = [(self.item_ids[j], float(sims[j])) for j in idx if not exclude or self.item_ids[j] not in exclude]
        return out[:k]


def default_recipe() -> dict[str, Any]:
    """The recipe from the code's default settings (a model version saved without one)."""
    from graphrec.core.config import GNNConfig, InteractionSettings

    g = GNNConfig()
    return recipe(InteractionSettings().vector_weights, g.rating_center, g.half_life_days, g.max_history)
