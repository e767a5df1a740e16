"""A user's state for one request: recent history and consumed items.

Each process holds the states it read (bounded: ``user_state_cache_size`` users of at most
:data:`USER_STATE_MAX_BYTES` each, least recently used evicted, re-read after
``user_state_cache_ttl_s``). A request whose user's state is held and known fresh is answered from
memory; a miss reads Neo4j (``repo/user_state``, one round trip) and is kept. At start the
background warm-up reads the states of the ``engine.user_state_preload`` most recently active users
in batches (:meth:`UserStates.preload`), so that their first requests need no round trip either.
Evicting loses nothing: Neo4j is the record.

Known fresh, across processes, through the graph: every interaction write stamps its users with
``User.history_at`` (the server's clock). Every ``engine.state_sync_s`` each process polls the users
stamped since its last poll (``repo/users_changed``) and stops serving the held state of those
whose stamp is newer than the one its state was read with (it stays for degraded answers; the
next request reads again). A held state is served only while the last poll succeeded within
2 × ``state_sync_s`` (:class:`Sync`): with Neo4j away requests read as without held state, and
degraded answers use it. The write this process took joins the held state at once
(:meth:`UserStates.note_recorded`).
"""

from __future__ import annotations

import asyncio
import marshal
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from graphrec.core.errors import GraphStoreError
from graphrec.core.records import InteractionRow
from graphrec.core.recs import rules
from graphrec.core.recs.types import RecRequest
from graphrec.engine.guard import Guard
from graphrec.engine.state import Held, Serving

#: A user state larger than this (marshalled) is not kept (see keep).
USER_STATE_MAX_BYTES = 32_768
#: The stamp of a state read without one (a user written before schema v3): older than any stamp.
NO_STAMP = -1.0

History = list[dict[str, Any]]
#: Consumed item -> the types of its interactions (frozensets as held: see :meth:`UserStates.keep`).
Consumed = dict[str, AbstractSet[str]]


