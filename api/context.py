"""The per-request context: the engine, the caller, and DataLoaders built for this request only
(a module-level loader would leak data across users and go stale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.dataloader import DataLoader

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


def make_context(engine: Engine, principal: Principal, request: Any = None, response: Any = None) -> Context:
    async def load_items(ids: list[str]) -> list[Item | None]:
        found = await engine.get_items(list(ids))  # one round trip for the whole page
        return [found.get(i) for i in ids]

    return Context(engine=engine, principal=principal, items=DataLoader(load_fn=load_items, max_batch_size=1000),
                   request=request, response=response)
