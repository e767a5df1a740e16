"""What every candidate source takes and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import numpy as np


class Candidate(NamedTuple):
    """One item proposed by one source, with the source's score and what supports it (a named
    tuple: a request builds a thousand of them, and a tuple is the cheapest immutable record)."""

    item_id: str
    score: float
    source: str
    because: tuple[str, ...] = ()  # item ids that led here (for "because you rated X")
    via: tuple[str, ...] = ()  # shared tags/categories/relations, or the category for popularity


class Ranked:
    """One source's candidates as columns: ``ids`` and ``scores`` (float64), and what supports
    each (``because``, ``via``) computed only for the candidates asked about: a source that sums
    neighbour lists proposes ~200 items, a request shows 20. Iterating gives :class:`Candidate`
    records (in the columns' order)."""

    __slots__ = ("ids", "scores", "source", "_because", "_via")

    def __init__(self, ids: list[str], scores: np.ndarray, source: str,
                 because: Callable[[int], tuple[str, ...]] | None = None,
                 via: Callable[[int], tuple[str, ...]] | None = None) -> None:
        self.ids = ids
        self.scores = np.asarray(scores, dtype=np.float64)
        self.source = source
        self._because = because
        self._via = via

    @classmethod
    def empty(cls, source: str) -> Ranked:
        return cls([], np.zeros(0), source)

    def __len__(self) -> int:
        return len(self.ids)

    def because(self, k: int) -> tuple[str, ...]:
        """The item ids that led to the ``k``-th candidate."""
        return self._because(k) if self._because is not None else ()

    def via(self, k: int) -> tuple[str, ...]:
        return self._via(k) if self._via is not None else ()

    def __iter__(self) -> Iterator[Candidate]:
        scores = self.scores.tolist()
        return (Candidate(i, scores[k], self.source, self.because(k), self.via(k)) for k, i in enumerate(self.ids))


#: What a source returns: candidate records, or the same as columns.
SourceResult = Union[Sequence[Candidate], Ranked]  # noqa: UP007 - a runtime alias


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


SourceFn = Callable[[SourceContext, int], Awaitable[SourceResult]]
