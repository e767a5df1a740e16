"""The two newest distinct times of a write (what moves the graph's clock)."""

from __future__ import annotations

import pytest

from graphrec.core.records import newest_two


def test_newest_two_distinct_times() -> None:
    assert newest_two([3.0, 1.0, 2.0]) == (3.0, 2.0)
    assert newest_two([5.0, 5.0, 4.0]) == (5.0, 4.0)
    assert newest_two([7.0, 7.0]) == (7.0, None)
    assert newest_two(iter([1.0])) == (1.0, None)
    with pytest.raises(ValueError):
        newest_two([])
