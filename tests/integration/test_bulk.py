"""Bulk import (neo4j-admin database import) against a real Neo4j of its own.

The import stops and restarts its server, so it gets a scratch Neo4j (``var/test-bulk``, free
ports), not the session's; the online loader writes the same files into the session's database,
and the two graphs must be equal."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import RoutingControl

from graphrec.core.config import Settings
from graphrec.core.errors import BadRowError, BulkImportError, QueryError
from graphrec.testing import own_neo4j, wipe
from loaders.bulk import BulkImport, _Columns
from loaders.files import read_file
from loaders.synthetic import SyntheticCatalog, SyntheticSpec
from loaders.writer import GraphWriter

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bulk_neo4j(neo4j_settings: Settings) -> Iterator[Settings]:
    with own_neo4j(neo4j_settings.var_dir.parent / "test-bulk") as s:
        yield s
    shutil.rmtree(s.var_dir / "neo4j" / "import", ignore_errors=True)


@pytest.fixture()
def bulk_store(bulk_neo4j: Settings) -> Iterator[Any]:
    """The scratch server running, its database emptied."""
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.neo4j_server import Neo4jServer

    Neo4jServer(bulk_neo4j).start()
    with GraphStore.from_settings(bulk_neo4j) as st:
        wipe(st)
        yield st


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    users = _write(tmp_path, "users.csv", "id,age,plan,created_at\n"
                   "u1,30,gold,1600000000\n"
                   "u2,41,silver,1600000100\n"
                   "u2,42,,1600000200\n")                       # again: age updated, plan kept
    items = [
        {"id": "i1", "title": 'One, "the first"\nof two', "year": 1999, "categories": ["A", "B"], "tags": ["x", "y"],
         "created_at": 1500000000, "attributes": {"rating": 4.5, "featured": True, "pages": 300}},
        {"id": "i2", "title": "Two", "available": False, "categories": ["B"], "created_at": 1500000100,
         "description": "ünïcode ✓", "attributes": {"rating": 3.0, "featured": False, "pages": 120}},
        {"id": "i3", "title": "Three", "created_at": 1500000200, "tags": ["y"]},
        {"id": "i2", "title": "Two (2nd ed.)", "categories": ["A"], "created_at": 1500000300},  # again: updated
    ]
    items_path = _write(tmp_path, "items.jsonl", "".join(json.dumps(r) + "\n" for r in items))
    events = _write(tmp_path, "events.csv",
                    "user_id,item_id,type,ts,value,dwell_seconds,session_id,key\n"
                    "u1,i1,VIEW,1700000000,,30,s1,\n"
                    "u1,i2,CLICK,1700000010,,,s1,\n"
                    "u1,i2,CLICK,1700000010,,,s1,\n"          # duplicate row: stored once
                    "u2,i1,RATE,1700000100,5,,,\n"
                    "u3,i1,PURCHASE,1700000400,,,s2,\n"       # unknown user: created on first sight
                    "u3,i3,VIEW,1700000200,,12.5,s2,\n"       # ... at its earliest interaction
                    "u1,i3,SKIP,1700000300,,,s2,\n"           # a second user in session s2
                    "u2,nope,CLICK,1700000300,,,,\n"          # unknown item: reported
                    "u2,i1,CLICK,garbage,,,,\n"               # bad timestamp: reported
                    "u2,i3,CLICK,1700000500,,,,k-1\n"         # a client key
                    "u1,i3,CLICK,1700000600,,,,k-1\n")        # the same key again: stored once
    return users, items_path, events


def _dump(store: Any) -> tuple[list[Any], list[Any]]:
    """Every node and relationship with its properties (the write-time stamps updated_at and
    history_at, set to the server's "now" by online writes, left out)."""
    nodes = store.run_text("MATCH (n) WHERE NOT n:GraphrecMeta OR n.key = 'clock' "
                           "RETURN labels(n) AS labels, properties(n) AS props")
    rels = store.run_text("MATCH (a)-[r]->(b) RETURN type(r) AS type, coalesce(a.id, a.name) AS a, "
                          "coalesce(b.id, b.name) AS b, properties(r) AS props")

    def clean(p: dict[str, Any]) -> list[tuple[str, Any]]:
        return sorted((k, v) for k, v in p.items() if k not in ("updated_at", "history_at"))

    return (sorted((sorted(n["labels"]), clean(n["props"])) for n in nodes),
            sorted((r["type"], r["a"], r["b"], clean(r["props"])) for r in rels))


def test_a_bulk_import_writes_the_graph_the_online_loader_writes(store, bulk_store, bulk_neo4j, tmp_path: Path) -> None:  # noqa: ANN001
    """Same files, two paths: the online loader into the session's database, the import into the
    scratch one. Equal graphs: properties and their types, duplicates dropped, first-sight users,
    sessions and their spans, the clock; the same bad rows reported; constraints in place after."""
    from graphrec.core.graph import schema

    users, items, events = _files(tmp_path)
    # One lane: a session two users share takes the user_id of the first to write it (bulk: the
    # first in the file), and lanes race.
    w = GraphWriter(store, batch_size=100, progress=False, writers=1)
    late = _write(tmp_path, "late.csv", "id,age\nu3,25\n")  # a profile for a user first seen in events
    online = [w.users(read_file(users, "users")), w.items(read_file(items, "items")),
              w.interactions(read_file(events, "interactions")), w.users(read_file(late, "users"))]
    with BulkImport(bulk_neo4j, progress=False) as bulk:
        bulk.users(read_file(users, "users"))
        bulk.items(read_file(items, "items"))
        bulk.interactions(read_file(events, "interactions"))
        bulk.users(read_file(late, "users"))
        rep = bulk.commit()
    assert [(r.kind, r.rows, r.bad) for r in rep.reports] == [(r.kind, r.rows, r.bad) for r in online]
    assert [(r.written, r.unchanged) for r in rep.reports] == [(r.written, r.unchanged) for r in online]
    assert (rep.reports[2].written, rep.reports[2].unchanged) == (7, 2)  # the duplicate row, the repeated key
    errors = sorted((e.line, e.reason) for e in rep.reports[2].errors)
    assert errors == sorted((e.line, e.reason) for e in online[2].errors) and [n for n, _ in errors] == [9, 10]
    assert rep.interactions == 7 and rep.nodes["users"] == 3 and rep.notes == []
    assert bulk_store.run_text("MATCH (u:User {id: 'u3'}) RETURN u.created_at AS c, u.age AS a") == \
        [{"c": 1700000200.0, "a": "25"}]  # created at first sight (its earliest event), profile added
    assert set(rep.phases) == {"read", "files", "stop", "import", "start", "schema"}
    nodes, rels = _dump(bulk_store)
    assert (nodes, rels) == _dump(store)
    # Spot checks of what "equal" covers, on the imported graph.
    props = dict(bulk_store.run_text("MATCH (i:Item {id: 'i1'}) RETURN properties(i) AS p")[0]["p"])
    assert (props["title"], props["year"], props["rating"], props["featured"], props["pages"]) == \
        ('One, "the first"\nof two', 1999, 4.5, True, 300)
    assert bulk_store.run_text("MATCH (s:Session {id: 's2'}) RETURN s.started_at AS a, s.last_at AS z, "
                               "COLLECT { MATCH (u)-[:HAS_SESSION]->(s) RETURN u.id ORDER BY u.id } AS users") == \
        [{"a": 1700000200.0, "z": 1700000400.0, "users": ["u1", "u3"]}]
    assert schema.current_version(bulk_store) == schema.SCHEMA_VERSION
    with pytest.raises(QueryError, match="already exists"):  # the key constraints hold
        bulk_store.run_text("MATCH (u:User {id: 'u1'}), (i:Item {id: 'i1'}) "
                            "CREATE (u)-[:VIEWED {key: $key, ts: 1.0}]->(i)", routing=RoutingControl.WRITE,
                            key=bulk_store.run_text("MATCH ()-[r:VIEWED]->() RETURN r.key AS k")[0]["k"])


def test_parallel_parts_import_what_one_pass_does(store, bulk_store, bulk_neo4j) -> None:  # noqa: ANN001
    """The synthetic catalogue's interactions read by two processes (parts partition the users)
    give the graph the online loader writes from one pass."""
    cat = SyntheticCatalog(SyntheticSpec(users=300, items=120, interactions=4000, categories=5, seed=3, chunk=50))
    w = GraphWriter(store, batch_size=1000, progress=False)
    w.users(cat.users())
    w.items(cat.items())
    online = w.interactions(cat.interaction_batches())
    with BulkImport(bulk_neo4j, on_error="stop", progress=False) as bulk:
        bulk.users(cat.users())
        bulk.items(cat.items())
        parts = bulk.interaction_parts([functools.partial(cat.interaction_batches, part=k, parts=2) for k in range(2)])
        rep = bulk.commit()
    assert parts.rows == online.rows and rep.interactions == online.written > 3000
    assert _dump(bulk_store) == _dump(store)


def test_a_bulk_import_refuses_a_database_with_data_and_leaves_it_alone(bulk_store, bulk_neo4j, tmp_path: Path) -> None:  # noqa: ANN001
    users, items, _ = _files(tmp_path)
    GraphWriter(bulk_store, progress=False).users(read_file(users, "users"))
    with pytest.raises(BulkImportError, match="holds 2 nodes"), BulkImport(bulk_neo4j, progress=False):
        pass
    assert bulk_store.counts()["users"] == 2
    # A bad row under "stop": nothing imported, the server back up, the files gone.
    wipe(bulk_store)
    bad = _write(tmp_path, "bad.csv", "user_id,item_id,type,ts\nu1,i1,CLICK,1700000000\nu1,i1,HUG,1700000001\n")
    with pytest.raises(BadRowError, match="HUG"), BulkImport(bulk_neo4j, on_error="stop", progress=False) as bulk:
        bulk.items(read_file(items, "items"))
        bulk.interactions(read_file(bad, "interactions"))
    assert bulk_store.counts().get("items", 0) == 0 and not list(bulk.dir.parent.glob("bulk-*"))


def test_a_bulk_import_refuses_a_server_graphrec_does_not_manage(bulk_neo4j: Settings) -> None:
    remote = bulk_neo4j.model_copy(update={"neo4j": bulk_neo4j.neo4j.model_copy(update={"uri": "neo4j://db.example:7687"})})
    with pytest.raises(BulkImportError, match="local Neo4j graphrec manages"):
        BulkImport(remote)


def test_attribute_columns_get_one_type_each() -> None:
    cols = _Columns()
    for attrs in ({"age": 30, "score": 1, "vip": True, "name": "a"}, {"age": "unknown", "score": 2.5, "vip": False}):
        cols.see(attrs)
    names, fields, notes = cols.header()
    assert names == ["age", "name", "score", "vip"]
    assert fields == ["age:string", "name:string", "score:double", "vip:boolean"]
    assert notes == ["attribute 'age' holds int, str values: stored as string",
                     "attribute 'score' holds float, int values: stored as double"]


def test_items_without_created_at_are_dated_as_the_cli_dates_them(store, bulk_store, bulk_neo4j, tmp_path: Path) -> None:  # noqa: ANN001
    """An item read from a file without created_at: creation unknown (never fresh), then the time
    of its first interaction, as `graphrec load items|interactions` leaves it (load/items, then
    load/created_from_first_interaction); not the import time."""
    import time

    items = _write(tmp_path, "items.csv", "id,title,created_at\ndated,Dated,1500000000\nlater,Later,\nnever,Never,\n")
    events = _write(tmp_path, "events.csv", "user_id,item_id,type,ts\nu1,later,VIEW,1700000300\n"
                    "u2,later,SKIP,1700000100\nu1,dated,CLICK,1700000200\n")
    w = GraphWriter(store, batch_size=100, progress=False, writers=1)
    w.items(read_file(items, "items"))
    w.interactions(read_file(events, "interactions"))
    store.write("load/created_from_first_interaction", now=time.time())
    with BulkImport(bulk_neo4j, progress=False) as bulk:
        bulk.items(read_file(items, "items"))
        bulk.interactions(read_file(events, "interactions"))
        bulk.commit()
    created = "MATCH (i:Item) RETURN i.id AS id, i.created_at AS c ORDER BY id"
    assert bulk_store.run_text(created) == store.run_text(created) == [
        {"id": "dated", "c": 1500000000.0}, {"id": "later", "c": 1700000100.0}, {"id": "never", "c": None}]
    assert _dump(bulk_store) == _dump(store)
