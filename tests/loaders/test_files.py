"""CSV / JSON Lines readers: bad rows are reported with file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.core.errors import BadRowError, ValidationError
from loaders.files import read_file


def _rows(path: Path, kind: str) -> tuple[list, list[BadRowError]]:
    good, bad = [], []
    for row, _src in read_file(path, kind):  # type: ignore[arg-type]
        (bad if isinstance(row, BadRowError) else good).append(row)
    return good, bad


def test_csv_interactions_with_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "events.csv"
    p.write_bytes(
        b"user_id,item_id,type,ts,value,dwell_seconds,session_id\n"
        b"u1,i1,VIEW,1700000000,,12.5,s1\n"
        b"u1,i2,RATE,2023-11-14T22:13:20Z,4,,\n"
        b"u2,i1,JUMP,1700000000,,,\n"                 # line 4: unknown type
        b"u2,i1,CLICK,1700000000\n"                    # line 5: too few fields
        b"u3,\xff\xfe,CLICK,1700000000,,,\n"           # line 6: invalid UTF-8
        b"u4,i9,CLICK,not-a-time,,,\n"                 # line 7: bad timestamp
        b"u5,\"i,\"\"odd\",CLICK,1700000001,,,\n"      # a quoted comma is fine
    )
    good, bad = _rows(p, "interactions")
    assert [r.item_id for r in good] == ["i1", "i2", 'i,"odd']
    assert good[0].dwell_seconds == 12.5 and good[0].session_id == "s1"
    assert [(b.line, b.file) for b in bad] == [(4, str(p)), (5, str(p)), (6, str(p)), (7, str(p))]
    assert "unknown interaction type" in bad[0].reason
    assert "expected 7 fields" in bad[1].reason
    assert "invalid UTF-8" in bad[2].reason
    assert "timestamp" in bad[3].reason


def test_jsonl_items_and_camel_case(tmp_path: Path) -> None:
    p = tmp_path / "items.jsonl"
    p.write_text(
        '{"id": "a", "title": "A", "categories": ["x", "y"], "tags": ["t"], "price": 9.5}\n'
        '\n'
        '{"id": "b", "year": "soon"}\n'
        '[1, 2]\n'
        '{"id": "c", "title": \n'
        '{"id": "d", "createdAt": "2024-01-01T00:00:00Z", "available": false}\n'
    )
    good, bad = _rows(p, "items")
    assert [g.id for g in good] == ["a", "b", "d"]  # b's bad optional year is dropped (tests/loaders/test_forgiving.py)
    assert good[0].attributes == {"price": 9.5} and good[1].year is None
    assert good[2].available is False and good[2].created_at == 1704067200.0
    assert [b.line for b in bad] == [4, 5]
    assert "JSON object" in bad[0].reason and "malformed JSON" in bad[1].reason


def test_header_and_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "users.csv"
    p.write_text("name,age\nbob,3\n")
    with pytest.raises(BadRowError, match="header lacks"):
        list(read_file(p, "users"))
    with pytest.raises(ValidationError, match="no such file"):
        read_file(tmp_path / "missing.csv", "users")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(ValidationError, match="unsupported"):
        read_file(tmp_path / "x.xml", "users")


def test_future_times_and_out_of_range_values_are_bad_rows(tmp_path: Path) -> None:
    """Issue 21: a loader takes the same limits as the API (loader.max_clock_skew_s, value ranges)."""
    from graphrec.core.records import RowLimits

    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id,type,ts,value\n"
                 "u1,i1,VIEW,1700000000,\n"
                 "u1,i1,VIEW,2099-12-31T00:00:00Z,\n"  # line 3: from the future
                 "u1,i2,RATE,1700000000,9\n"           # line 4: a rating of 9 on a 0-5 scale
                 "u1,i3,RATE,1700000000,9\n")          # line 5: fine on a 0-10 scale
    good, bad = _rows(p, "interactions")
    assert len(good) == 1 and [b.line for b in bad] == [3, 4, 5]
    assert "in the future" in bad[0].reason and "a rating must be between 0 and 5" in bad[1].reason
    ten = [r for r, _ in read_file(p, "interactions", limits=RowLimits(rating_max=10.0)) if not isinstance(r, BadRowError)]
    assert [r.item_id for r in ten] == ["i1", "i2", "i3"]
