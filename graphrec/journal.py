"""The interaction journal: no accepted interaction is lost while Neo4j is away.

When a write to Neo4j fails, the engine appends the validated interaction to
``<var_dir>/journal/interactions.jsonl`` (one JSON object per line, ``fsync``'d before the
request is answered) and says ``stored: JOURNAL``. A replayer writes journalled interactions to
Neo4j in order, batch by batch, and records how far it got in ``replayed.offset`` (also
fsync'd, replaced atomically). Interactions carry their idempotency key, so a batch replayed
twice (a crash between writing and recording the offset) changes nothing. Several API
processes share one journal: appends hold an exclusive ``flock``; one replayer at a time holds
``replay.lock``. Rows Neo4j refuses for good (an item that does not exist) go to
``dead-letter.jsonl`` with the reason instead of blocking the journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphrec.errors import GraphStoreUnavailable, LockHeld
from graphrec.graph.store import Statement


class Journal:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "interactions.jsonl"
        self.offset_path = self.dir / "replayed.offset"
        self.dead_path = self.dir / "dead-letter.jsonl"
        self.lock_path = self.dir / "replay.lock"

    def append(self, row: dict[str, Any]) -> None:
        """Durably append one interaction (returns after fsync)."""
        line = (json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _set_offset(self, value: int) -> None:
        tmp = self.offset_path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(value))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.offset_path)

    def pending(self) -> int:
        """Bytes not yet replayed."""
        try:
            return max(0, self.path.stat().st_size - self.offset())
        except OSError:
            return 0

    def _read_from(self, start: int, max_rows: int) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        pos = start
        try:
            fh = open(self.path, "rb")
        except OSError:
            return rows, start
        with fh:
            fh.seek(start)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a torn last line (crash mid-append): not acknowledged, stop before it
                pos += len(raw)
                with contextlib.suppress(ValueError):
                    rows.append(json.loads(raw))
                if len(rows) >= max_rows:
                    break
        return rows, pos

    @contextlib.contextmanager
    def _replay_lock(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld("another process is replaying the journal") from None
            yield
        finally:
            os.close(fd)

    def replay(self, write_batch: Any, batch: int = 500) -> int:
        """Replay pending rows in order with ``write_batch(rows) -> list of (row, reason) refused``.

        Stops (raising) at the first batch Neo4j cannot take; the offset only moves past batches
        that were written. Returns the number of rows replayed."""
        done = 0
        with self._replay_lock():
            while True:
                start = self.offset()
                rows, end = self._read_from(start, batch)
                if not rows:
                    if end != start:
                        self._set_offset(end)
                    return done
                refused = write_batch(rows)
                for row, reason in refused:
                    self._dead_letter(row, reason)
                self._set_offset(end)
                done += len(rows)

    def _dead_letter(self, row: dict[str, Any], reason: str) -> None:
        with open(self.dead_path, "a") as fh:
            fh.write(json.dumps({"row": row, "reason": reason}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def write_rows_sync(store: Any, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Write journalled rows (``InteractionRow.to_param()`` dicts plus ``type``) through a sync
    GraphStore; rows whose item is unknown are returned as refused."""
    ids = sorted({r["item"] for r in rows})
    missing = set(store.read("load/missing_items", ids=ids)[0]["missing"])
    good = [r for r in rows if r["item"] not in missing]
    refused = [(r, f"unknown item id {r['item']!r}") for r in rows if r["item"] in missing]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in good:
        by_type.setdefault(r["type"], []).append({k: v for k, v in r.items() if k != "type"})
    statements: list[Statement] = [
        ("load/interactions", {"rel": t}, {"rows": ps}) for t, ps in sorted(by_type.items())]
    sessions = [{"session": r["session"], "user": r["user"], "first_ts": r["ts"], "last_ts": r["ts"]}
                for r in good if r.get("session")]
    if sessions:
        statements.append(("load/sessions", None, {"rows": sessions}))
    if good:
        statements.append(("load/advance_clock", None, {"ts": max(r["ts"] for r in good), "slack": 0.0}))
    if statements:
        try:
            store.write_many(statements)
        except GraphStoreUnavailable:
            raise
    return refused
