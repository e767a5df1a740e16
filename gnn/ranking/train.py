"""Train the DCN-v2 ranker from logged interactions with sampled negatives.

Protocol (no peeking at the test split): candidates are generated from the interactions before
the validation window (``World`` on train-minus-validation), labelled 1 when the user interacted
with the item in the validation window, and up to ``negatives`` unlabelled candidates per user
are sampled as negatives. The ranker is then evaluated against ``fusion`` and ``embedding``
rankings on the test split (candidates from all training interactions).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gnn.ranking.offline import World
from graphrec.core.recs import features as F
from graphrec.core.recs.dcn import DCNv2


@dataclass
class RankerArtifacts:
    model: DCNv2
    mean: np.ndarray
    std: np.ndarray
    history: list[float]
    seconds: float

    def save(self, d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), d / "ranker.pt")
        (d / "ranker.json").write_text(json.dumps({
            "features": list(F.FEATURE_NAMES), "mean": self.mean.tolist(), "std": self.std.tolist(),
            "cross_layers": self.model.cross_layers, "hidden": self.model.hidden, "dropout": self.model.dropout,
            "loss_history": self.history, "seconds": self.seconds}))

    def scorer(self, world: World) -> Any:
        def score(u: int, cands: list[Any], vec: np.ndarray | None) -> np.ndarray:
            x = (world.features(u, cands, vec) - self.mean) / self.std
            with torch.no_grad():
                return self.model(torch.from_numpy(x.astype(np.float32))).numpy()
        return score


def dataset(world: World, labels: dict[int, set[str]], negatives: int, rng: np.random.Generator,
            progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for u in tqdm(sorted(labels), desc="ranker data", disable=not progress):
        cands, vec = world.candidates(u)
        if not cands:
            continue
        y = np.array([1.0 if c.item_id in labels[u] else 0.0 for c in cands], dtype=np.float32)
        pos = np.nonzero(y)[0]
        if len(pos) == 0:
            continue
        neg = np.nonzero(y == 0)[0]
        neg = rng.choice(neg, size=min(len(neg), negatives), replace=False) if len(neg) else neg
        keep = np.concatenate([pos, neg])
        x = world.features(u, cands, vec)
        xs.append(x[keep])
        ys.append(y[keep])
    return np.concatenate(xs), np.concatenate(ys)


def fit(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 15, lr: float = 3e-3, batch: int = 1024,
        progress: bool = True) -> RankerArtifacts:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y)
    model = DCNv2(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    pos_weight = torch.tensor(max(1.0, float((y == 0).sum()) / max(1.0, float(y.sum()))))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    g = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    for _ in tqdm(range(epochs), desc="ranker epochs", disable=not progress):
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for k in range(0, len(xt), batch):
            idx = perm[k:k + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(xt))
    model.eval()
    return RankerArtifacts(model, mean, std, history, time.perf_counter() - t0)
