"""The engine's request and response types: what the API (and batch jobs) hand to the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple


class Surface(str, Enum):  # noqa: UP042 - StrEnum would change str(member) from 'Surface.X' to 'X'
    HOME_FEED = "HOME_FEED"
    SIMILAR_ITEMS = "SIMILAR_ITEMS"
    SEARCH_RERANK = "SEARCH_RERANK"
    EMAIL = "EMAIL"


@dataclass(frozen=True)
class RecFilter:
    """Hard filters applied to every candidate."""

    categories: tuple[str, ...] = ()  # keep only items in any of these
    exclude_categories: tuple[str, ...] = ()
    exclude_item_ids: tuple[str, ...] = ()
    available_only: bool = True
    year_min: int | None = None
    year_max: int | None = None


@dataclass(frozen=True)
class RequestContext:
    """What the client knows about this request (all optional)."""

    session_id: str | None = None
    session_item_ids: tuple[str, ...] = ()  # the current session's recent items, oldest first
    preferred_categories: tuple[str, ...] = ()  # stated preferences (cold start)
    now: float | None = None  # defaults to the graph's clock / wall time
    explore: bool = True


@dataclass(frozen=True)
class RecRequest:
    user_id: str | None
    surface: Surface = Surface.HOME_FEED
    first: int = 20
    filter: RecFilter = field(default_factory=RecFilter)
    context: RequestContext = field(default_factory=RequestContext)


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    rank: int
    sources: tuple[str, ...]
    reason: str | None = None
    explain_query: str | None = None  # a ready Cypher for Neo4j Browser (collaborative reasons)


@dataclass(frozen=True)
class RecResult:
    items: list[Recommendation]
    degraded: bool
    model_version: str | None
    request_id: str
    degraded_reasons: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    unknown_ids: tuple[str, ...] = ()  # rerank: given ids that are not items (left out of items)


@dataclass(frozen=True)
class RecordResult:
    key: str
    created: bool  # False: the same key was already stored (a retry)
    stored: str  # "direct" (written to Neo4j) or "journal" (Neo4j unavailable; replayed later)


#: How many items the catalogue's popular and fresh lists hold (the engine's, and the offline
#: replay's built from a snapshot).
LIST_SIZE = 1000


@dataclass(frozen=True)
class CatalogItem:
    """What business rules need to know of one catalogue item, held in memory by the engine."""

    id: str
    title: str | None
    year: int | None
    available: bool
    created_at: float | None
    categories: tuple[str, ...]
    interactions: int
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


