"""The interaction journal: no accepted interaction is lost while Neo4j is away.

When a write to Neo4j fails, the engine appends the validated interaction to
``<var_dir>/journal/interactions.jsonl`` (one JSON object per line, ``fsync``'d before the
request is answered) and says ``stored: JOURNAL``. A replayer writes journalled interactions to
Neo4j in order, batch by batch, and records how far it got in ``replayed.offset`` (also
fsync'd, replaced atomically). Interactions carry their idempotency key, so a batch replayed
twice (a crash between writing and recording the offset) changes nothing. Several API
processes share one journal: appends hold an exclusive ``flock``; one replayer at a time holds
``replay.lock``.

Before acknowledging, :meth:`Journal.append_checked` applies the direct path's key semantics to
what is pending: a key already journalled for another user, item or type is refused
(:class:`KeyConflict`), the same interaction journalled again is not appended twice. On replay,
every row is validated again and checked against the graph (``load/interaction_refs``); a row
that can never be written (invalid, an unknown item, a key stored for another interaction, a line
that is not JSON, or a row Neo4j refuses on its own) goes to ``dead-letter.jsonl`` (one JSON object
per line: ``row``, ``reason``, ``at``) and the rows after it go on. "Neo4j unavailable" (or busy:
a transaction timed out) stops a replay, which resumes from the same place when it has passed. A
row that keeps failing for any other reason (an error nobody recognised as a refusal for good) is
dead-lettered with that error after ``engine.journal_max_attempts`` replays.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphrec.core.errors import (
    GraphStoreUnavailable,
    KeyConflict,
    LockHeld,
    QueryError,
    ValidationError,
)
from graphrec.core.graph.store import Statement
from graphrec.core.records import InteractionRow, RowLimits, newest_two, validate

#: Pending keys remembered per process for append_checked (the oldest are forgotten beyond this;
#: a conflict among those is still caught by the replay, which dead-letters it).
MAX_PENDING_KEYS = 200_000


class Journal:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "interactions.jsonl"
        self.offset_path = self.dir / "replayed.offset"
        self.dead_path = self.dir / "dead-letter.jsonl"
        self.lock_path = self.dir / "replay.lock"
        self.failing_path = self.dir / "replay.failing"
        # Keys journalled and not yet replayed, as far as this process has read the file:
        # key -> (user, item, type); _indexed is the byte position read up to.
        self._pending_keys: dict[str, tuple[str, str, str]] = {}
        self._indexed = 0
        self._dead_count: tuple[int, int] = (-1, 0)  # (file size, lines) of the dead-letter file

    def append_checked(self, row: dict[str, Any]) -> bool:
        """Durably append one interaction unless its key is already pending: False when the same
        interaction (key, user, item, type) is pending already, :class:`KeyConflict` when the key
        is pending for another one. A torn last line left by a crash is closed first, so this
        append is never glued to it."""
        ident = (row["user"], row["item"], row["type"])
        line = (json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            self._index_pending(size)
            had = self._pending_keys.get(row["key"])
            if had is not None:
                if had != ident:
                    raise KeyConflict(row["key"])
                return False
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")  # close a torn line (replayed as a dead letter, never acknowledged)
            os.write(fd, line)
            os.fsync(fd)
            self._indexed = os.fstat(fd).st_size
            self._remember(row["key"], ident)
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _remember(self, key: str, ident: tuple[str, str, str]) -> None:
        self._pending_keys[key] = ident
        while len(self._pending_keys) > MAX_PENDING_KEYS:
            del self._pending_keys[next(iter(self._pending_keys))]

    def _index_pending(self, size: int) -> None:
        """Read what other processes appended since this one last looked (under the append lock);
        forget everything once the replay has passed it (those keys are in the graph, where the
        direct path checks them)."""
        done = self.offset()
        if done >= self._indexed:
            self._pending_keys.clear()
            self._indexed = done
        if size <= self._indexed:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._indexed)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                self._indexed += len(raw)
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    r = json.loads(raw)
                    self._remember(r["key"], (r["user"], r["item"], r["type"]))

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

    def dead_lettered(self) -> int:
        """Rows in the dead-letter file (all processes'); counted again only when it grew."""
        try:
            size = self.dead_path.stat().st_size
        except OSError:
            return 0
        if size != self._dead_count[0]:
            with open(self.dead_path, "rb") as fh:
                self._dead_count = (size, sum(1 for _ in fh))
        return self._dead_count[1]

    def _read_from(self, start: int, max_rows: int) -> tuple[list[dict[str, Any]], list[str], int]:
        """Up to ``max_rows`` complete lines from ``start``: the rows, the lines that are not a
        JSON object (as text), and the position after them."""
        rows: list[dict[str, Any]] = []
        bad: list[str] = []
        pos = start
        try:
            fh = open(self.path, "rb")
        except OSError:
            return rows, bad, start
        with fh:
            fh.seek(start)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a torn last line (crash mid-append): not acknowledged, stop before it
                pos += len(raw)
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except ValueError:
                    row = None
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    bad.append(raw.decode("utf-8", "replace").rstrip("\n")[:4096])
                if len(rows) + len(bad) >= max_rows:
                    break
        return rows, bad, pos

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

    def replay(self, write_batch: Any, batch: int = 500, max_attempts: int = 20) -> int:
        """Replay pending rows in order with ``write_batch(rows) -> list of (row, reason) refused``;
        refused rows and lines that are not JSON objects go to the dead-letter file.

        Stops (raising) at the first batch that fails; the offset only moves past batches that
        were written. A failure that is Neo4j being away or busy (:func:`waits_for_neo4j`) leaves
        the row pending for as long as it lasts. Any other failure is the row's own: the failed
        batch is tried again one row at a time, and a row that fails that way in
        ``max_attempts`` replays (counted in ``replay.failing``, shared by every process and kept
        across restarts) is dead-lettered with the error, so that it cannot block the rows
        after it for good. Returns the number of lines replayed or dead-lettered."""
        done = 0
        single_until = -1  # rows up to this position are written one at a time (a batch failed)
        with self._replay_lock():
            while True:
                start = self.offset()
                rows, bad, end = self._read_from(start, 1 if start < single_until else batch)
                if not rows and not bad:
                    if end != start:
                        self._set_offset(end)
                    return done
                try:
                    refused = write_batch(rows) if rows else []
                except Exception as exc:
                    if waits_for_neo4j(exc):
                        raise
                    if len(rows) + len(bad) > 1:
                        single_until = end  # find the row that fails
                        continue
                    attempts = self._count_failure(start, exc)
                    if attempts < max_attempts:
                        raise
                    refused = [(rows[0], f"failed in {attempts} replays: {type(exc).__name__}: {exc}")]
                self._dead_letter([*((row, reason) for row, reason in refused),
                                   *((text, "malformed journal line (not a JSON object)") for text in bad)])
                self._set_offset(end)
                done += len(rows) + len(bad)

    def _count_failure(self, position: int, exc: BaseException) -> int:
        """One more failed replay of the row at ``position`` (under the replay lock): how many so
        far. The count restarts when another row fails (the one before was written since)."""
        try:
            was = json.loads(self.failing_path.read_text())
            attempts = int(was["attempts"]) if was.get("position") == position else 0
        except (OSError, ValueError, KeyError, TypeError):
            attempts = 0
        attempts += 1
        tmp = self.failing_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"position": position, "attempts": attempts, "error": str(exc)[:4096]}))
        os.replace(tmp, self.failing_path)
        return attempts

    def failing(self) -> dict[str, Any] | None:
        """The pending row that failed its last replays for a reason of its own, if it is still
        pending: ``{position, attempts, error}``."""
        try:
            was = json.loads(self.failing_path.read_text())
        except (OSError, ValueError):
            return None
        return was if isinstance(was, dict) and was.get("position", -1) >= self.offset() else None

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter file's entries in order (``row``, ``reason``, ``at``); a line that is
        not a JSON object (a torn write) comes back as ``{"row": <its text>, "reason":
        "unreadable dead-letter line"}``."""
        out: list[dict[str, Any]] = []
        try:
            fh = open(self.dead_path, "rb")
        except FileNotFoundError:
            return out
        with fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = None
                if not isinstance(entry, dict) or "row" not in entry:
                    entry = {"row": raw.decode("utf-8", "replace").rstrip("\n"), "reason": "unreadable dead-letter line"}
                out.append(entry)
        return out

    def requeue(self, matches: Any = None) -> tuple[int, Path | None]:
        """Put dead-lettered rows back in the journal, to be replayed again (the cause fixed: the
        item created, a constraint dropped). ``matches(entry) -> bool`` chooses them (None: all);
        entries whose row is not an interaction object (a malformed journal line) stay.

        Nothing is lost and nothing is written twice: under the replay lock (no replay
        dead-letters meanwhile), the chosen rows are appended to the journal (fsync'd), the
        entries left are written to a new dead-letter file, and the old file is kept beside it as
        ``dead-letter.requeued-<time>.jsonl``. A crash in between at worst requeues a row twice;
        its idempotency key makes the second write change nothing. Returns (rows requeued, the
        kept old file or None)."""
        with self._replay_lock():
            entries = self.dead_letters()
            picked = [isinstance(e.get("row"), dict) and (matches is None or matches(e)) for e in entries]
            chosen = [e for e, p in zip(entries, picked, strict=True) if p]
            if not chosen:
                return 0, None
            keep = [e for e, p in zip(entries, picked, strict=True) if not p]
            for e in chosen:
                self.append(e["row"])
            tmp = self.dead_path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                for e in keep:
                    fh.write(json.dumps(e, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            kept = self.dir / f"dead-letter.requeued-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
            os.replace(self.dead_path, kept)
            os.replace(tmp, self.dead_path)
            self._dead_count = (-1, 0)
            return len(chosen), kept

    def _dead_letter(self, entries: list[tuple[Any, str]]) -> None:
        if not entries:
            return
        now = time.time()
        with open(self.dead_path, "a") as fh:
            for row, reason in entries:
                fh.write(json.dumps({"row": row, "reason": reason, "at": now}, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _checked(r: dict[str, Any], limits: RowLimits | None) -> tuple[dict[str, Any] | None, str]:
    """A journalled row validated again as the direct path validates it: (the row as written, "")
    or (None, the reason it can never be written)."""
    try:
        row: InteractionRow = validate(InteractionRow, {
            "user_id": r.get("user"), "item_id": r.get("item"), "type": r.get("type"), "ts": r.get("ts"),
            "value": r.get("value"), "dwell_seconds": r.get("dwell"), "session_id": r.get("session"),
            "key": r.get("key")}, limits)
    except ValidationError as exc:
        return None, f"invalid interaction: {exc}"
    if not r.get("key"):
        return None, "invalid interaction: no idempotency key"
    return {**row.to_param(), "type": row.type.value}, ""


def _statements(rows: list[dict[str, Any]]) -> list[Statement]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append({k: v for k, v in r.items() if k != "type"})
    statements: list[Statement] = [
        ("load/interactions", {"rel": t}, {"rows": ps}) for t, ps in sorted(by_type.items())]
    sessions = [{"session": r["session"], "user": r["user"], "first_ts": r["ts"], "last_ts": r["ts"]}
                for r in rows if r.get("session")]
    if sessions:
        statements.append(("load/sessions", None, {"rows": sessions}))
    newest, runner_up = newest_two(r["ts"] for r in rows)
    statements.append(("load/advance_clock", None, {"ts": newest, "runner_up": runner_up, "slack": 0.0}))
    return statements


def write_rows_sync(store: Any, rows: list[dict[str, Any]], limits: RowLimits | None = None
                    ) -> list[tuple[dict[str, Any], str]]:
    """Write journalled rows (``InteractionRow.to_param()`` dicts plus ``type``) through a sync
    GraphStore, in one transaction; returns the rows refused for good, with the reason: invalid
    now (``limits``: the loader settings), an unknown item, a key stored (or earlier in the batch)
    for another interaction, or — when the batch's transaction is refused — a row Neo4j refuses
    in a transaction of its own. "Neo4j unavailable" raises: nothing is refused for it."""
    refused: list[tuple[dict[str, Any], str]] = []
    good: list[dict[str, Any]] = []
    for r in rows:
        clean, reason = _checked(r, limits)
        if clean is None:
            refused.append((r, reason))
        else:
            good.append(clean)
    if not good:
        return refused
    refs = store.read("load/interaction_refs", ids=sorted({r["item"] for r in good}),
                      keys=sorted({r["key"] for r in good}))[0]
    missing = set(refs["missing"])
    names: dict[str, tuple[str, str, str]] = {s["key"]: (s["user"], s["item"], s["type"]) for s in refs["stored"]}
    ok: list[dict[str, Any]] = []
    for r in good:
        ident = (r["user"], r["item"], r["type"])
        if r["item"] in missing:
            refused.append((r, f"unknown item id {r['item']!r}"))
        elif names.setdefault(r["key"], ident) != ident:
            refused.append((r, "idempotency key already names a different interaction (another user, item or type)"))
        else:
            ok.append(r)
    if not ok:
        return refused
    try:
        store.write_many(_statements(ok))
    except QueryError:
        # Something in the batch is refused (a key stored since the check, by a concurrent
        # writer): one transaction per row, so that only the refused rows are set aside. A row
        # refused for a passing reason (a transaction timeout on a busy server) is not a poison
        # row: that raises, and the replay tries again later from the same place.
        for r in ok:
            try:
                store.write_many(_statements([r]))
            except QueryError as exc:
                if not refused_for_good(exc):
                    raise
                refused.append((r, f"refused by Neo4j: {exc}"))
    return refused


def waits_for_neo4j(exc: BaseException) -> bool:
    """A replay failure that is Neo4j's state, not the row's: unavailable (down, unreachable, a
    transient error), or the transaction timed out or was terminated (a busy server). The row is
    tried again as long as it lasts, never dead-lettered for it."""
    if isinstance(exc, GraphStoreUnavailable | TimeoutError | LockHeld):
        return True
    return isinstance(exc, QueryError) and "Neo.ClientError.Transaction." in str(exc)


def refused_for_good(exc: QueryError) -> bool:
    """A refusal that writing the same row again cannot change: a constraint, or the statement
    itself (types, arguments). Timeouts and terminated transactions are not."""
    text = str(exc)
    return "constraint violated" in text or "Neo.ClientError.Statement." in text
