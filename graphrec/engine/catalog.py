"""The engine's in-memory view of the catalogue, refreshed periodically from the graph.

It holds what business rules need for every candidate without a round trip (categories,
availability, year, age), the popular lists (overall and per category) and the fresh list. It is
also the last line of degraded mode: when Neo4j is down, the popular list here still answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CatalogItem:
    id: str
    title: str | None
    year: int | None
    available: bool
    created_at: float | None
    categories: tuple[str, ...]
    interactions: int


@dataclass
class Catalog:
    items: dict[str, CatalogItem] = field(default_factory=dict)
    popular: list[tuple[str, float]] = field(default_factory=list)
    popular_by_category: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    fresh: list[tuple[str, float]] = field(default_factory=list)  # (id, created_at), newest first
    now: float = 0.0  # the data's clock (newest interaction) at refresh
    refreshed_at: float = 0.0

    @property
    def loaded(self) -> bool:
        return self.refreshed_at > 0


async def load_catalog(store: Any, type_weights: dict[str, float], window_s: float, half_life_s: float,
                       page: int = 10_000, per_category: int = 200, top: int = 1000) -> Catalog:
    """Read the whole catalogue page by page, then the popular lists (2 + pages round trips)."""
    items: dict[str, CatalogItem] = {}
    after = ""
    while True:
        rows = await store.read("recs/catalog", after=after, limit=page)
        if not rows:
            break
        for r in rows:
            items[r["id"]] = CatalogItem(r["id"], r["title"], r["year"], bool(r["available"]), r["created_at"],
                                         tuple(r["categories"]), int(r["interactions"]))
        after = rows[-1]["id"]
    clock = (await store.read("recs/latest_ts"))[0]["ts"]
    now = float(clock) if clock else time.time()
    pop = await store.read("recs/popular", since=now - window_s, now=now, half_life_s=half_life_s,
                           type_weights=type_weights, category=None, limit=top)
    popular = [(r["item_id"], float(r["score"])) for r in pop]
    if len(popular) < top:  # a quiet window: fall back to all-time interaction counts
        seen = {i for i, _ in popular}
        rest = sorted((it for it in items.values() if it.id not in seen and it.available),
                      key=lambda it: (-it.interactions, it.id))
        floor = min((s for _, s in popular), default=1.0)
        popular += [(it.id, floor * 0.5 * it.interactions / max(1, rest[0].interactions)) for it in rest[: top - len(popular)]]
    by_cat_rows = await store.read("recs/popular_by_category", since=now - window_s, now=now, half_life_s=half_life_s,
                                   type_weights=type_weights, per_category=per_category)
    by_cat = {r["category"]: [(x["item_id"], float(x["score"])) for x in r["items"]] for r in by_cat_rows}
    # Categories with no recent interactions still get their all-time most popular items.
    for it in sorted(items.values(), key=lambda it: (-it.interactions, it.id)):
        for c in it.categories:
            lst = by_cat.setdefault(c, [])
            if len(lst) < per_category and it.available and all(i != it.id for i, _ in lst):
                lst.append((it.id, 1e-6 * it.interactions))
    fresh = sorted(((it.id, it.created_at) for it in items.values() if it.created_at is not None and it.available),
                   key=lambda x: -x[1])[:top]
    return Catalog(items=items, popular=popular, popular_by_category=by_cat, fresh=fresh, now=now,
                   refreshed_at=time.time())
