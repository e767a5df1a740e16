"""Typed reads and upserts of users, items and interactions on the request path (async, through
the Neo4j breaker). Inputs are validated with the loader's row models (one definition of a valid
user and item); outputs are the engine's types (:mod:`graphrec.core.recs.types`)."""

from __future__ import annotations

import marshal
import time
from typing import Any

from graphrec.core.errors import GraphStoreUnavailable, NotFound, QueryError
from graphrec.core.records import ItemRow, UserRow, validate
from graphrec.core.recs.types import Interaction, Item, User
from graphrec.engine.catalog import CatalogItem
from graphrec.engine.guard import Guard
from graphrec.engine.journal import refused_for_good
from graphrec.engine.state import Serving


class Repository:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard

    async def get_items(self, ids: list[str]) -> dict[str, Item]:
        """Items by id (unknown ids are absent), read through the item cache (a page of
        recommendations costs no round trip once its items were shown in the last
        ``item_cache_ttl_s``). While Neo4j is unavailable (or slower than four request budgets,
        at least 1 s): what the in-memory catalogue knows of them (no tags or description), so
        that a degraded list of recommendations still has its titles."""
        s = self.s
        found: dict[str, Item] = {}
        missing = []
        for i in ids:
            if (packed := s.item_cache.get(i)) is not None:
                found[i] = Item._make(marshal.loads(packed))
            else:
                missing.append(i)
        if not missing:
            return found
        try:
            # Bounded: a Neo4j too slow to answer in time is treated as away (a page of answers
            # must not wait for the 30-s query timeout).
            rows = await self.guard.neo4j(s.store.read("repo/get_items", plain=True, once=True, ids=missing),
                                          max(1.0, 4 * s.cfg.request_budget_ms / 1000), shed=True)
        except (GraphStoreUnavailable, TimeoutError, QueryError) as exc:
            if isinstance(exc, QueryError) and refused_for_good(exc):
                raise
            if not s.catalog.loaded:
                raise GraphStoreUnavailable(f"item fields unavailable: {type(exc).__name__}") from exc
            return found | {i: _catalog_item(c) for i in missing if (c := s.catalog.items.get(i)) is not None}
        for r in rows:
            item = found[r["id"]] = Item.from_row(r)
            try:
                s.item_cache.put(item.id, marshal.dumps(tuple(item)))
            except ValueError:  # a property of a type marshal does not know (set by hand): served, not cached
                continue
        return found

    def catalogue_item(self, item_id: str) -> Item | None:
        """The item as the in-memory catalogue holds it, with no round trip: id, title, year,
        availability, categories, interaction count (no tags, no description); None when the
        catalogue does not know it. This process's upserts show at once, other processes' within
        ``engine.catalog_refresh_s``."""
        c = self.s.catalog.items.get(item_id)
        return _catalog_item(c) if c is not None else None

    async def get_item(self, item_id: str) -> Item:
        """One item; unknown: :class:`NotFound`."""
        found = await self.get_items([item_id])
        if item_id not in found:
            raise NotFound("item", item_id)
        return found[item_id]

    async def get_user(self, user_id: str) -> User | None:
        rows = await self.guard.neo4j(self.s.store.read("repo/get_users", ids=[user_id]))
        if not rows:
            return None
        props = {k: v for k, v in rows[0]["props"].items() if k not in ("id", "created_at")}
        return User(rows[0]["id"], rows[0]["created_at"], props)

    async def user_history(self, user_id: str, limit: int = 10) -> list[Interaction]:
        """The user's most recent interactions, newest first (empty for an unknown user)."""
        rows = await self.guard.neo4j(self.s.store.read("repo/user_history", user_id=user_id, limit=int(limit)))
        return [Interaction(r["item_id"], r["type"], r["ts"], r["value"], r["dwell"], r["session"]) for r in rows]

    async def upsert_item(self, data: dict[str, Any]) -> Item:
        s = self.s
        row: ItemRow = validate(ItemRow, data)
        await self.guard.neo4j(s.store.write_many([("load/items", None, {"rows": [row.to_param()], "now": time.time()})]))
        s.item_cache.discard(row.id)
        item = (await self.get_items([row.id]))[row.id]
        # Known to this process at once (recordInteraction, filters), not at the next catalogue refresh.
        s.catalog.items[item.id] = CatalogItem(item.id, item.title, item.year, item.available, item.created_at,
                                               item.categories, item.interactions)
        s.catalog.edits += 1
        return item

    async def upsert_user(self, data: dict[str, Any]) -> User:
        row: UserRow = validate(UserRow, data)
        await self.guard.neo4j(self.s.store.write_many([("load/users", None, {"rows": [row.to_param()], "now": time.time()})]))
        user = await self.get_user(row.id)
        assert user is not None
        return user

    async def model_versions(self, first: int = 10) -> list[Any]:
        from graphrec.core.registry import ModelVersion

        rows = await self.guard.neo4j(self.s.store.read("registry/list", kind="gnn", limit=max(1, min(int(first), 100))))
        return [ModelVersion.from_props(r["m"], self.s.settings.var_dir / "models") for r in rows]


def _catalog_item(c: CatalogItem) -> Item:
    return Item(id=c.id, title=c.title, year=c.year, available=c.available, categories=c.categories,
                created_at=c.created_at, interactions=c.interactions)
