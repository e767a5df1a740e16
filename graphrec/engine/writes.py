"""Writes of interactions: at once to Neo4j (idempotent on the key), or, while Neo4j is away or
too slow, to the fsync'd journal, replayed in order when it returns. Both paths validate the same
way and give a key the same meaning (one interaction)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from graphrec.core.errors import GraphStoreUnavailable, KeyConflict, LockHeld, NotFound, QueryError
from graphrec.core.graph.store import Statement
from graphrec.core.records import InteractionRow, InteractionType, validate
from graphrec.core.recs.types import RecordResult
from graphrec.engine.guard import Guard
from graphrec.engine.journal import refused_for_good, write_rows_sync
from graphrec.engine.state import Serving
from graphrec.engine.user_state import UserStates

log = logging.getLogger("graphrec.engine")


def interaction_statements(type: InteractionType, param: dict[str, Any], session_id: str | None, user_id: str,
                           ts: float, clock_slack_s: float = 0.0) -> list[Statement]:
    """One interaction's write transaction: the interaction (``param``: ``InteractionRow.to_param()``),
    its session, the graph's clock (moved only when more than ``clock_slack_s`` behind)."""
    statements: list[Statement] = [("load/interactions", {"rel": type.value}, {"rows": [param]})]
    if session_id is not None:
        statements.append(("load/sessions", None, {"rows": [
            {"session": session_id, "user": user_id, "first_ts": ts, "last_ts": ts}]}))
    statements.append(("load/advance_clock", None, {"ts": ts, "runner_up": None, "slack": clock_slack_s}))
    return statements


def repair_clock(store: Any, max_clock_skew_s: float, now: float | None = None) -> dict[str, Any]:
    """Set the graph's clock back to the newest interaction no later than ``now`` (wall clock by
    default) plus ``max_clock_skew_s`` (``load/repair_clock``: scans every interaction; an
    operator's command, through a sync GraphStore). Returns ``{was, ts, future}``: the clock
    before and after, and how many stored interactions lie past that limit (kept, never deleted)."""
    max_ts = (time.time() if now is None else now) + max_clock_skew_s
    return dict(store.write("load/repair_clock", max_ts=max_ts)[0])


