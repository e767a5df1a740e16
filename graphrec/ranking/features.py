"""Ranker features: computed the same way online (engine) and offline (training, evaluation).

Per candidate, for each source in :data:`SOURCE_NAMES`: present (0/1), score normalised by the
request's best score of that source, 1/(1+rank); then embedding similarity to the user vector,
similarity to the current session, log popularity, log age in days, the user's affinity to the
item's categories and the number of sources that proposed it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SOURCE_NAMES: tuple[str, ...] = ("ann", "co_interaction", "content", "session", "popular", "fresh")
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{s}.{k}" for s in SOURCE_NAMES for k in ("present", "score", "inv_rank")
) + ("emb_sim", "session_sim", "log_popularity", "log_age_days", "category_affinity", "n_sources")


def category_affinity(history_categories: Sequence[tuple[str, ...]]) -> dict[str, float]:
    """Share of a user's history in each category."""
    counts: dict[str, float] = {}
    for cats in history_categories:
        for c in cats:
            counts[c] = counts.get(c, 0.0) + 1.0
    total = float(len(history_categories)) or 1.0
    return {c: v / total for c, v in counts.items()}


def build(cands: Sequence[Any], sims: np.ndarray | None, session_sims: np.ndarray | None,
          item_info: Callable[[str], tuple[int, float | None, tuple[str, ...]]], now: float,
          affinity: dict[str, float]) -> np.ndarray:
    """Features of candidates (objects with ``item_id`` and ``sources``: name → (score, rank)).

    ``item_info(id) -> (interactions, created_at, categories)``."""
    n = len(cands)
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    best = {s: max((c.sources[s][0] for c in cands if s in c.sources), default=1.0) or 1.0 for s in SOURCE_NAMES}
    base = 3 * len(SOURCE_NAMES)
    for r, c in enumerate(cands):
        for k, s in enumerate(SOURCE_NAMES):
            if s in c.sources:
                score, rank = c.sources[s]
                x[r, 3 * k] = 1.0
                x[r, 3 * k + 1] = score / best[s]
                x[r, 3 * k + 2] = 1.0 / (1.0 + rank)
        inter, created, cats = item_info(c.item_id)
        x[r, base + 2] = math.log1p(max(0, inter))
        x[r, base + 3] = math.log1p(max(0.0, now - created) / 86400.0) if created is not None else 0.0
        x[r, base + 4] = sum(affinity.get(cat, 0.0) for cat in cats)
        x[r, base + 5] = sum(1 for s in SOURCE_NAMES if s in c.sources)
    if sims is not None:
        x[:, base] = sims
    if session_sims is not None:
        x[:, base + 1] = session_sims
    return x
