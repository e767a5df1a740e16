"""User representations from interaction history in training: the recipe of
:mod:`graphrec.core.recs.user_vector` (the one the engine serves with), over a snapshot's arrays.

The recipe (type weights from the ``[interactions] vector_weights`` setting; rating centre,
half-life and history length from ``[gnn]``) is saved with every model version as
``user_params.json`` and read by the engine (:class:`graphrec.core.recs.model.LiveModel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from graphrec.core.gnn_config import GNNConfig
from graphrec.core.recs import user_vector as uv
from graphrec.core.snapshot import KINDS


def user_params(cfg: GNNConfig, vector_weights: Mapping[str, float]) -> dict[str, Any]:
    """The recipe saved with a model version: ``vector_weights`` (the ``[interactions]
    vector_weights`` setting) and ``cfg``'s rating centre, half-life and history length."""
    return uv.recipe(vector_weights, cfg.rating_center, cfg.half_life_days, cfg.max_history)


def interaction_weights(kind: np.ndarray, value: np.ndarray, ts: np.ndarray, now: np.ndarray | float,
                        params: dict[str, Any]) -> np.ndarray:
    """Weights of interactions (vectorised; ``now`` per interaction or one value)."""
    tw = uv.type_weights(params, KINDS)[kind.astype(np.int64)]
    return uv.interaction_weights(tw, kind == KINDS.index("RATED"), value, ts, now, params)


def pool(item_emb: torch.Tensor, items: torch.Tensor, weights: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """Σ w·emb per owner, L2-normalised: [n, d] (torch, differentiable; the training loss's
    version of :func:`graphrec.core.recs.user_vector.pool`, without the prior)."""
    acc = torch.zeros(n, item_emb.shape[1], device=item_emb.device, dtype=item_emb.dtype)
    acc.index_add_(0, owner, item_emb[items] * weights.unsqueeze(-1))
    return torch.nn.functional.normalize(acc, dim=-1)


def user_matrix(item_emb: np.ndarray, user: np.ndarray, item: np.ndarray, kind: np.ndarray, value: np.ndarray,
                ts: np.ndarray, num_users: int, now: float, params: dict[str, Any]) -> np.ndarray:
    """Vectors of all users from their most recent ``params["max_history"]`` interactions (numpy)."""
    kind = kind.astype(np.int64)
    tw = uv.type_weights(params, KINDS)[kind]
    return uv.user_matrix(item_emb, user, item, tw, kind == KINDS.index("RATED"), value, ts, num_users, now, params)


def trend_prior(item_emb: np.ndarray, item: np.ndarray, ts: np.ndarray, now: float, half_life_days: float = 30.0) -> np.ndarray:
    """The recency-weighted mean embedding of everything interacted with: the direction of what is
    popular now. Mixed into user vectors with ``prior_weight`` (tuned on validation)."""
    w = np.power(2.0, -np.maximum(0.0, now - ts) / (half_life_days * 86400.0)).astype(np.float32)
    v = (item_emb[item] * w[:, None]).sum(axis=0)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
