"""Temporal split: per user, the last ``fraction`` of interactions by time are held out.

Users with fewer than ``min_interactions`` keep everything in train. Ties in time are broken by
item index, so the split is deterministic.
"""

from __future__ import annotations

import numpy as np

from graphrec.core.snapshot import Snapshot


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


#: The evaluation protocols: ``user-temporal`` (per user, the last 20% by time are held out) and
#: ``global-time`` (one cut T at a quantile of all timestamps: train on everything before T, test
#: on what each user did from T on; users and items first seen after T are included and counted).
PROTOCOLS: tuple[str, ...] = ("user-temporal", "global-time")


def relevant(snap: Snapshot, mask: np.ndarray) -> np.ndarray:
    """The interactions of ``mask`` that count as relevant targets: every kind except SKIPPED."""
    from graphrec.core.snapshot import KIND_CODE

    return mask & (snap.kind != KIND_CODE["SKIPPED"])


def global_time_split(snap: Snapshot, cut: float = 0.8, val_fraction: float = 0.1
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Masks (train, validation, test) and the cut time T: test = interactions at or after the
    ``cut`` quantile of all timestamps; validation = the last ``val_fraction`` (by time, one cut
    again) of what is before T; train = the rest."""
    if not 0.0 < cut < 1.0:
        raise ValueError(f"cut must be in (0, 1), got {cut}")
    t_cut = float(np.quantile(snap.ts, cut))
    test = snap.ts >= t_cut
    before = ~test
    if before.any() and val_fraction > 0:
        t_val = float(np.quantile(snap.ts[before], 1.0 - val_fraction))
        val = before & (snap.ts >= t_val)
    else:
        val = np.zeros(snap.num_interactions, dtype=bool)
    return before & ~val, val, test, t_cut
