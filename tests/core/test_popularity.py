"""The popular window rule (graphrec.core.recs.popularity): a busy window as configured, a quiet
one widened back to popular_min_events interactions with its half-life stretched alike."""

from __future__ import annotations

import pytest

from graphrec.core.recs.popularity import PopularWindow, widened

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
