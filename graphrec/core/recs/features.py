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
#: Column of each source's first feature.
_SOURCE_INDEX = {s: 3 * k for k, s in enumerate(SOURCE_NAMES)}


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

    ``item_info(id) -> (interactions, created_at, categories)``. On the request path: rows are
    built as Python lists and converted once (numpy's per-element stores cost more than that)."""
    n = len(cands)
    best = dict.fromkeys(SOURCE_NAMES, 0.0)
    for c in cands:
        for s, (score, _) in c.sources.items():
            if s in best and score > best[s]:
                best[s] = score
    scale = {s: 1.0 / (b or 1.0) for s, b in best.items()}
    base = 3 * len(SOURCE_NAMES)
    blank = [0.0] * len(FEATURE_NAMES)
    log1p = math.log1p
    rows = []
    for c in cands:
        row = blank.copy()
        present = 0
        for s, (score, rank) in c.sources.items():
            k = _SOURCE_INDEX.get(s)
            if k is not None:
                present += 1
                row[k] = 1.0
                row[k + 1] = score * scale[s]
                row[k + 2] = 1.0 / (1.0 + rank)
        inter, created, cats = item_info(c.item_id)
        row[base + 2] = log1p(max(0, inter))
        row[base + 3] = log1p(max(0.0, now - created) / 86400.0) if created is not None else 0.0
        row[base + 4] = sum(affinity.get(cat, 0.0) for cat in cats)
        row[base + 5] = present
        rows.append(row)
    x = np.array(rows, dtype=np.float32).reshape(n, len(FEATURE_NAMES))
    if sims is not None:
        x[:, base] = sims
    if session_sims is not None:
        x[:, base + 1] = session_sims
    return x


def request_features(cands: Sequence[Any], model: Any, vec: np.ndarray | None, session_vec: np.ndarray | None,
                     item_info: Callable[[str], tuple[int, float | None, tuple[str, ...]]],
                     history_categories: Sequence[tuple[str, ...]], now: float) -> np.ndarray:
    """One request's feature rows, as the engine computes them at request time and the offline
    replay computes them for training and evaluation (one function, so they cannot drift):
    similarity of each candidate to the user vector and to the session vector (``model.scores``),
    the category affinity of the user's recent history, and :func:`build`."""
    ids = [c.item_id for c in cands]
    sims = model.scores(vec, ids) if (vec is not None and model is not None) else None
    session_sims = model.scores(session_vec, ids) if (session_vec is not None and model is not None) else None
    return build(cands, sims, session_sims, item_info, now, category_affinity(history_categories))
