"""The learned ranker as the engine holds it: DCN-v2 weights and feature scaling, one batched
forward pass per request. ``enabled`` comes from the registry: a ranker is used only when its
offline evaluation beat ranking by embedding similarity alone (``graphrec train-ranker``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.ranking import features as F
from graphrec.ranking.dcn import DCNv2


class LoadedRanker:
    def __init__(self, version: str, model: DCNv2, mean: np.ndarray, std: np.ndarray, enabled: bool) -> None:
        self.version = version
        self.model = model.eval()
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)
        self.enabled = enabled

    @classmethod
    def load(cls, version: str, artifact_dir: str | Path, enabled: bool = True) -> LoadedRanker:
        d = Path(artifact_dir)
        meta = json.loads((d / "ranker.json").read_text())
        if tuple(meta["features"]) != F.FEATURE_NAMES:
            raise ValueError(f"ranker {version} was trained on other features")
        model = DCNv2(len(F.FEATURE_NAMES), meta["cross_layers"], meta["hidden"], meta["dropout"])
        model.load_state_dict(torch.load(d / "ranker.pt", map_location="cpu", weights_only=True))
        enabled = enabled and bool(meta.get("enabled", True))
        return cls(version, model, np.array(meta["mean"]), np.array(meta["std"]), enabled)

    def features(self, cands: list[Any], sims: np.ndarray | None, session_vec: np.ndarray | None, model: Any,
                 catalog: Any, history_categories: list[tuple[str, ...]], now: float) -> np.ndarray:
        session_sims = model.scores(session_vec, [c.item_id for c in cands]) if (session_vec is not None and model) else None

        def info(i: str) -> tuple[int, float | None, tuple[str, ...]]:
            it = catalog.items.get(i)
            return (it.interactions, it.created_at, it.categories) if it else (0, None, ())

        return F.build(cands, sims, session_sims, info, now, F.category_affinity(history_categories))

    def score(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy((x - self.mean) / self.std)).numpy()
