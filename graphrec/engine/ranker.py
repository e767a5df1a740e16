"""The learned ranker as the engine holds it: DCN-v2 weights and feature scaling, one batched
forward pass per request. ``enabled`` comes from the registry: a ranker is used only when its
offline evaluation beat the pipeline served without it (the hybrid or fusion, + MMR; ``graphrec
train-ranker``).
``gnn_version``: the GNN version whose candidates and embeddings it was trained on; the engine
uses it only while that version is live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.core.recs import features as F
from graphrec.core.recs.dcn import DCNv2


class LoadedRanker:
    def __init__(self, version: str, model: DCNv2, mean: np.ndarray, std: np.ndarray, enabled: bool,
                 gnn_version: str | None = None) -> None:
        self.version = version
        self.gnn_version = gnn_version
        self.model = model.eval()
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)
        self.enabled = enabled
        # The forward pass in NumPy: for a request's few hundred rows of features, torch's
        # per-module dispatch costs more than the arithmetic itself.
        sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
        self._cross = [(sd[f"crosses.{k}.linear.weight"].T.copy(), sd[f"crosses.{k}.linear.bias"])
                       for k in range(model.cross_layers)]
        self._deep = [(sd[f"deep.{k}.weight"].T.copy(), sd[f"deep.{k}.bias"]) for k in (0, 3)]
        self._out = (sd["out.weight"].T.copy(), sd["out.bias"])

    @classmethod
    def load(cls, version: str, artifact_dir: str | Path, enabled: bool = True, gnn_version: str | None = None) -> LoadedRanker:
        d = Path(artifact_dir)
        meta = json.loads((d / "ranker.json").read_text())
        if tuple(meta["features"]) != F.FEATURE_NAMES:
            raise ValueError(f"ranker {version} was trained on other features")
        model = DCNv2(len(F.FEATURE_NAMES), meta["cross_layers"], meta["hidden"], meta["dropout"])
        model.load_state_dict(torch.load(d / "ranker.pt", map_location="cpu", weights_only=True))
        enabled = enabled and bool(meta.get("enabled", True))
        return cls(version, model, np.array(meta["mean"]), np.array(meta["std"]), enabled,
                   gnn_version or meta.get("gnn_version"))

    def features(self, cands: list[Any], vec: np.ndarray | None, session_vec: np.ndarray | None, model: Any,
                 catalog: Any, history_categories: list[tuple[str, ...]], now: float) -> np.ndarray:
        """The request's features (graphrec.core.recs.features.request_features, as offline)."""

        def info(i: str) -> tuple[int, float | None, tuple[str, ...]]:
            it = catalog.items.get(i)
            return (it.interactions, it.created_at, it.categories) if it else (0, None, ())

        return F.request_features(cands, model, vec, session_vec, info, history_categories, now)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of feature rows ``x`` (inference: dropout off), the same as ``DCNv2.forward``."""
        x0 = (x - self.mean) / self.std
        xc = x0
        for w, b in self._cross:
            xc = x0 * (xc @ w + b) + xc
        h = x0
        for w, b in self._deep:
            h = np.maximum(h @ w + b, 0.0)
        w, b = self._out
        return (np.concatenate([xc, h], axis=1) @ w + b)[:, 0]

    def score_torch(self, x: np.ndarray) -> np.ndarray:
        """The reference forward pass (tests check :meth:`score` against it)."""
        with torch.no_grad():
            return self.model(torch.from_numpy((x - self.mean) / self.std)).numpy()
