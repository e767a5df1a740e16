"""The per-request context: the engine, the caller, and DataLoaders built for this request only
(a module-level loader would leak data across users and go stale)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

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


#: Item fields the engine's in-memory catalogue holds (graphrec.engine.repository.catalogue_item).
CATALOGUE_FIELDS = frozenset({"id", "title", "year", "categories", "available", "popularity", "__typename"})


class Needs(Enum):
    """What a query asks of the items behind a list (recommendations, interactions)."""

    NOTHING = 0  # no ``item`` selected
    CATALOGUE = 1  # only fields the in-memory catalogue holds
    FULL = 2  # more (tags, description): read through the request's DataLoader


def _children(selections: Sequence[Selection], name: str) -> list[SelectedField]:
    """The fields called ``name`` among ``selections``, fragments (named or inline) flattened."""
    out: list[SelectedField] = []
    for f in selections:
        if isinstance(f, SelectedField):
            if f.name == name:
                out.append(f)
        else:  # FragmentSpread, InlineFragment: the types on these paths are concrete
            out.extend(_children(f.selections, name))
    return out


def _leaves(selections: Sequence[Selection]) -> set[str]:
    names: set[str] = set()
    for f in selections:
        if isinstance(f, SelectedField):
            names.add(f.name)
        else:
            names |= _leaves(f.selections)
    return names


def item_needs(info: Any, path: Sequence[str]) -> Needs:
    """What the selection of the field being resolved asks of the items at ``path`` below it
    (``("items", "item")`` for a RecommendationList). Decided once per list, from the query's own
    selection (fragments flattened; a field under ``@skip``/``@include`` counts as selected)."""
    level: list[SelectedField] = list(info.selected_fields)
    for name in path:
        level = [c for f in level for c in _children(f.selections, name)]
        if not level:
            return Needs.NOTHING
    asked = set().union(*(_leaves(f.selections) for f in level))
    return Needs.CATALOGUE if asked <= CATALOGUE_FIELDS else Needs.FULL


async def hydrate(info: Any, ids: Sequence[str], needs: Needs) -> list[Item | None]:
    """The items behind ``ids`` as ``needs`` says: None for each when no item is asked; from the
    catalogue when it holds what is asked (the rest, items it does not hold, in one DataLoader
    batch); otherwise all through the DataLoader (one round trip per page, its item cache in
    front). None also for an item removed since it was ranked."""
    if needs is Needs.NOTHING:
        return [None] * len(ids)
    ctx: Context = info.context
    if needs is Needs.FULL:
        return list(await ctx.items.load_many(list(ids)))
    found = [ctx.engine.catalogue_item(i) for i in ids]
    missing = [k for k, it in enumerate(found) if it is None]
    if missing:
        for k, it in zip(missing, await ctx.items.load_many([ids[k] for k in missing]), strict=True):
            found[k] = it
    return found


def make_context(engine: Engine, principal: Principal, request: Any = None, response: Any = None) -> Context:
    async def load_items(ids: list[str]) -> list[Item | None]:
        found = await engine.get_items(list(ids))  # one round trip for the whole page
        return [found.get(i) for i in ids]

    return Context(engine=engine, principal=principal, items=DataLoader(load_fn=load_items, max_batch_size=1000),
                   request=request, response=response)
