"""A bounded cache with a time-to-live: no cache in graphrec grows without limit or goes stale forever.

The engine's caches live as long as the API process, so what they hold is chosen for CPython's
cyclic collector, which walks every object it tracks in each full collection. Strings, bytes and
numbers are never tracked; a plain tuple of such values is untracked the first time a collection
sees it; anything else (a dataclass instance, a namedtuple, a list, a tuple holding a tracked
tuple until a later collection) stays in every full collection's walk. So a value here is a
string, bytes (``marshal`` of nested tuples) or a flat tuple of plain values, a key a string or a
flat tuple, and the time of an entry is kept beside it (a ``(time, value)`` wrapper would be
one more level to untrack). At 1M items, cached dataclass items and nested cache entries
made each full collection long enough to set the p99 of similarItems.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, maxsize: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.ttl_s = ttl_s
        self.clock = clock
        self._data: OrderedDict[Hashable, V] = OrderedDict()  # least recently used first
        self._at: dict[Hashable, float] = {}  # when each entry was put
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        at = self._at.get(key)
        if at is None or self.clock() - at > self.ttl_s:
            if at is not None:
                self.discard(key)
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return self._data[key]

    def peek(self, key: Hashable) -> V | None:
        """The live value, without counting a hit or a miss or refreshing its recency."""
        at = self._at.get(key)
        return self._data[key] if at is not None and self.clock() - at <= self.ttl_s else None

    def put(self, key: Hashable, value: V) -> None:
        self._data[key] = value
        self._at[key] = self.clock()
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            old, _ = self._data.popitem(last=False)
            del self._at[old]

    def replace(self, key: Hashable, value: V) -> None:
        """A new value for a present entry, keeping its time and recency (no-op when absent)."""
        if key in self._data:
            self._data[key] = value

    def discard(self, key: Hashable) -> None:
        self._data.pop(key, None)
        self._at.pop(key, None)

    def items(self) -> list[tuple[Hashable, V]]:
        """The entries, live or expired (for inspection and tests)."""
        return list(self._data.items())

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
