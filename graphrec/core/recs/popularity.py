"""The popular window: which interactions "popular" counts, and how fast they fade.

Popularity is Σ type weight × 2^(-(now - ts) / half-life) over the interactions of the window
that ends at the graph's clock (``now``). The nominal window is ``engine.popular_window_days``
with ``engine.popular_half_life_days``. A window holding fewer than ``engine.popular_min_events``
interactions is widened back until it holds that many (to the time of the
``popular_min_events``-th newest interaction), and its half-life is stretched by the same factor,
so the decay keeps its shape relative to the window.

Why: on a historical dataset with live traffic (MovieLens from 1998, a few interactions today)
the clock is today, and a 30-day window holds only the handful of items touched live; a
popular list made of them replaces the catalogue's popularity. Widened to the last 10,000
interactions with a half-life of ~6 years instead of 7 days, the 1998 history still counts (its
best items score well above one live click) and the live events, newest, weigh most per event.
A busy service (more than ``popular_min_events`` interactions in the nominal window) never
widens: its popular list is the window's, as configured. The engine (``graphrec.engine.catalog``)
and the ranker's offline replay (``gnn.ranking.offline``) use this same rule.

The engine scores the window in Cypher (``cypher/recs/popular_page.cypher``, ``popular.cypher``);
the replay scores a snapshot with :func:`decay`, the same formula with the same rate
(:data:`DECAY_RATE`), the same window and the same type weights (``[interactions]
score_weights``). Both fill a quiet list up with :func:`top_up`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: The decay per half-life in the popular queries' ``exp(-0.6931 * abs($now - r.ts) / $half_life_s)``
#: (ln 2 to four places). A query file cannot import it: tests/core/test_popularity.py checks the
#: queries write this rate, tests/engine/test_popular_parity.py that both give the same scores.
DECAY_RATE = 0.6931


@dataclass(frozen=True)
class PopularWindow:
    """The window's start (``since``), its decay half-life and whether it was widened."""

    since: float
    half_life_s: float
    widened: bool = False


def nominal(now: float, window_s: float, half_life_s: float) -> PopularWindow:
    return PopularWindow(now - window_s, half_life_s)


def widened(now: float, window_s: float, half_life_s: float, min_events: int, events: int,
            kth_newest: float | None) -> PopularWindow:
    """The window to use when the nominal one (``now - window_s``..) holds ``events``
    interactions: unchanged when that is at least ``min_events`` (or nothing older is known),
    else from ``kth_newest`` (the time of the ``min_events``-th newest interaction at or before
    ``now``; the oldest one when there are fewer), the half-life stretched by the same factor."""
    start = now - window_s
    if events >= min_events or kth_newest is None or kth_newest >= start or window_s <= 0:
        return PopularWindow(start, half_life_s)
    factor = (now - kth_newest) / window_s
    return PopularWindow(kth_newest, half_life_s * factor, widened=True)


def decay(now: float, ts: np.ndarray, half_life_s: float) -> np.ndarray:
    """Each interaction's weight factor at ``now``: 2^(-|now - ts| / half-life), computed as the
    popular queries compute it (:data:`DECAY_RATE`)."""
    return np.exp(-DECAY_RATE * np.abs(now - np.asarray(ts, dtype=np.float64)) / half_life_s)


def top_up(popular: list[tuple[str, float]], all_time: Iterable[tuple[str, int]], top: int
           ) -> list[tuple[str, float]]:
    """``popular`` (the window's list, best first) filled up to ``top`` items from ``all_time``
    (available items and their all-time interaction counts, most first): a quiet window still
    gives a full list. The added items rank below the window's (each scores at most half its
    lowest score, 1.0 for an empty window), in all-time order: ``floor × 0.5 × n / most``."""
    if len(popular) >= top:
        return popular
    seen = {i for i, _ in popular}
    rest = [(i, n) for i, n in all_time if i not in seen]
    floor = min((s for _, s in popular), default=1.0)
    most = max(1, rest[0][1]) if rest else 1
    return popular + [(i, floor * 0.5 * n / most) for i, n in rest[: top - len(popular)]]
