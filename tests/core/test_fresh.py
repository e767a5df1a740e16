"""The fresh list (graphrec.core.recs.fresh), as the engine's sources and the offline replay use it."""

from __future__ import annotations

import pytest

from graphrec.core.recs.candidate import SourceContext
from graphrec.core.recs.fresh import candidates, newest, since

FRESH = [("e", 900.0), ("d", 800.0), ("c", 700.0), ("b", 600.0), ("a", 100.0)]  # newest first


def test_the_newest_items_within_the_window_up_to_the_limit() -> None:
    assert newest(FRESH, 650.0, 10) == ["e", "d", "c"]
    assert newest(FRESH, 650.0, 2) == ["e", "d"]
    assert newest(FRESH, 0.0, 10, keep=lambda i: i in {"d", "a"}) == ["d", "a"]
    assert newest(FRESH, 1000.0, 10) == []


def test_fresh_candidates_score_by_rank_from_one_to_just_above_a_half() -> None:
    out = candidates(["e", "d", "c", "b"])
    assert [(c.item_id, c.score, c.source) for c in out] == [("e", 1.0, "fresh"), ("d", 0.875, "fresh"),
                                                             ("c", 0.75, "fresh"), ("b", 0.625, "fresh")]
    assert candidates([]) == []


def test_the_window_comes_from_the_caller_never_from_a_default() -> None:
    assert since(SourceContext(store=None, now=1000.0, params={"fresh_window_s": 300.0})) == 700.0
    with pytest.raises(KeyError):
        since(SourceContext(store=None, now=1000.0))
