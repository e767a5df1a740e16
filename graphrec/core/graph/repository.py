"""The typed repository over the graph of record: what the rest of graphrec calls.

Inputs are validated with the loader's row models (one definition of a valid user, item and
interaction); outputs are small frozen dataclasses (and :class:`Item`, a named tuple). Every call
goes through :class:`GraphStore`, which names the database and the routing and turns driver
errors into graphrec's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from graphrec.core.errors import KeyConflict, NotFound
from graphrec.core.graph.store import GraphStore, Statement
from graphrec.core.records import InteractionRow, InteractionType, ItemRow, UserRow, validate


def interaction_statements(type: InteractionType, param: dict[str, Any], session_id: str | None, user_id: str,
                           ts: float, clock_slack_s: float = 0.0) -> list[Statement]:
    """One interaction's write transaction: the interaction (``param``: ``InteractionRow.to_param()``),
    its session, the graph's clock (moved only when more than ``clock_slack_s`` behind)."""
    statements: list[Statement] = [("load/interactions", {"rel": type.value}, {"rows": [param]})]
    if session_id is not None:
        statements.append(("load/sessions", None, {"rows": [
            {"session": session_id, "user": user_id, "first_ts": ts, "last_ts": ts}]}))
    statements.append(("load/advance_clock", None, {"ts": ts, "slack": clock_slack_s}))
    return statements


def repair_clock(store: Any, max_clock_skew_s: float, now: float | None = None) -> dict[str, Any]:
    """Set the graph's clock back to the newest interaction no later than ``now`` (wall clock by
    default) plus ``max_clock_skew_s`` (``load/repair_clock``: scans every interaction). Returns
    ``{was, ts, future}``: the clock before and after, and how many stored interactions lie
    past that limit (kept, never deleted)."""
    max_ts = (time.time() if now is None else now) + max_clock_skew_s
    return dict(store.write("load/repair_clock", max_ts=max_ts)[0])


#: Default weight of each interaction type in collaborative scores (SKIPPED counts against).
DEFAULT_TYPE_WEIGHTS: dict[str, float] = {"PURCHASED": 3.0, "RATED": 1.0, "CLICKED": 0.7, "VIEWED": 0.3, "SKIPPED": 0.0}


class Item(NamedTuple):
    """An item as the API shows it: a named tuple of plain values, so that the engine's item
    cache can keep it as ``marshal.dumps(tuple(item))`` and rebuild it with ``Item._make`` (see
    ``graphrec.engine.cache``: cached dataclass instances cost every full garbage collection)."""

    id: str
    title: str | None = None
    year: int | None = None
    available: bool = True
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    created_at: float | None = None
    description: str | None = None
    interactions: int = 0

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Item:
        return cls(id=r["id"], title=r.get("title"), year=r.get("year"), available=bool(r.get("available", True)),
                   categories=tuple(r.get("categories") or ()), tags=tuple(r.get("tags") or ()),
                   created_at=r.get("created_at"), description=r.get("description"),
                   interactions=int(r.get("interactions") or 0))


@dataclass(frozen=True)
class User:
    id: str
    created_at: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Interaction:
    item_id: str
    type: str
    ts: float
    value: float | None = None
    dwell: float | None = None
    session: str | None = None


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one interaction."""

    key: str
    created: bool  # False: the key was already stored (a retry), nothing changed


@dataclass(frozen=True)
class Neighbour:
    item_id: str
    score: float
    support: int


class Repository:
    """Typed reads and writes of users, items and interactions."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    # ---- writes ----------------------------------------------------------------------------
    def upsert_user(self, data: dict[str, Any]) -> User:
        row: UserRow = validate(UserRow, data)
        self.store.write_many([("load/users", None, {"rows": [row.to_param()], "now": time.time()})])
        return self.get_user(row.id)  # type: ignore[return-value]

    def upsert_item(self, data: dict[str, Any]) -> Item:
        row: ItemRow = validate(ItemRow, data)
        self.store.write_many([("load/items", None, {"rows": [row.to_param()], "now": time.time()})])
        return self.get_item(row.id)

    def record_interaction(self, data: dict[str, Any]) -> Recorded:
        """Write one interaction at once (idempotent on its key). Unknown item: :class:`NotFound`;
        a key stored for another user, item or type: :class:`KeyConflict`."""
        row: InteractionRow = validate(InteractionRow, data)
        refs = self.store.read("load/interaction_refs", ids=[row.item_id], keys=[row.idempotency_key])[0]
        if refs["missing"]:
            raise NotFound("item", row.item_id)
        if any((r["user"], r["item"], r["type"]) != (row.user_id, row.item_id, row.type.value) for r in refs["stored"]):
            raise KeyConflict(row.idempotency_key)
        counters = self.store.write_many(
            interaction_statements(row.type, row.to_param(), row.session_id, row.user_id, row.ts))
        return Recorded(key=row.idempotency_key, created=counters[0]["relationships_created"] > 0)

    # ---- reads -----------------------------------------------------------------------------
    def get_items(self, ids: list[str]) -> dict[str, Item]:
        """Items by id (unknown ids are absent), one round trip."""
        return {r["id"]: Item.from_row(r) for r in self.store.read("repo/get_items", ids=list(ids))}

    def get_item(self, item_id: str) -> Item:
        found = self.get_items([item_id])
        if item_id not in found:
            raise NotFound("item", item_id)
        return found[item_id]

    def get_user(self, user_id: str) -> User | None:
        rows = self.store.read("repo/get_users", ids=[user_id])
        if not rows:
            return None
        props = {k: v for k, v in rows[0]["props"].items() if k not in ("id", "created_at")}
        return User(id=rows[0]["id"], created_at=rows[0]["created_at"], attributes=props)

    def user_history(self, user_id: str, limit: int = 50) -> list[Interaction]:
        """The user's most recent interactions, newest first (empty for an unknown user)."""
        rows = self.store.read("repo/user_history", user_id=user_id, limit=int(limit))
        return [Interaction(item_id=r["item_id"], type=r["type"], ts=r["ts"], value=r["value"],
                            dwell=r["dwell"], session=r["session"]) for r in rows]

    def item_neighbours(self, item_id: str, limit: int = 20, fanout: int = 200, half_life_days: float = 90.0,
                        now: float | None = None, type_weights: dict[str, float] | None = None) -> list[Neighbour]:
        """Co-interaction neighbours of an item, never the item itself. Unknown item: :class:`NotFound`."""
        if not self.store.read("repo/item_exists", item_id=item_id)[0]["found"]:
            raise NotFound("item", item_id)
        if now is None:
            now = self.store.read("recs/latest_ts")[0]["ts"] or time.time()
        rows = self.store.read("repo/item_neighbours", item_id=item_id, type_weights=type_weights or DEFAULT_TYPE_WEIGHTS,
                               now=now, half_life_s=half_life_days * 86400.0, fanout=fanout, limit=limit)
        return [Neighbour(r["item_id"], r["score"], r["support"]) for r in rows]

    def users_history(self, user_ids: list[str], limit: int = 50) -> dict[str, list[Interaction]]:
        """Recent interactions of many users in one round trip (unknown users are absent)."""
        rows = self.store.read("repo/users_history", user_ids=list(user_ids), limit=int(limit))
        return {r["user_id"]: [Interaction(item_id=h["item_id"], type=h["type"], ts=h["ts"], value=h["value"])
                               for h in r["history"]] for r in rows}
