"""User representations from interaction history, the same recipe in training and at request time.

A user vector is the importance-weighted, time-decayed mean of the embeddings of the items in the
user's ``max_history`` most recent interactions: weight = type weight × rating factor ×
2^(-age / half-life), where the rating factor is ``(value - centre) / (5 - centre)`` for ratings;
then normalised, plus ``prior_weight`` × the trend prior (what is popular now, see
:func:`trend_prior`; the weight is chosen on the validation split after training). No parameters are learned here, so a
fresh interaction changes the vector at once, without retraining; the recipe (weights, centre,
half-life) is saved with every model version as ``user_params.json`` and read by the engine
(:class:`graphrec.core.recs.model.LiveModel`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graphrec.core.gnn_config import GNNConfig
from graphrec.core.snapshot import KINDS

TYPE_WEIGHTS = {"PURCHASED": 2.0, "RATED": 1.0, "CLICKED": 0.8, "VIEWED": 0.4, "SKIPPED": -0.5}


def user_params(cfg: GNNConfig) -> dict[str, Any]:
    return {"type_weights": dict(TYPE_WEIGHTS), "rating_center": cfg.rating_center, "half_life_days": cfg.half_life_days,
            "max_history": cfg.max_history}


def interaction_weights(kind: np.ndarray, value: np.ndarray, ts: np.ndarray, now: np.ndarray | float,
                        params: dict[str, Any]) -> np.ndarray:
    """Weights of interactions (vectorised; ``now`` per interaction or one value)."""
    tw = np.array([params["type_weights"].get(k, 0.0) for k in KINDS], dtype=np.float32)
    w = tw[kind.astype(np.int64)]
    centre = float(params["rating_center"])
    rated = kind == KINDS.index("RATED")
    w = np.where(rated, w * (value - centre) / (5.0 - centre), w)
    age = np.maximum(0.0, np.asarray(now, dtype=np.float64) - ts) / (float(params["half_life_days"]) * 86400.0)
    return (w * np.power(2.0, -age)).astype(np.float32)


def pool(item_emb: torch.Tensor, items: torch.Tensor, weights: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """Σ w·emb per owner, L2-normalised: [n, d] (torch, differentiable)."""
    acc = torch.zeros(n, item_emb.shape[1], device=item_emb.device, dtype=item_emb.dtype)
    acc.index_add_(0, owner, item_emb[items] * weights.unsqueeze(-1))
    return torch.nn.functional.normalize(acc, dim=-1)


def user_matrix(item_emb: np.ndarray, user: np.ndarray, item: np.ndarray, kind: np.ndarray, value: np.ndarray,
                ts: np.ndarray, num_users: int, now: float, params: dict[str, Any]) -> np.ndarray:
    """Vectors of all users from their most recent ``params["max_history"]`` interactions (numpy)."""
    cap = int(params.get("max_history") or 0)
    if cap:
        order = np.lexsort((-ts, user))
        u_sorted = user[order]
        starts = np.r_[0, np.nonzero(np.diff(u_sorted))[0] + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        keep = order[rank < cap]
        user, item, kind, value, ts = user[keep], item[keep], kind[keep], value[keep], ts[keep]
    w = interaction_weights(kind, value, ts, now, params)
    acc = np.zeros((num_users, item_emb.shape[1]), dtype=np.float32)
    np.add.at(acc, user, item_emb[item] * w[:, None])
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


def trend_prior(item_emb: np.ndarray, item: np.ndarray, ts: np.ndarray, now: float, half_life_days: float = 30.0) -> np.ndarray:
    """The recency-weighted mean embedding of everything interacted with: the direction of what is
    popular now. Mixed into user vectors with ``prior_weight`` (tuned on validation)."""
    w = np.power(2.0, -np.maximum(0.0, now - ts) / (half_life_days * 86400.0)).astype(np.float32)
    v = (item_emb[item] * w[:, None]).sum(axis=0)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
