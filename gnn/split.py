"""Temporal split: per user, the last ``fraction`` of interactions by time are held out.

Users with fewer than ``min_interactions`` keep everything in train. Ties in time are broken by
item index, so the split is deterministic.
"""

from __future__ import annotations

import numpy as np

from gnn.data import Snapshot


def temporal_holdout(snap: Snapshot, fraction: float = 0.2, min_interactions: int = 5,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """A boolean mask over interactions (restricted to ``mask`` when given): True = held out."""
    idx = np.nonzero(mask)[0] if mask is not None else np.arange(snap.num_interactions)
    out = np.zeros(snap.num_interactions, dtype=bool)
    if len(idx) == 0:
        return out
    order = idx[np.lexsort((snap.item[idx], snap.ts[idx], snap.user[idx]))]
    users = snap.user[order]
    starts = np.r_[0, np.nonzero(np.diff(users))[0] + 1]
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        n = e - s
        if n < min_interactions:
            continue
        k = int(np.ceil(n * fraction))
        out[order[e - k:e]] = True
    return out


def train_val_test(snap: Snapshot, test_fraction: float = 0.2, val_fraction: float = 0.1,
                   min_interactions: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (train, validation, test); validation is carved the same way from train."""
    test = temporal_holdout(snap, test_fraction, min_interactions)
    val = temporal_holdout(snap, val_fraction, min_interactions, mask=~test)
    return ~test & ~val, val, test
