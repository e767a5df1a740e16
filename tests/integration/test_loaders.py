"""Loaders against the real Neo4j: idempotent, transactional batches, bad rows reported."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from neo4j import exceptions as nx

from graphrec.core.errors import BadRowError
from graphrec.testing import on_engine, tiny_graph
from loaders.files import read_file
from loaders.writer import GraphWriter

pytestmark = pytest.mark.integration


def _counts(store) -> dict[str, int]:  # noqa: ANN001
    return store.counts()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_load_is_idempotent_and_reports_bad_rows(store, tmp_path: Path) -> None:  # noqa: ANN001
    users = _write(tmp_path, "users.csv", "id,age\nu1,30\nu2,41\nu2,41\n")
    items = _write(tmp_path, "items.csv", "id,title,categories,tags\ni1,One,A|B,x\ni2,\"Two, the sequel\",B,\n")
    events = _write(tmp_path, "events.csv",
                    "user_id,item_id,type,ts,value,dwell_seconds,session_id\n"
                    "u1,i1,VIEW,1700000000,,30,s1\n"
                    "u1,i2,CLICK,1700000010,,,s1\n"
                    "u1,i2,CLICK,1700000010,,,s1\n"        # duplicate row: stored once
                    "u2,i1,RATE,1700000100,5,,\n"
                    "u3,i1,PURCHASE,1700000200,,,\n"         # unknown user: created on first sight
                    "u2,nope,CLICK,1700000300,,,\n"          # unknown item: reported
                    "u2,i1,CLICK,garbage,,,\n")              # bad timestamp: reported
    w = GraphWriter(store, batch_size=3, on_error="skip", progress=False)
    assert w.users(read_file(users, "users")).written == 2
    assert w.items(read_file(items, "items")).written == 2
    rep = w.interactions(read_file(events, "interactions"))
    assert (rep.rows, rep.written, rep.unchanged, rep.bad) == (7, 4, 1, 2)
    assert sorted((e.line, e.reason.split(" ")[0]) for e in rep.errors) == [(7, "unknown"), (8, "ts:")]
    before = _counts(store)
    assert (before["users"], before["items"], before["VIEWED"], before["CLICKED"], before["RATED"], before["PURCHASED"]) == (3, 2, 1, 1, 1, 1)
    assert before["sessions"] == 1 and before["categories"] == 2 and before["tags"] == 1
    # Second run: nothing changes.
    w.users(read_file(users, "users"))
    w.items(read_file(items, "items"))
    again = w.interactions(read_file(events, "interactions"))
    assert again.written == 0 and again.unchanged == 5
    assert _counts(store) == before


def test_stop_mode_writes_nothing_of_the_bad_batch(store, tmp_path: Path) -> None:  # noqa: ANN001
    tiny_graph(store)
    before = _counts(store)
    events = _write(tmp_path, "e.jsonl",
                    '{"userId": "zed", "itemId": "heat", "type": "CLICK", "ts": 5000}\n'
                    '{"userId": "zed", "itemId": "ghost", "type": "CLICK", "ts": 5001}\n')
    w = GraphWriter(store, batch_size=100, on_error="stop", progress=False)
    with pytest.raises(BadRowError) as e:
        w.interactions(read_file(events, "interactions"))
    assert e.value.line == 2 and "unknown item" in e.value.reason
    assert _counts(store) == before  # the good row of that batch was not written either


def test_hostile_strings_are_stored_as_data(store, neo4j_settings, tmp_path: Path) -> None:  # noqa: ANN001
    evil = "'}) MATCH (n) DETACH DELETE n //"
    items = _write(tmp_path, "items.jsonl", f'{{"id": "x`y", "title": "{evil}", "tags": ["{evil}"]}}\n')
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    it = on_engine(neo4j_settings, lambda e: e.repo.get_item("x`y"))
    assert it.title == evil and it.tags == (evil,)
    assert _counts(store)["items"] == 1


def test_items_upsert_replaces_categories(store, neo4j_settings) -> None:  # noqa: ANN001
    async def go(e: Any) -> Any:
        await e.upsert_item({"id": "a", "title": "A", "categories": ["x", "y"], "tags": ["t1"]})
        return await e.upsert_item({"id": "a", "categories": ["y", "z"], "available": False})

    it = on_engine(neo4j_settings, go)
    assert it.categories == ("y", "z") and it.tags == ("t1",) and it.title == "A" and not it.available


def test_item_updated_at_moves_only_when_something_changes(store, neo4j_settings) -> None:  # noqa: ANN001
    def upsert(item: dict[str, Any]) -> None:
        on_engine(neo4j_settings, lambda e: e.upsert_item(item))

    def stamp() -> float:
        return store.run_text("MATCH (i:Item {id: 'u1'}) RETURN i.updated_at AS t")[0]["t"]

    upsert({"id": "u1", "title": "A", "year": 1999, "categories": ["x"], "tags": ["t"]})
    first = stamp()
    assert first is not None
    upsert({"id": "u1", "title": "A", "year": 1999, "categories": ["x"], "tags": ["t"]})
    assert stamp() == first  # the same row again: nothing changed, not even the stamp
    upsert({"id": "u1", "categories": ["x"]})  # only fields given are compared
    assert stamp() == first
    for change in ({"title": "B"}, {"categories": ["x", "y"]}, {"tags": []}, {"available": False}):
        before = stamp()
        upsert({"id": "u1", **change})
        assert stamp() > before, change


def _events(n_users: int, n_items: int, per_user: int) -> str:
    lines = ["user_id,item_id,type,ts,session_id"]
    for u in range(n_users):
        for k in range(per_user):
            lines.append(f"u{u},i{(u * 7 + k * 13) % n_items},CLICK,{1_700_000_000 + u * 1000 + k},s{u}-{k // 4}")
    return "\n".join(lines) + "\n"


def test_parallel_writers_lose_nothing_and_keep_the_prefix_on_stop(store, tmp_path: Path) -> None:  # noqa: ANN001
    items = _write(tmp_path, "items.csv", "id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(50)))
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    events = _write(tmp_path, "e.csv", _events(n_users=120, n_items=50, per_user=25))  # 3,000 rows, popular items shared
    w = GraphWriter(store, batch_size=250, on_error="skip", progress=False, writers=3)
    rep = w.interactions(read_file(events, "interactions"))
    assert (rep.rows, rep.written, rep.bad) == (3000, 3000, 0)
    c = _counts(store)
    assert (c["CLICKED"], c["users"], c["sessions"]) == (3000, 120, 120 * 7)
    again = GraphWriter(store, batch_size=250, progress=False, writers=3).interactions(read_file(events, "interactions"))
    assert (again.written, again.unchanged) == (0, 3000) and _counts(store) == c
    # Under "stop", a bad row in the 3rd batch: the first two batches are in, nothing after them.
    more = _write(tmp_path, "more.csv", "user_id,item_id,type,ts\n"
                  + "".join(f"v{k},i{k % 50},VIEW,{1_750_000_000 + k}\n" for k in range(600))
                  + "v1,ghost,VIEW,1760000000\n" + "".join(f"w{k},i1,VIEW,{1_750_000_000 + k}\n" for k in range(300)))
    with pytest.raises(BadRowError):
        GraphWriter(store, batch_size=250, on_error="stop", progress=False, writers=3).interactions(read_file(more, "interactions"))
    assert _counts(store)["VIEWED"] == 500


def test_a_stale_element_id_never_attaches_an_interaction_to_the_wrong_node(store, tmp_path: Path) -> None:  # noqa: ANN001
    items = _write(tmp_path, "items.csv", "id,title\ni1,One\ni2,Two\n")
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    w = GraphWriter(store, progress=False, writers=2)
    first = _write(tmp_path, "a.csv", "user_id,item_id,type,ts\nu1,i1,CLICK,1\nu2,i2,CLICK,2\n")
    assert w.interactions(read_file(first, "interactions")).written == 2
    # i1's remembered element id now names i2 (as if i1 were deleted and its id reused).
    w._item_eids["i1"] = w._item_eids["i2"]
    second = _write(tmp_path, "b.csv", "user_id,item_id,type,ts\nu1,i1,VIEW,3\nu2,i1,VIEW,4\n")
    assert w.interactions(read_file(second, "interactions")).written == 2
    rows = store.run_text("MATCH (u:User)-[r:VIEWED]->(i:Item) RETURN u.id AS u, i.id AS i ORDER BY u")
    assert rows == [{"u": "u1", "i": "i1"}, {"u": "u2", "i": "i1"}]
    third = _write(tmp_path, "c.csv", "user_id,item_id,type,ts\nu1,i1,PURCHASE,5\n")
    assert w.interactions(read_file(third, "interactions")).written == 1
    real = store.run_text("MATCH (i:Item {id: 'i1'}) RETURN elementId(i) AS e")[0]["e"]
    assert w._item_eids == {"i1": real}  # forgotten and looked up again
    assert store.run_text("MATCH (:User {id: 'u1'})-[:PURCHASED]->(i) RETURN i.id AS i") == [{"i": "i1"}]


def test_column_batches_load_like_rows(store, tmp_path: Path) -> None:  # noqa: ANN001
    """The writer takes InteractionBatch columns (the synthetic generator's bulk path) mixed with
    rows: bad rows are reported with their source line, a re-load through the other path is
    idempotent, new users are created on first sight, sessions get their time span."""
    from graphrec.core.records import InteractionRow, InteractionType
    from loaders.writer import InteractionBatch, LineSources, Source

    items = _write(tmp_path, "items.csv", "id,title\ni1,One\ni2,Two\n")
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    rows = [(InteractionRow(user_id=u, item_id=i, type=InteractionType.parse(t), ts=ts, value=v, session_id=s), Source("x", n))
            for n, (u, i, t, ts, v, s) in enumerate([("u1", "i1", "VIEW", 10.0, None, "s1"),
                                                     ("u1", "i2", "RATE", 20.0, 4.0, "s1"),
                                                     ("u2", "i2", "CLICK", 30.0, None, None),
                                                     ("u2", "ghost", "CLICK", 40.0, None, None),
                                                     ("u1", "i1", "PURCHASE", 5.0, None, "s1")], start=1)]
    cols = InteractionBatch.from_rows(rows)
    cols.sources = LineSources("gen", 100, len(rows))
    w = GraphWriter(store, batch_size=2, on_error="skip", progress=False)
    rep = w.interactions([cols])
    assert (rep.rows, rep.written, rep.bad) == (5, 4, 1)
    assert [(e.file, e.line) for e in rep.errors] == [("gen", 103)]
    c = _counts(store)
    assert (c["users"], c["VIEWED"], c["RATED"], c["CLICKED"], c["PURCHASED"], c["sessions"]) == (2, 1, 1, 1, 1, 1)
    span = store.run_text("MATCH (:User {id: 'u1'})-[:HAS_SESSION]->(s:Session {id: 's1'}) "
                          "RETURN s.started_at AS a, s.last_at AS b")
    assert span == [{"a": 5.0, "b": 20.0}]
    assert store.run_text("MATCH (:User {id: 'u1'})-[r:RATED]->(:Item {id: 'i2'}) RETURN r.value AS v") == [{"v": 4.0}]
    # The same events as rows, then as a batch again: nothing new.
    again = GraphWriter(store, batch_size=2, on_error="skip", progress=False).interactions([*rows[:2], cols, *rows[2:]])
    assert (again.rows, again.written, again.bad) == (10, 0, 2)
    assert _counts(store) == c


def test_a_full_element_id_map_is_dropped_without_losing_a_batch(store, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """When the remembered element ids pass MAX_CACHED_IDS the map starts over before a batch is
    resolved (before, it was cleared after the lookup: ids remembered from earlier batches were
    gone, an item's lookup raised KeyError and a user's sent the batch to the MERGE fallback)."""
    import loaders.writer as writer

    monkeypatch.setattr(writer, "MAX_CACHED_IDS", 3)
    items = _write(tmp_path, "items.csv", "id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(6)))
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    events = _write(tmp_path, "e.csv", _events(n_users=12, n_items=6, per_user=5))  # 60 rows
    w = GraphWriter(store, batch_size=7, on_error="stop", progress=False, writers=2)
    rep = w.interactions(read_file(events, "interactions"))
    assert (rep.rows, rep.written, rep.bad) == (60, 60, 0)
    assert not w._check_keys  # no batch fell back to MERGE
    c = _counts(store)
    assert (c["CLICKED"], c["users"]) == (60, 12)


def test_keys_stored_after_the_check_go_to_the_merge_form(store, tmp_path: Path) -> None:  # noqa: ANN001
    """The first batch of a load is checked for stored keys (so a re-load never tries to CREATE
    them); keys stored by someone else after the check make the CREATE fail on the key constraint
    and the batch is written with the MERGE form: nothing twice, nothing lost."""
    items = _write(tmp_path, "items.csv", "id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(10)))
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    events = _write(tmp_path, "e.csv", _events(n_users=20, n_items=10, per_user=5))  # 100 rows
    assert GraphWriter(store, batch_size=30, progress=False).interactions(read_file(events, "interactions")).written == 100
    before = _counts(store)
    checks: list[int] = []
    w = GraphWriter(store, batch_size=30, progress=False)
    real = store.read

    def blind_check(name: str, *a: object, **kw: object) -> object:  # a concurrent writer stored them since
        if name == "load/interactions_check":
            checks.append(len(kw["keys"]))  # type: ignore[arg-type]
            return [{"present": []}]
        return real(name, *a, **kw)

    store.read = blind_check  # type: ignore[method-assign]
    try:
        rep = w.interactions(read_file(events, "interactions"))
    finally:
        store.read = real  # type: ignore[method-assign]
    assert (rep.rows, rep.written, rep.unchanged) == (100, 0, 100)
    assert checks and _counts(store) == before


def test_a_key_conflict_read_from_a_failed_result_still_goes_to_the_merge_form(store, tmp_path: Path) -> None:  # noqa: ANN001
    """When the driver retries a batch after a connection died mid-commit, the retry's key conflict
    can reach the loader as a failed result read again (``ResultFailedError`` caused by the real
    ``ConstraintError``; seen once in CI). It is the constraint case: the batch is rewritten with the
    MERGE form, and the load goes on instead of stopping as if Neo4j were down."""
    items = _write(tmp_path, "items.csv", "id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(10)))
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    events = _write(tmp_path, "e.csv", _events(n_users=20, n_items=10, per_user=5))  # 100 rows
    assert GraphWriter(store, batch_size=30, progress=False).interactions(read_file(events, "interactions")).written == 100
    before = _counts(store)
    real_read, real_session = store.read, store.driver.session
    surfaced: list[str] = []

    def blind_check(name: str, *a: object, **kw: object) -> object:  # the keys look new: CREATE form
        return [{"present": []}] if name == "load/interactions_check" else real_read(name, *a, **kw)

    def session(**kw: object) -> object:
        s = real_session(**kw)
        execute_write = s.execute_write

        def retried(work, *a: object, **k: object) -> object:  # noqa: ANN001
            @functools.wraps(work)
            def again(tx):  # noqa: ANN001, ANN202
                try:
                    return work(tx)
                except nx.ConstraintError as exc:  # the real conflict, read again by the retry
                    surfaced.append(exc.code)
                    raise nx.ResultFailedError(None, "result failed") from exc
            return execute_write(again, *a, **k)

        s.execute_write = retried
        return s

    store.read, store.driver.session = blind_check, session  # type: ignore[method-assign]
    try:
        rep = GraphWriter(store, batch_size=30, progress=False).interactions(read_file(events, "interactions"))
    finally:
        store.read, store.driver.session = real_read, real_session  # type: ignore[method-assign]
    assert surfaced and set(surfaced) == {"Neo.ClientError.Schema.ConstraintValidationFailed"}
    assert (rep.rows, rep.written, rep.unchanged) == (100, 0, 100)
    assert _counts(store) == before


def test_sessions_are_stored_once_and_their_span_grows(store, tmp_path: Path) -> None:  # noqa: ANN001
    """A session that crosses batches, and one the graph already holds, end as one Session node
    with one HAS_SESSION link and the span of all their events."""
    items = _write(tmp_path, "items.csv", "id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(4)))
    GraphWriter(store, progress=False).items(read_file(items, "items"))
    first = _write(tmp_path, "a.csv", "user_id,item_id,type,ts,session_id\nu0,i0,CLICK,50,s0\n")
    GraphWriter(store, progress=False).interactions(read_file(first, "interactions"))
    events = _write(tmp_path, "b.csv", "user_id,item_id,type,ts,session_id\n"
                    "u1,i0,CLICK,10,s1\nu1,i1,CLICK,20,s1\nu1,i2,CLICK,30,s1\nu0,i1,CLICK,40,s0\nu0,i2,CLICK,60,s0\n")
    rep = GraphWriter(store, batch_size=2, progress=False, writers=2).interactions(read_file(events, "interactions"))
    assert rep.written == 5
    rows = store.run_text("MATCH (s:Session) OPTIONAL MATCH (u:User)-[h:HAS_SESSION]->(s) "
                          "RETURN s.id AS id, s.started_at AS a, s.last_at AS b, collect(u.id) AS users ORDER BY id")
    assert rows == [{"id": "s0", "a": 40.0, "b": 60.0, "users": ["u0"]},
                    {"id": "s1", "a": 10.0, "b": 30.0, "users": ["u1"]}]
