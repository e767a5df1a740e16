"""Property-based fuzzing of the file loaders: whatever bytes a file holds, reading it never
crashes. Every line is either a validated row or a BadRowError naming the file and a line that
exists; a bad header stops the file with a BadRowError; nothing else escapes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphrec.core.errors import BadRowError
from graphrec.core.records import InteractionRow, ItemRow, UserRow
from loaders.files import read_file

KINDS = {"interactions": InteractionRow, "items": ItemRow, "users": UserRow}
HEADERS = {
    "interactions": b"user_id,item_id,type,ts,value,dwell_seconds,session_id\n",
    "items": b"id,title,year,categories,tags\n",
    "users": b"id,age,gender,occupation\n",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Field values that stress parsing: Cypher-looking text, quotes, separators, odd numbers and times.
nasty = st.sampled_from(["", " ", "u1", "i1", "VIEW", "CLICK", "RATE", "PURCHASE", "SKIP", "view", "1700000000",
                         "-1", "1e308", "nan", "inf", "2024-02-30T00:00:00Z", "2023-11-14T22:13:20Z", "5", "4.5",
                         "x' OR 1=1 //", "`); MATCH (n) DETACH DELETE n //", "\"quoted\"", "a,b", "a|b",
                         "\\", "\u0000", "é", "🙂", "x" * 5000])
field = st.one_of(nasty, st.text(max_size=30))


def _check(path: Path, kind: str) -> None:
    n_lines = max(1, path.read_bytes().count(b"\n") + 1)
    try:
        for row, src in read_file(path, kind):  # type: ignore[arg-type]
            if isinstance(row, BadRowError):
                assert row.file == str(path) and 1 <= row.line <= n_lines and row.reason
            else:
                assert isinstance(row, KINDS[kind])
                assert 1 <= src.line <= n_lines
    except BadRowError as e:  # a file-level problem (the header): reported, typed
        assert e.file == str(path) and e.reason


def _fuzz(data: bytes, suffix: str, kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="graphrec-fuzz-") as d:
        p = Path(d) / f"f{suffix}"
        p.write_bytes(data)
        _check(p, kind)


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)), body=st.binary(max_size=2000))
def test_csv_random_bytes_after_a_good_header(kind: str, body: bytes) -> None:
    _fuzz(HEADERS[kind] + body, ".csv", kind)


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)), data=st.binary(max_size=2000))
def test_any_bytes_as_csv_or_jsonl(kind: str, data: bytes) -> None:
    _fuzz(data, ".csv", kind)
    _fuzz(data, ".jsonl", kind)


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)), rows=st.lists(st.lists(field, min_size=0, max_size=9), max_size=20))
def test_csv_structured_rows(kind: str, rows: list[list[str]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    for r in rows:
        w.writerow(r)
    _fuzz(HEADERS[kind] + buf.getvalue().encode("utf-8", "surrogatepass"), ".csv", kind)


json_value = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | field,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(field, inner, max_size=4),
                          max_leaves=12)


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)),
       objs=st.lists(st.dictionaries(st.sampled_from(["id", "user_id", "userId", "item_id", "itemId", "type", "ts",
                                                      "timestamp", "value", "title", "year", "categories", "tags",
                                                      "age", "dwellSeconds", "sessionId", "available", "extra"]),
                                     json_value, max_size=8), max_size=15))
def test_jsonl_structured_objects(kind: str, objs: list[dict]) -> None:
    text = "\n".join(json.dumps(o) for o in objs)
    _fuzz(text.encode(), ".jsonl", kind)
