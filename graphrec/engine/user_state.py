"""A user's state for one request: recent history and consumed items, one Neo4j round trip. The
last state read per user is kept (bounded), with what this process recorded since, so a degraded
answer still excludes what the user consumed."""

from __future__ import annotations

import marshal
from typing import Any

from graphrec.core.errors import GraphStoreError
from graphrec.core.records import InteractionRow
from graphrec.core.recs import rules
from graphrec.core.recs.types import RecRequest
from graphrec.engine.guard import Guard
from graphrec.engine.state import Serving

#: A user state larger than this (marshalled) is not kept for degraded answers (see keep).
USER_STATE_MAX_BYTES = 32_768

History = list[dict[str, Any]]
Consumed = dict[str, set[str]]


class UserStates:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard

    async def read(self, user_id: str | None, degraded: list[str]) -> tuple[History, Consumed]:
        """(recent interactions, newest first; consumed item -> its interaction types)."""
        s = self.s
        if not user_id:
            return [], {}
        try:
            rows = await self.guard.neo4j(s.store.read("repo/user_state", plain=True, user_id=user_id, recent=s.cfg.history,
                                                       max_consumed=s.cfg.max_consumed), s.cfg.request_budget_ms / 1000)
        except (TimeoutError, GraphStoreError):
            degraded.append("neo4j")
            # The state this process read last (and what it recorded since): what the user
            # consumed is still excluded. Without it the answer says so ("consumed_unknown").
            if (known := s.user_states.get(user_id)) is not None:
                recent, consumed = marshal.loads(known)
                return list(recent), {i: set(t) for i, t in consumed.items()}
            degraded.append("consumed_unknown")
            return [], {}
        if not rows:
            s.user_states.discard(user_id)
            return [], {}
        consumed = {c["item_id"]: set(c["types"]) for c in rows[0]["consumed"]}
        recent = list(rows[0]["recent"])
        self.keep(user_id, recent, consumed)
        return recent, consumed

    def keep(self, user_id: str, recent: History, consumed: Consumed) -> None:
        s = self.s
        if s.cfg.user_state_cache_size <= 0:
            return
        try:
            packed = marshal.dumps(([dict(h) for h in recent], {i: sorted(t) for i, t in consumed.items()}))
        except ValueError:  # a property of a type marshal does not know: not kept
            return
        if len(packed) <= USER_STATE_MAX_BYTES:  # the heaviest users are not kept: memory stays bounded
            s.user_states.put(user_id, packed)
        else:
            s.user_states.discard(user_id)

    def note_recorded(self, row: InteractionRow) -> None:
        """An interaction this process recorded joins the user's kept state (if any), so that a
        degraded answer right after it excludes the item too."""
        if (known := self.s.user_states.peek(row.user_id)) is None:
            return
        recent, consumed = marshal.loads(known)
        consumed.setdefault(row.item_id, [])
        if row.type.value not in consumed[row.item_id]:
            consumed[row.item_id].append(row.type.value)
        recent = [{"item_id": row.item_id, "type": row.type.value, "ts": row.ts, "value": row.value}, *recent][: self.s.cfg.history]
        self.keep(row.user_id, recent, {i: set(t) for i, t in consumed.items()})

    def excluded(self, req: RecRequest, consumed: Consumed) -> set[str]:
        """The items this request must not recommend: what the user clicked, bought or rated, on
        the surfaces that exclude consumed items."""
        return rules.excluded_items(consumed, req.surface.value in self.s.cfg.exclude_consumed)
