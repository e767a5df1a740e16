"""The popular window rule (graphrec.core.recs.popularity): a busy window as configured, a quiet
one widened back to popular_min_events interactions with its half-life stretched alike; the
decay the replay computes is the one the queries write; a quiet list is topped up below the
window's items."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest

from graphrec.core.recs.popularity import DECAY_RATE, PopularWindow, decay, top_up, widened

DAY = 86400.0


def test_a_window_with_enough_events_is_the_nominal_one() -> None:
    assert widened(1000 * DAY, 30 * DAY, 7 * DAY, 100, 100, 1.0) == PopularWindow(970 * DAY, 7 * DAY)


def test_a_quiet_window_reaches_back_to_the_kth_newest_event_with_a_stretched_half_life() -> None:
    w = widened(1000 * DAY, 30 * DAY, 7 * DAY, 100, 3, 400 * DAY)
    assert w.widened and w.since == 400 * DAY
    assert w.half_life_s == pytest.approx(7 * DAY * 600 / 30)  # the window is 20 times longer


def test_nothing_older_known_keeps_the_nominal_window() -> None:
    assert not widened(1000 * DAY, 30 * DAY, 7 * DAY, 100, 3, None).widened
    assert not widened(1000 * DAY, 30 * DAY, 7 * DAY, 100, 3, 990 * DAY).widened  # all events are in the window


def test_the_decay_halves_an_interactions_weight_every_half_life() -> None:
    w = decay(10 * DAY, np.array([10 * DAY, 9 * DAY, 8 * DAY, 11 * DAY]), DAY)
    assert w == pytest.approx([1.0, 0.5, 0.25, 0.5], rel=1e-4)  # a future interaction decays alike (|now - ts|)


@pytest.mark.parametrize("query", ["popular", "popular_page"])
def test_the_popular_queries_decay_at_the_replays_rate(query: str) -> None:
    """A query file cannot import DECAY_RATE: it must write the same number."""
    text = (resources.files("cypher") / "recs" / f"{query}.cypher").read_text()
    rates = re.findall(r"exp\(-([0-9.]+) \* abs\(\$now - r\.ts\) / \$half_life_s\)", text)
    assert rates and all(float(r) == DECAY_RATE for r in rates), rates


def test_a_quiet_list_is_topped_up_below_the_windows_items_in_all_time_order() -> None:
    window = [("a", 4.0), ("b", 2.0)]
    all_time = [("b", 50), ("c", 40), ("d", 10), ("e", 5)]
    assert top_up(window, all_time, 4) == [("a", 4.0), ("b", 2.0), ("c", 2.0 * 0.5), ("d", 2.0 * 0.5 * 10 / 40)]
    assert top_up(window, all_time, 2) == window  # full: unchanged
    assert top_up([], [("c", 0), ("d", 0)], 5) == [("c", 0.0), ("d", 0.0)]  # no interactions at all
    assert top_up([], [("c", 8), ("d", 2)], 5) == [("c", 0.5), ("d", 0.125)]  # an empty window: floor 1.0
