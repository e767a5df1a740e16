"""Loading one's own data forgives what it can: an optional field's bad value is dropped with a
warning (file, line, field, value), never the whole row; items without created_at are "created:
unknown" (never fresh) until their first interaction dates them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graphrec.core.errors import BadRowError
from loaders.files import FieldWarning, read_file


def test_a_bad_optional_field_is_dropped_with_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "items.csv"
    p.write_text("id,title,year,available\n1,Toy Story,1995,true\n267,unknown,unkonwn,true\n1373,Good Morning,V,maybe\n"
                 "99,,2300,\n")
    warnings: list[FieldWarning] = []
    rows = [r for r, _ in read_file(p, "items", warnings)]
    assert [r.id for r in rows] == ["1", "267", "1373", "99"]  # every row kept
    assert [r.year for r in rows] == [1995, None, None, None]
    assert rows[2].available is None
    assert [(w.line, w.field, w.value) for w in warnings] == [
        (3, "year", "unkonwn"), (4, "year", "V"), (4, "available", "maybe"), (5, "year", "2300")]
    assert "not an integer" in warnings[0].reason and str(warnings[0]).startswith(f"{p}:3: dropped year='unkonwn'")


def test_a_bad_required_field_still_rejects_the_row(tmp_path: Path) -> None:
    p = tmp_path / "interactions.jsonl"
    p.write_text('{"user_id": "u", "item_id": "i", "type": "VIEW", "ts": 1, "dwell_seconds": "long"}\n'
                 '{"user_id": "u", "item_id": "i", "type": "VIEW", "ts": "yesterday"}\n')
    warnings: list[FieldWarning] = []
    rows = [r for r, _ in read_file(p, "interactions", warnings)]
    assert rows[0].dwell_seconds is None and [w.field for w in warnings] == ["dwell_seconds"]
    assert isinstance(rows[1], BadRowError) and rows[1].line == 2


@pytest.mark.integration
def test_items_without_created_at_are_dated_by_their_first_interaction(store, tmp_path: Path) -> None:  # noqa: ANN001
    from loaders.writer import GraphWriter

    (tmp_path / "items.csv").write_text("id,title\na,A\nb,B\n")
    (tmp_path / "i.csv").write_text("user_id,item_id,type,ts\nu1,a,VIEW,1000\nu2,a,VIEW,900\n")
    w = GraphWriter(store, batch_size=100, on_error="stop", progress=False)
    w.items(read_file(tmp_path / "items.csv", "items"))
    created = {r["id"]: r["created_at"] for r in store.read("repo/get_items", ids=["a", "b"])}
    assert created == {"a": None, "b": None}  # unknown, not the load time
    assert store.read("recs/fresh_items", since=time.time() - 14 * 86400, limit=10) == []
    w.interactions(read_file(tmp_path / "i.csv", "interactions"))
    assert store.write("load/created_from_first_interaction", now=time.time())[0]["items"] == 1
    created = {r["id"]: r["created_at"] for r in store.read("repo/get_items", ids=["a", "b"])}
    assert created == {"a": 900.0, "b": None}
