"""The per-request context: the engine, the caller, and DataLoaders built for this request only
(a module-level loader would leak data across users and go stale)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField

from api.auth import Principal
from graphrec.core.recs.types import Item
from graphrec.engine.engine import Engine


@dataclass
class Context:
    engine: Engine
    principal: Principal
    items: DataLoader[str, Item | None]
    request: Any = None
    response: Any = None
    #: per selection of an item in this request's document: does it ask only catalogue fields?
    catalogue_only: dict[int, bool] = field(default_factory=dict)


#: Item fields the engine's in-memory catalogue holds (graphrec.engine.repository.catalogue_item).
CATALOGUE_FIELDS = frozenset({"id", "title", "year", "categories", "available", "popularity", "__typename"})


def load_item(info: Any, item_id: str) -> Item | None | Awaitable[Item | None]:
    """The item behind a recommendation or an interaction. When the query asks only for fields the
    catalogue holds (a list of titles), from memory, at once (no task per item); otherwise (tags,
    description, or fields through fragments) an awaitable from the request's DataLoader: one
    round trip for the page, the item cache in front of it."""
    ctx: Context = info.context
    # Decided once per selection: every item of a list shares its field node (Strawberry's
    # selected_fields converts the node's whole selection each time it is asked).
    node = id(info._raw_info.field_nodes[0])
    only = ctx.catalogue_only.get(node)
    if only is None:
        only = ctx.catalogue_only[node] = all(isinstance(f, SelectedField) and f.name in CATALOGUE_FIELDS
                                              for f in info.selected_fields[0].selections)
    if only and (it := ctx.engine.catalogue_item(item_id)) is not None:
        return it
    return ctx.items.load(item_id)


def make_context(engine: Engine, principal: Principal, request: Any = None, response: Any = None) -> Context:
    async def load_items(ids: list[str]) -> list[Item | None]:
        found = await engine.get_items(list(ids))  # one round trip for the whole page
        return [found.get(i) for i in ids]

    return Context(engine=engine, principal=principal, items=DataLoader(load_fn=load_items, max_batch_size=1000),
                   request=request, response=response)
