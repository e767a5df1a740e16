"""Interaction batches (columns) and their row sources: pure logic, no database."""

from __future__ import annotations

import pytest

from graphrec.core.records import InteractionRow, InteractionType, interaction_key
from loaders.writer import InteractionBatch, LineSources, Source


def test_line_sources_index_and_slice_like_a_list() -> None:
    src = LineSources("f.csv", 10, 5)
    as_list = [Source("f.csv", 10 + k) for k in range(5)]
    assert list(src) == as_list and len(src) == 5
    assert src[-1] == as_list[-1] and src[0] == as_list[0]
    assert list(src[1:4]) == as_list[1:4] and list(src[3:99]) == as_list[3:99]
    assert list(src[::2]) == as_list[::2] and list(src[4:1]) == []
    with pytest.raises(IndexError):
        src[5]


def _row(user: str, item: str, t: float, **kw: object) -> InteractionRow:
    return InteractionRow(user_id=user, item_id=item, type=InteractionType.CLICK, ts=t, **kw)


def test_from_rows_keeps_the_client_key_or_derives_one() -> None:
    rows = [(_row("u1", "i1", 1.0, session_id="s"), Source("a", 2)),
            (_row("u2", "i2", 2.5, key="client-key", value=0.5), Source("a", 3))]
    b = InteractionBatch.from_rows(rows)
    assert b.key == [interaction_key("u1", "i1", "CLICKED", 1.0, "s"), "client-key"]
    assert rows[0][0].idempotency_key == b.key[0]
    assert (b.type, b.user, b.item, b.ts, b.value, b.session) == (
        ["CLICKED"] * 2, ["u1", "u2"], ["i1", "i2"], [1.0, 2.5], [None, 0.5], ["s", None])
    part = b.slice(1, 2)
    assert (part.key, part.user, list(part.sources)) == (["client-key"], ["u2"], [Source("a", 3)])


def test_columns_of_unequal_length_are_refused() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        InteractionBatch(type=["CLICKED"], key=["k"], user=["u"], item=[], ts=[1.0], value=[None],
                         dwell=[None], session=[None], sources=[Source("a", 1)])
