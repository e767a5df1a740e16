"""What every candidate source takes and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Candidate(NamedTuple):
    """One item proposed by one source, with the source's score and what supports it (a named
    tuple: a request builds a thousand of them, and a tuple is the cheapest immutable record)."""

    item_id: str
    score: float
    source: str
    because: tuple[str, ...] = ()  # item ids that led here (for "because you rated X")
    via: tuple[str, ...] = ()  # shared tags/categories/relations, or the category for popularity


@dataclass
class SourceContext:
    """Everything a source may use. ``store`` is an :class:`AsyncGraphStore`."""

    store: Any
    user_id: str | None = None
    session_items: list[str] = field(default_factory=list)
    category: str | None = None
    now: float = 0.0
    half_life_s: float = 90 * 86400.0
    type_weights: dict[str, float] = field(default_factory=dict)
    history: int = 20
    fanout: int = 30
    timeout_s: float = 0.1
    params: dict[str, Any] = field(default_factory=dict)


SourceFn = Callable[[SourceContext, int], Awaitable[list[Candidate]]]