class Sync:
    """The freshness of a process's held states (pure bookkeeping; the poll's I/O is
    :meth:`UserStates.sync`). ``gen`` counts the polls applied; a state whose read began before
    the first one, or while a poll that named its user with a newer stamp was applied, is kept
    but not served."""

    def __init__(self, every_s: float, overlap_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.overlap_s = overlap_s
        self.clock = clock
        self.gen = 0
        self.since: float | None = None  # the next poll's window start, server clock
        self.synced_at = float("-inf")  # (our clock) when the last applied poll was sent
        self.last: dict[str, float] = {}  # the last applied poll's users and stamps

    def fresh(self) -> bool:
        """Held states may be served: polls run and the last one began at most 2 × every_s ago."""
        return self.every_s > 0 and self.gen > 0 and self.clock() - self.synced_at <= 2 * self.every_s

    def servable(self, user_id: str, stamp: float, gen_at_read: int) -> bool:
        """May a state of ``user_id`` read with ``stamp``, its read begun at ``gen_at_read``, be
        served? Not when no poll had been applied when its read began (writes before the first
        poll's window are unknown), nor when the polls applied during the read named the user
        with a newer stamp (more than one poll: not known)."""
        if gen_at_read <= 0:
            return False
        if self.gen == gen_at_read:
            return True
        return self.gen == gen_at_read + 1 and self.last.get(user_id, NO_STAMP) <= stamp

    def applied(self, sent_at: float, server_now: float, changed: dict[str, float]) -> None:
        """A poll sent at ``sent_at`` (our clock) that began at ``server_now`` (the server's) and
        returned ``changed``: the next one asks from ``server_now - overlap_s``."""
        self.gen += 1
        self.synced_at = sent_at
        self.since = server_now - self.overlap_s
        self.last = changed


class UserStates:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard
        self.sync_state = Sync(s.cfg.state_sync_s, s.cfg.state_sync_overlap_s)
        self.polls_failing = False

    async def read(self, user_id: str | None, degraded: list[str]) -> tuple[History, Consumed]:
        """(recent interactions, newest first; consumed item -> its interaction types)."""
        s = self.s
        if not user_id:
            return [], {}
        if self.sync_state.fresh() and (held := s.user_states.get(user_id)) is not None and held[2]:
            s.stats["user_state.held"] = s.stats.get("user_state.held", 0) + 1
            return unpack(held[0])
        gen = self.sync_state.gen
        try:
            rows = await self.guard.neo4j(s.store.read("repo/user_state", plain=True, once=True, user_ids=[user_id], recent=s.cfg.history,
                                                       max_consumed=s.cfg.max_consumed, per_item=self.neighbours_per_item()),
                                          s.cfg.request_budget_ms / 1000, shed=True)
        except (TimeoutError, GraphStoreError):
            degraded.append("neo4j")
            # The state this process read last (and what it recorded since): what the user
            # consumed is still excluded. Without it the answer says so ("consumed_unknown").
            if (known := s.user_states.peek(user_id)) is not None:
                return unpack(known[0])
            degraded.append("consumed_unknown")
            return [], {}
        s.stats["user_state.read"] = s.stats.get("user_state.read", 0) + 1
        if not rows:
            s.user_states.discard(user_id)
            return [], {}
        s.neighbours.fill(rows[0]["neighbours"])
        return self._kept(rows[0], gen)

    def neighbours_per_item(self) -> int:
        """How many neighbours of each recent item a request's state read brings along (0: none).
        When the catalogue has more items than the neighbour lists prefetched at start
        (``engine.prefetch_neighbours``), most requests would miss some of their seeds' lists and
        read them in a second round trip; the state read brings them instead. On a catalogue the
        prefetch covers, the lists are cached already, and with the lists' files mapped they are
        in memory: none."""
        s = self.s
        if s.neighbours.index is not None:
            return 0
        return s.neighbours.per_item if len(s.catalog.items) > s.cfg.prefetch_neighbours else 0

    def _kept(self, row: dict[str, Any], gen: int) -> tuple[History, Consumed]:
        """A ``repo/user_state`` row, kept (servable if no poll applied during its read named the
        user with a newer stamp: :meth:`Sync.servable`); returns (recent, consumed)."""
        consumed: Consumed = {c["item_id"]: frozenset(c["types"]) for c in row["consumed"]}
        recent = list(row["recent"])
        stamp = NO_STAMP if row.get("stamp") is None else float(row["stamp"])
        self.keep(row["user_id"], recent, consumed, stamp, self.sync_state.servable(row["user_id"], stamp, gen))
        return recent, consumed

    async def preload(self, limit: int, batch: int = 250) -> int:
        """Read the states of the ``limit`` most recently active users into memory
        (``repo/active_users``, then ``repo/user_state`` per ``batch``), so that their requests
        are answered without a round trip from the start; returns how many were read (each is kept
        unless it is over :data:`USER_STATE_MAX_BYTES`). Each batch
        is kept as a request's read is (servable only if the polls allow it); it waits for the
        first poll (up to 4 periods; without one nothing held is served, and nothing is read). A
        failure stops the preload, never the engine (the users are then read on their first
        request)."""
        s, st = self.s, self.sync_state
        limit = min(limit, s.cfg.user_state_cache_size)
        if limit <= 0 or st.every_s <= 0:  # without polls held states are never served
            return 0
        t0 = st.clock()
        while st.gen == 0 and st.clock() - t0 < 4 * st.every_s:  # a state read before the first poll is not served
            await asyncio.sleep(min(0.05, st.every_s))
        if st.gen == 0:  # no poll ran (none started, or Neo4j away): states read now would not be served
            return 0
        ids = [r["id"] for r in await s.store.read("repo/active_users", plain=True, limit=limit)]
        kept = 0
        for k in range(0, len(ids), batch):
            gen = self.sync_state.gen
            rows = await s.store.read("repo/user_state", plain=True, user_ids=ids[k:k + batch], recent=s.cfg.history,
                                      max_consumed=s.cfg.max_consumed, per_item=0)
            for row in rows:
                self._kept(row, gen)
            kept += len(rows)
        s.stats["user_state.preloaded"] = kept
        return kept

    def keep(self, user_id: str, recent: History, consumed: Consumed, stamp: float = NO_STAMP,
             servable: bool = False) -> None:
        s = self.s
        if s.cfg.user_state_cache_size <= 0:
            return
        # Each consumed item's types as a frozenset, one object per distinct set: marshal writes
        # it once and reads it back shared, so a request's unpack builds no set per item.
        shared: dict[frozenset[str], frozenset[str]] = {}
        types = {}
        for i, t in consumed.items():
            fs = frozenset(t)
            types[i] = shared.setdefault(fs, fs)
        try:
            packed = marshal.dumps(([dict(h) for h in recent], types))
        except ValueError:  # a property of a type marshal does not know: not kept
            s.user_states.discard(user_id)
            return
        if len(packed) <= USER_STATE_MAX_BYTES:  # the heaviest users are not kept: memory stays bounded
            s.user_states.put(user_id, (packed, stamp, servable))
        else:
            s.user_states.discard(user_id)

    def note_recorded(self, row: InteractionRow) -> None:
        """An interaction this process recorded joins the user's held state (if any) at once: the
        next answer here excludes the item, also a degraded one. The state keeps the stamp it was
        read with, so the next poll (which sees this write's stamp) has it read again from Neo4j."""
        if (known := self.s.user_states.peek(row.user_id)) is None:
            return
        recent, consumed = unpack(known[0])
        consumed[row.item_id] = frozenset(consumed.get(row.item_id, ())) | {row.type.value}
        recent = [{"item_id": row.item_id, "type": row.type.value, "ts": row.ts, "value": row.value}, *recent]
        recent.sort(key=lambda h: -h["ts"])  # newest first, as read, also for an event recorded late
        del recent[self.s.cfg.history:]
        self.keep(row.user_id, recent, consumed, known[1], known[2])

    async def sync(self) -> int:
        """One poll of the users whose history changed since the last (``repo/users_changed``):
        their held states whose stamps are older are no longer served. Returns how many."""
        s, st = self.s, self.sync_state
        sent = st.clock()
        rows = await self.guard.neo4j(s.store.read("repo/users_changed", plain=True, since=st.since,
                                                   limit=s.cfg.state_sync_limit + 1),
                                      max(4 * s.cfg.request_budget_ms / 1000, st.every_s))
        changed = {str(u): float(t) for u, t in rows[0]["changed"]}
        if len(changed) > s.cfg.state_sync_limit:  # too many to name (a bulk load): none is served
            n = stale(s.user_states, ((k, None) for k, _ in s.user_states.items()))
        else:
            n = stale(s.user_states, changed.items())
        st.applied(sent, float(rows[0]["now"]), changed)
        return n

    def excluded(self, req: RecRequest, consumed: Consumed) -> set[str]:
        """The items this request must not recommend: what the user clicked, bought or rated, on
        the surfaces that exclude consumed items."""
        return rules.excluded_items(consumed, req.surface.value in self.s.cfg.exclude_consumed)


def unpack(packed: bytes) -> tuple[History, Consumed]:
    recent, consumed = marshal.loads(packed)
    return list(recent), consumed


def stale(held: Any, changed: Iterable[tuple[Any, float | None]]) -> int:
    """Mark the held states of ``changed`` (user, stamp; None: whatever its stamp) not to be
    served when their stamp is older: they stay, in place, for degraded answers. Returns how many."""
    n = 0
    for user_id, stamp in changed:
        entry: Held | None = held.peek(user_id)
        if entry is not None and entry[2] and (stamp is None or stamp > entry[1]):
            held.replace(user_id, (entry[0], entry[1], False))
            n += 1
    return n