class Writes:
    def __init__(self, s: Serving, guard: Guard, users: UserStates) -> None:
        self.s = s
        self.guard = guard
        self.users = users

    async def record_interaction(self, data: dict[str, Any]) -> RecordResult:
        """Write one interaction at once (idempotent on its key), or, when Neo4j is unavailable or
        too slow, to the fsync'd journal that is replayed when it returns. Both paths validate the
        same way (``loader`` limits: no future times, bounded values) and give a key the same
        meaning: one interaction; reused for another user, item or type it is a
        :class:`KeyConflict`. Unknown item: NotFound (an item upserted through this process is
        known at once; one the catalogue does not know yet is looked up in the graph, with four
        times the budget, before NotFound). While Neo4j cannot be asked, an item this process
        does not know is not refused: the interaction is journalled (``stored: journal``), and
        the replay dead-letters it if the item does not exist then."""
        s = self.s
        row: InteractionRow = validate(InteractionRow, data, s.limits)
        param = row.to_param()
        key = row.idempotency_key
        ident = (row.user_id, row.item_id, row.type.value)
        if s.recent_keys.get(key, ident) != ident:
            raise KeyConflict(key)
        budget = s.cfg.request_budget_ms / 1000
        try:
            _check_refs(await self.guard.neo4j(s.store.read("load/interaction_refs", plain=True, ids=[row.item_id],
                                                            keys=[key]), budget), row, ident)
            statements = interaction_statements(row.type, param, row.session_id, row.user_id, row.ts, s.cfg.clock_slack_s)
            try:
                counters = await self.guard.neo4j(s.store.write_many(statements), budget * 4)
            except QueryError as exc:
                if "constraint" not in str(exc):
                    raise
                # The key constraint: another request stored this key, for another user or item,
                # between the check and this write.
                raise KeyConflict(key) from None
            created = counters[0]["relationships_created"] > 0
            stored = "direct"
        except (TimeoutError, GraphStoreUnavailable, QueryError) as exc:
            if isinstance(exc, QueryError) and refused_for_good(exc):
                raise
            # Neo4j is away (or too slow to trust, or it timed the transaction out): journal it. A
            # write that timed out may still land; the replay is idempotent on the key, so it will
            # not double-count.
            if s.catalog.loaded and row.item_id not in s.catalog.items:
                # Not in this process's catalogue (it may be newer than its last refresh, e.g.
                # upserted through another worker): ask the graph once more, with more time. An
                # item the graph says does not exist is NotFound; when the graph cannot say, the
                # interaction is journalled like any other, and the replay dead-letters it, with
                # its reason, if the item does not exist then.
                with contextlib.suppress(TimeoutError, GraphStoreUnavailable, QueryError):
                    _check_refs(await self.guard.neo4j(s.store.read(
                        "load/interaction_refs", plain=True, ids=[row.item_id], keys=[key]), budget * 4), row, ident)
            created = await asyncio.to_thread(s.journal.append_checked, {**param, "type": row.type.value})
            if created:
                s.stats["journalled"] = s.stats.get("journalled", 0) + 1
            stored = "journal"
        self._remember_key(key, ident)
        self.users.note_recorded(row)
        return RecordResult(key=key, created=created, stored=stored)

    def _remember_key(self, key: str, ident: tuple[str, str, str], most: int = 100_000) -> None:
        keys = self.s.recent_keys
        keys.pop(key, None)
        keys[key] = ident
        if len(keys) > most:
            del keys[next(iter(keys))]

    async def replay_journal(self) -> int:
        """Write journalled interactions to Neo4j (in order); returns how many were replayed
        (dead letters included). Only "Neo4j unavailable" counts against its breaker; a replay
        that could not run (another process holds the replay lock) gives back the probe."""
        s = self.s
        pending = s.journal.pending()
        self._sample_journal(pending)
        if pending == 0 or not s.neo4j_breaker.allow():
            return 0
        from graphrec.core.graph.store import GraphStore

        def work() -> int:
            with GraphStore.from_settings(s.settings) as store:
                return s.journal.replay(lambda rows: write_rows_sync(store, rows, s.limits),
                                        max_attempts=s.cfg.journal_max_attempts)

        dead_before = s.journal.dead_lettered()
        try:
            n = await asyncio.to_thread(work)
        except LockHeld:
            s.neo4j_breaker.release()
            return 0
        except GraphStoreUnavailable as exc:
            s.neo4j_breaker.failure(exc)
            return 0
        except Exception:
            s.neo4j_breaker.release()  # not Neo4j being away: never opens the breaker
            failing = s.journal.failing()
            log.exception("journal replay failed%s", "" if failing is None else
                          f" (the entry at byte {failing['position']}: failed {failing['attempts']} of "
                          f"{s.cfg.journal_max_attempts} times before it is dead-lettered)")
            return 0
        s.neo4j_breaker.success()
        if (dead := s.journal.dead_lettered() - dead_before) > 0:
            log.warning("journal replay: %d entries dead-lettered (see %s)", dead, s.journal.dead_path)
        if n:
            s.clear_results()
        return n

    def _sample_journal(self, pending: int, window_s: float = 60.0) -> None:
        s = self.s
        samples = s.journal_samples
        now = time.monotonic()
        samples.append((now, pending))
        while len(samples) > 2 and now - samples[1][0] >= window_s:
            samples.pop(0)
        # Waiting with nothing in its way (the breaker closed) and the offset where it was: the
        # clock of "stuck" keeps running (health.readiness).
        if pending == 0 or s.neo4j_breaker.state != "closed":
            s.journal_waiting = None
        else:
            offset = s.journal.offset()
            if s.journal_waiting is None or s.journal_waiting[1] != offset:
                s.journal_waiting = (now, offset)


def _check_refs(rows: list[dict[str, Any]], row: InteractionRow, ident: tuple[str, str, str]) -> None:
    """``load/interaction_refs`` of one interaction: NotFound for an unknown item, KeyConflict
    for a key stored for another interaction."""
    refs = rows[0]
    if refs["missing"]:
        raise NotFound("item", row.item_id)
    if any((st["user"], st["item"], st["type"]) != ident for st in refs["stored"]):
        raise KeyConflict(row.idempotency_key)
