"""The interaction journal on its own: durable appends, ordered replay, torn lines, dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.errors import GraphStoreUnavailable, LockHeld
from graphrec.journal import Journal


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
