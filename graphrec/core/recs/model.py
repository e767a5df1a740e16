"""The live model as the engine holds it: item embeddings in memory, the user-vector recipe.

Artifacts of a version (written by :mod:`gnn.lifecycle`) under ``<artifact_dir>``:
``item_embeddings.npy`` (float32, L2-normalised rows), ``item_ids.json`` (row → item id) and
``user_params.json`` (how to pool a user's history into a vector). The engine polls the registry
and swaps in a new :class:`LiveModel` when the live version changes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Default user-vector recipe: weight per interaction type, rating centre, half-life.
DEFAULT_USER_PARAMS: dict[str, Any] = {
    "type_weights": {"PURCHASED": 2.0, "RATED": 1.0, "CLICKED": 0.8, "VIEWED": 0.4, "SKIPPED": -0.5},
    "rating_center": 2.5,
    "half_life_days": 90.0,
}


@dataclass
class LiveModel:
    version: str
    item_ids: list[str]
    emb: np.ndarray  # [n_items, d], rows L2-normalised
    user_params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_USER_PARAMS))
    index: dict[str, int] = field(default_factory=dict)
    #: The vector collection published from these embeddings (the registry's record); searches
    #: go there rather than through the alias, so query and index vectors are always one model's.
    collection: str | None = None

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {iid: k for k, iid in enumerate(self.item_ids)}

    @classmethod
    def load(cls, version: str, artifact_dir: str | Path, collection: str | None = None) -> LiveModel:
        d = Path(artifact_dir)
        emb = np.load(d / "item_embeddings.npy").astype(np.float32)
        ids = json.loads((d / "item_ids.json").read_text())
        params_path = d / "user_params.json"
        params = json.loads(params_path.read_text()) if params_path.exists() else dict(DEFAULT_USER_PARAMS)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return cls(version=version, item_ids=ids, emb=emb / norms, user_params=params, collection=collection)

    def vector_of(self, item_id: str) -> np.ndarray | None:
        k = self.index.get(item_id)
        return None if k is None else self.emb[k]

    def user_vector(self, history: list[dict[str, Any]], now: float) -> np.ndarray | None:
        """Importance-weighted, time-decayed pooling of the history's item embeddings.

        ``history``: ``{item_id, type, ts, value}`` dicts, any order. Returns a unit vector, or
        ``None`` when nothing in the history is known to the model (a cold user)."""
        p = self.user_params
        tw = p.get("type_weights", DEFAULT_USER_PARAMS["type_weights"])
        centre = float(p.get("rating_center", 2.5))
        hl = float(p.get("half_life_days", 90.0)) * 86400.0
        acc = np.zeros(self.emb.shape[1], dtype=np.float32)
        total = 0.0
        cap = int(p.get("max_history") or 0)
        recent = sorted(history, key=lambda h: -(h["ts"] or 0.0))[:cap] if cap else history
        for h in recent:
            k = self.index.get(h["item_id"])
            if k is None:
                continue
            w = float(tw.get(h["type"], 0.0))
            if h["type"] == "RATED" and h.get("value") is not None:
                w *= (float(h["value"]) - centre) / (5.0 - centre)
            w *= math.pow(2.0, -max(0.0, now - float(h["ts"] or now)) / hl)
            if w == 0.0:
                continue
            acc += w * self.emb[k]
            total += abs(w)
        if total == 0.0:
            return None
        n = float(np.linalg.norm(acc))
        if n == 0:
            return None
        acc = acc / n
        prior = p.get("prior")
        if prior is not None and p.get("prior_weight", 0.0):
            acc = acc + float(p["prior_weight"]) * np.asarray(prior, dtype=np.float32)
            acc = acc / (float(np.linalg.norm(acc)) or 1.0)
        return acc

    def scores(self, vec: np.ndarray, item_ids: list[str]) -> np.ndarray:
        """Cosine similarity of ``vec`` with each item (0 for unknown items)."""
        out = np.zeros(len(item_ids), dtype=np.float32)
        ks = [self.index.get(i, -1) for i in item_ids]
        known = np.array([k >= 0 for k in ks])
        if known.any():
            out[known] = self.emb[np.array([k for k in ks if k >= 0])] @ vec
        return out

    def nearest(self, vec: np.ndarray, k: int, exclude: set[str] | None = None) -> list[tuple[str, float]]:
        """Exact top-k by cosine (the fallback when the vector index is unavailable)."""
        sims = self.emb @ vec
        k2 = min(len(sims), k + len(exclude or ()))
        idx = np.argpartition(-sims, k2 - 1)[:k2] if k2 < len(sims) else np.arange(len(sims))
        idx = idx[np.argsort(-sims[idx])]
        out = [(self.item_ids[j], float(sims[j])) for j in idx if not exclude or self.item_ids[j] not in exclude]
        return out[:k]
