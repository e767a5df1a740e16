"""GraphQL types, each mapped from the domain in one place (``from_domain``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

import strawberry
from strawberry.scalars import JSON

from api.context import Needs, hydrate, item_needs
from graphrec.core.errors import NotFound, ValidationError
from graphrec.core.recs import types as et

if TYPE_CHECKING:
    from api.context import Context

MAX_FIRST = 100


def check_first(first: int | None, name: str = "first", maximum: int = MAX_FIRST) -> int | None:
    if first is None:
        return None
    if first < 1 or first > maximum:
        raise ValidationError(f"must be between 1 and {maximum}", field=name)
    return first


@strawberry.enum
class Surface(Enum):
    HOME_FEED = "HOME_FEED"
    SIMILAR_ITEMS = "SIMILAR_ITEMS"
    SEARCH_RERANK = "SEARCH_RERANK"
    EMAIL = "EMAIL"


@strawberry.enum
class InteractionType(Enum):
    VIEW = "VIEW"
    CLICK = "CLICK"
    PURCHASE = "PURCHASE"
    RATE = "RATE"
    SKIP = "SKIP"


TYPE_FROM_GRAPH = {"VIEWED": InteractionType.VIEW, "CLICKED": InteractionType.CLICK, "PURCHASED": InteractionType.PURCHASE,
                   "RATED": InteractionType.RATE, "SKIPPED": InteractionType.SKIP}


@strawberry.enum
class StoredIn(Enum):
    DIRECT = "DIRECT"
    JOURNAL = "JOURNAL"


@strawberry.input
class RecommendationFilter:
    categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    exclude_item_ids: list[strawberry.ID] | None = None
    available_only: bool = True
    year_min: int | None = None
    year_max: int | None = None

    def to_domain(self) -> et.RecFilter:
        return et.RecFilter(tuple(self.categories or ()), tuple(self.exclude_categories or ()),
                            tuple(str(i) for i in self.exclude_item_ids or ()), self.available_only, self.year_min, self.year_max)


@strawberry.input
class RequestContext:
    session_id: str | None = None
    session_item_ids: list[strawberry.ID] | None = None
    preferred_categories: list[str] | None = None
    explore: bool = True

    def to_domain(self) -> et.RequestContext:
        return et.RequestContext(self.session_id, tuple(str(i) for i in self.session_item_ids or ())[-10:],
                                 tuple(self.preferred_categories or ()), None, self.explore)


@strawberry.type
class Item:
    id: strawberry.ID
    title: str | None
    year: int | None
    categories: list[str]
    tags: list[str]
    available: bool
    popularity: float | None
    description: str | None

    @classmethod
    def from_domain(cls, it: et.Item) -> Item:
        return cls(id=strawberry.ID(it.id), title=it.title, year=it.year, categories=list(it.categories),
                   tags=list(it.tags), available=it.available,
                   popularity=round(math.log1p(it.interactions), 4) if it.interactions is not None else None,
                   description=it.description)

    @classmethod
    def gone(cls, item_id: str) -> Item:
        """An item ranked, then removed before its page was read."""
        return cls(id=strawberry.ID(item_id), title=None, year=None, categories=[], tags=[], available=False,
                   popularity=None, description=None)

    @strawberry.field(description="Items similar to this one (never itself).")
    async def similar(self, info: strawberry.Info[Context, None], first: int = 10) -> list[Recommendation]:
        check_first(first)
        res = await info.context.engine.similar_items(str(self.id), first, et.RecFilter())
        return await recommendations(info, res.items, ("item",))


@strawberry.type
class Recommendation:
    score: float
    rank: int
    sources: list[str]
    reason: str | None
    explain_query: str | None = strawberry.field(description="A ready query for Neo4j Browser behind the reason.")
    # A plain field, filled for the whole list by its resolver (:func:`recommendations`): a page
    # of titles is completed without a resolver call per item.
    item: Item

    @classmethod
    def from_domain(cls, r: et.Recommendation, item: Item) -> Recommendation:
        return cls(score=r.score, rank=r.rank, sources=list(r.sources), reason=r.reason, explain_query=r.explain_query,
                   item=item)


async def recommendations(info: strawberry.Info[Context, None], recs: Sequence[et.Recommendation],
                          path: Sequence[str]) -> list[Recommendation]:
    """``recs`` as GraphQL objects, their items read once for the list as the query's selection
    at ``path`` (below the field being resolved) asks (:func:`api.context.item_needs`)."""
    needs = item_needs(info, path)
    found = await hydrate(info, [r.item_id for r in recs], needs)
    if needs is Needs.NOTHING:
        # Never read: the query does not select ``item`` (were it read, a null here is an error, not a wrong item).
        return [Recommendation.from_domain(r, None) for r in recs]  # type: ignore[arg-type]
    return [Recommendation.from_domain(r, Item.from_domain(it) if it else Item.gone(r.item_id)) for r, it in zip(recs, found, strict=True)]


@strawberry.type
class RecommendationList:
    items: list[Recommendation]
    degraded: bool
    degraded_reasons: list[str]
    model_version: str | None
    request_id: strawberry.ID
    unknown_item_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="rerank: the given ids that are not items (left out of items).")

    @classmethod
    async def from_domain(cls, info: strawberry.Info[Context, None], r: et.RecResult,
                          path: Sequence[str] = ()) -> RecommendationList:
        """``r`` for the field being resolved; ``path``: where this list sits below that field
        (empty when the field returns the list itself)."""
        return cls.of(r, await recommendations(info, r.items, (*path, "items", "item")))

    @classmethod
    def of(cls, r: et.RecResult, items: list[Recommendation]) -> RecommendationList:
        return cls(items=items, degraded=r.degraded, degraded_reasons=list(r.degraded_reasons), model_version=r.model_version,
                   request_id=strawberry.ID(r.request_id), unknown_item_ids=[strawberry.ID(i) for i in r.unknown_ids])


@strawberry.type
class UserRecommendations:
    user_id: strawberry.ID
    recommendations: RecommendationList


@strawberry.type
class Interaction:
    type: InteractionType
    timestamp: datetime
    value: float | None
    dwell_seconds: float | None
    session_id: str | None
    item: Item | None  # filled for the whole list by User.recent_interactions (null: removed since)

    @classmethod
    def from_domain(cls, h: et.Interaction, item: Item | None) -> Interaction:
        return cls(type=TYPE_FROM_GRAPH[h.type], timestamp=datetime.fromtimestamp(h.ts, UTC),
                   value=h.value if h.type == "RATED" else None, dwell_seconds=h.dwell, session_id=h.session,
                   item=item)


@strawberry.type
class User:
    id: strawberry.ID
    attributes: JSON

    @classmethod
    def from_domain(cls, u: et.User) -> User:
        return cls(id=strawberry.ID(u.id), attributes=dict(u.attributes))  # type: ignore[arg-type]  # JSON scalar

    @strawberry.field
    async def recent_interactions(self, info: strawberry.Info[Context, None], first: int = 10) -> list[Interaction]:
        check_first(first)
        history = await info.context.engine.user_history(str(self.id), first)
        found = await hydrate(info, [h.item_id for h in history], item_needs(info, ("item",)))
        return [Interaction.from_domain(h, Item.from_domain(it) if it else None) for h, it in zip(history, found, strict=True)]

    @strawberry.field
    async def recommendations(self, info: strawberry.Info[Context, None], first: int = 20,
                              surface: Surface = Surface.HOME_FEED) -> RecommendationList:
        check_first(first)
        res = await info.context.engine.recommend(et.RecRequest(str(self.id), et.Surface(surface.value), first))
        return await RecommendationList.from_domain(info, res)


@strawberry.type
class ModelVersion:
    id: strawberry.ID
    kind: str
    status: str
    created_at: datetime
    promoted_at: datetime | None
    seed: int | None
    ndcg_at_10: float | None
    recall_at_100: float | None
    metrics: JSON
    training_seconds: float | None
    snapshot: JSON

    @classmethod
    def from_domain(cls, v: object) -> ModelVersion:
        m = getattr(v, "metrics", {})
        return cls(id=strawberry.ID(v.id), kind=v.kind, status=v.status,  # type: ignore[attr-defined]
                   created_at=datetime.fromtimestamp(v.created_at, UTC),  # type: ignore[attr-defined]
                   promoted_at=datetime.fromtimestamp(v.promoted_at, UTC) if v.promoted_at else None,  # type: ignore[attr-defined]
                   seed=v.seed, ndcg_at_10=m.get("ndcg@10"), recall_at_100=m.get("recall@100"), metrics=m,  # type: ignore[attr-defined,arg-type]
                   training_seconds=v.training_seconds, snapshot=v.snapshot)  # type: ignore[attr-defined]


@strawberry.type
class InteractionResult:
    key: str
    created: bool
    stored: StoredIn


@strawberry.input
class InteractionInput:
    user_id: strawberry.ID
    item_id: strawberry.ID
    type: InteractionType
    value: float | None = None
    dwell_seconds: float | None = None
    session_id: str | None = None
    timestamp: str | None = strawberry.field(default=None, description="ISO-8601 or epoch seconds; default: now.")
    key: str | None = strawberry.field(default=None, description="Idempotency key; derived when absent.")

    def to_domain(self, now: float) -> dict[str, object]:
        return {"user_id": str(self.user_id), "item_id": str(self.item_id), "type": self.type.value,
                "ts": self.timestamp if self.timestamp is not None else now, "value": self.value,
                "dwell_seconds": self.dwell_seconds, "session_id": self.session_id, "key": self.key}


@strawberry.input
class ItemInput:
    id: strawberry.ID
    title: str | None = None
    year: int | None = None
    categories: list[str] | None = None
    tags: list[str] | None = None
    available: bool | None = None
    description: str | None = None

    def to_domain(self) -> dict[str, object]:
        return {k: v for k, v in {"id": str(self.id), "title": self.title, "year": self.year, "categories": self.categories,
                                  "tags": self.tags, "available": self.available, "description": self.description}.items()
                if v is not None}


@strawberry.input
class UserInput:
    id: strawberry.ID
    attributes: JSON | None = None

    def to_domain(self) -> dict[str, object]:
        return {"id": str(self.id), "attributes": self.attributes or {}}


def not_found_item(item_id: str) -> NotFound:
    return NotFound("item", item_id)
