"""The interaction journal on its own: durable appends, ordered replay, torn lines, dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.core.errors import GraphStoreUnavailable, LockHeld
from graphrec.engine.journal import Journal


def test_replay_in_order_offsets_and_failures(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    for k in range(5):
        j.append({"key": f"k{k}", "item": "i"})
    seen: list[str] = []
    calls = [0]

    def flaky(rows: list[dict]) -> list:
        calls[0] += 1
        if calls[0] == 2:
            raise GraphStoreUnavailable("down")
        seen.extend(r["key"] for r in rows)
        return [(rows[0], "unknown item")] if rows[0]["key"] == "k0" else []

    with pytest.raises(GraphStoreUnavailable):
        j.replay(flaky, batch=2)
    assert seen == ["k0", "k1"] and j.pending() > 0  # the failed batch was not marked done
    assert j.replay(flaky, batch=2) == 3
    assert seen == ["k0", "k1", "k2", "k3", "k4"] and j.pending() == 0
    assert "unknown item" in (tmp_path / "dead-letter.jsonl").read_text()


def test_torn_last_line_is_not_replayed(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append({"key": "a"})
    with open(j.path, "ab") as fh:
        fh.write(b'{"key": "b"')  # a crash mid-append: never acknowledged
    got: list[str] = []
    assert j.replay(lambda rows: got.extend(r["key"] for r in rows) or []) == 1
    assert got == ["a"]


def test_one_replayer_at_a_time(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append({"key": "a"})
    with j._replay_lock(), pytest.raises(LockHeld):
        j.replay(lambda rows: [])


def _row(key: str, user: str, item: str = "50", type: str = "CLICKED") -> dict:
    return {"key": key, "user": user, "item": item, "type": type, "ts": 1.0, "value": None, "dwell": None,
            "session": None}


def test_a_pending_key_names_one_interaction_for_every_process(tmp_path: Path) -> None:
    """Issue 21: two entries with one key and different users were both acknowledged; the second
    could never replay. Now the second is refused before it is journalled, whichever process
    (journal object) journalled the first; the same interaction again is not appended twice."""
    from graphrec.core.errors import KeyConflict

    one, two = Journal(tmp_path), Journal(tmp_path)  # two API processes sharing the journal
    assert one.append_checked(_row("k-1", "a")) is True
    with pytest.raises(KeyConflict) as e:
        two.append_checked(_row("k-1", "b"))
    assert e.value.field == "key" and e.value.code == "BAD_USER_INPUT"
    with pytest.raises(KeyConflict):
        one.append_checked(_row("k-1", "a", type="VIEWED"))
    assert two.append_checked(_row("k-1", "a")) is False  # a retry: not appended again
    assert len(one.path.read_text().splitlines()) == 1
    one._set_offset(one.path.stat().st_size)  # replayed: those keys are the graph's to check now
    assert two.append_checked(_row("k-2", "b")) is True


def test_an_append_after_a_torn_line_is_not_glued_to_it_and_bad_lines_are_dead_lettered(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append_checked(_row("k-1", "a"))
    with open(j.path, "ab") as fh:
        fh.write(b'{"key": "torn')  # a crash mid-append: never acknowledged
    assert j.append_checked(_row("k-2", "a")) is True
    got: list[str] = []
    assert j.replay(lambda rows: got.extend(r["key"] for r in rows) or []) == 3
    assert got == ["k-1", "k-2"]  # the acknowledged entry after the torn line is replayed
    dead = [json.loads(x) for x in j.dead_path.read_text().splitlines()]
    assert [d["reason"] for d in dead] == ["malformed journal line (not a JSON object)"]
    assert dead[0]["row"] == '{"key": "torn' and dead[0]["at"] > 0 and j.dead_lettered() == 1


def test_only_a_refusal_for_good_is_a_dead_letter() -> None:
    """A transaction Neo4j timed out on a busy server is not a poison row: replaying it later
    writes it (it must never be set aside, or an acknowledged interaction would be lost)."""
    from graphrec.core.errors import QueryError
    from graphrec.engine.journal import refused_for_good

    assert refused_for_good(QueryError("load/interactions: constraint violated: Relationship(162) already exists"))
    assert refused_for_good(QueryError("load/interactions: Neo.ClientError.Statement.TypeError: bad value"))
    assert not refused_for_good(QueryError(
        "load/interaction_refs: Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration: terminated"))


def test_a_row_that_always_fails_for_an_unknown_reason_is_dead_lettered_after_its_attempts(tmp_path: Path) -> None:
    """A row whose write always fails with an error ``refused_for_good`` does not recognise (a
    ``Neo.DatabaseError``) blocked every row after it for good: each replay raised at its batch.
    Now the batch is retried one row at a time; the row that fails is dead-lettered, with the
    error, after its attempts (counted across replays and journal objects), and the rest lands."""
    from graphrec.core.errors import QueryError

    j = Journal(tmp_path)
    for k in ("k0", "bad", "k2"):
        j.append(_row(k, "a"))
    written: list[str] = []

    def write(rows: list[dict]) -> list:
        if any(r["key"] == "bad" for r in rows):
            raise QueryError("load/interactions: Neo.DatabaseError.General.UnknownError: something broke")
        written.extend(r["key"] for r in rows)
        return []

    outcomes: list[object] = []
    for _ in range(25):  # the replay task runs every 2 s in each API process
        try:
            outcomes.append(Journal(tmp_path).replay(write))  # a process of its own each time
            break
        except QueryError:
            outcomes.append("failed")
    assert written[:1] == ["k0"]  # the row before it landed at the first replay
    assert outcomes == ["failed"] * 19 + [2]  # the default: dead-lettered at its 20th replay
    assert written == ["k0", "k2"] and j.pending() == 0 and j.failing() is None
    dead = [json.loads(x) for x in j.dead_path.read_text().splitlines()]
    assert [d["row"]["key"] for d in dead] == ["bad"]
    assert dead[0]["reason"].startswith("failed in 20 replays: QueryError: ") and "Neo.DatabaseError" in dead[0]["reason"]


def test_neo4j_away_or_busy_never_dead_letters_a_row(tmp_path: Path) -> None:
    """However many replays meet "Neo4j unavailable" or a transaction timeout, the row waits."""
    from graphrec.core.errors import QueryError

    j = Journal(tmp_path)
    j.append(_row("k0", "a"))
    j.append(_row("k1", "a"))
    errors = [GraphStoreUnavailable("Neo4j unavailable during load/interactions: ServiceUnavailable"),
              QueryError("load/interactions: Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration: x"),
              TimeoutError()]
    for n in range(30):
        err = errors[n % len(errors)]

        def failing(rows: list[dict], err: BaseException = err) -> list:
            raise err

        with pytest.raises(type(err)):
            j.replay(failing)
    assert not j.dead_path.exists() and j.offset() == 0
    assert j.replay(lambda rows: []) == 2


def test_dead_letters_are_requeued_once_their_cause_is_fixed_and_nothing_is_lost(tmp_path: Path) -> None:
    """An operator creates the missing item, then requeues the entries dead-lettered for it: they
    go back to the journal and replay; the others stay dead letters; the file before is kept."""
    j = Journal(tmp_path)
    for k, item in enumerate(["ghost", "50", "ghost", "bad"]):
        j.append_checked(_row(f"k{k}", "u", item))
    with open(j.path, "ab") as fh:
        fh.write(b"not json\n")
    known = {"50"}

    def write(rows: list[dict]) -> list:
        return [(r, f"unknown item id {r['item']!r}") for r in rows if r["item"] not in known]

    assert j.replay(write) == 5 and j.dead_lettered() == 4
    known.add("ghost")  # the cause is fixed
    n, kept = j.requeue(lambda e: e["row"].get("item") == "ghost")
    assert n == 2 and kept is not None and kept.exists() and len(kept.read_text().splitlines()) == 4
    left = j.dead_letters()
    assert [e["row"] if isinstance(e["row"], str) else e["row"]["key"] for e in left] == ["k3", "not json"]
    assert j.dead_lettered() == 2 and j.pending() > 0
    written: list[str] = []
    assert j.replay(lambda rows: written.extend(r["key"] for r in rows) or write(rows)) == 2
    assert written == ["k0", "k2"] and j.pending() == 0 and j.dead_lettered() == 2
    assert j.requeue(lambda e: False) == (0, None)  # nothing chosen: nothing moves


def test_requeue_waits_for_a_running_replay(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append_checked(_row("k0", "u", "ghost"))
    j.replay(lambda rows: [(rows[0], "unknown item id 'ghost'")])
    with j._replay_lock(), pytest.raises(LockHeld):
        j.requeue()
    assert j.dead_lettered() == 1
