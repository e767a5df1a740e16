"""CPython's cyclic garbage collector, run between requests instead of inside them.

A request through Strawberry, graphql-core and the async Neo4j driver leaves hundreds of objects in
reference cycles (DataLoader tasks and futures, the driver's sessions, results and hydration
scopes, Starlette's request objects), so the collector has real work. Left to its defaults it
starts whenever 700 net allocations have piled up, which is in the middle of requests: each young
collection then walks every in-flight request's live objects and promotes them, and every few
seconds a full collection walks all of them again: a large share of a worker's CPU goes to the
collector, and the requests caught by a full collection make the tail latency (measure it with
`python -m bench.serve`, once with `api.gc = "auto"`).

So the API process freezes its start-up objects (``gc.freeze()``: schema, engine, caches leave
the collector's view), turns automatic collection off, and collects here:

- **young generations when idle**: when the last in-flight request has finished and at least
  ``young_every`` net allocations happened, ``gc.collect(1)``. Nothing of a request is alive at
  that moment, so its cyclic garbage is freed at once and only real long-lived objects (cache
  entries) are promoted: no request waits for it unless one arrives during the short time it takes;
- **a backstop** under sustained load with no idle moment: young collection anyway once
  ``young_limit`` allocations are pending;
- **a full collection** every ``full_every_s`` seconds, when idle (or after three periods
  regardless), for cycles that were promoted under load.

Every collection's duration goes to ``graphrec_gc_pause_seconds{generation}`` (including any
collection some library asks for explicitly).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api import metrics as M

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class IdleCollector:
    """Counts in-flight requests and collects when there are none (see the module docstring)."""

    def __init__(self, young_every: int = 2_000, young_limit: int = 100_000, full_every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if young_every < 1 or young_limit < young_every or full_every_s <= 0:
            raise ValueError("need 1 <= young_every <= young_limit and full_every_s > 0")
        self.young_every, self.young_limit, self.full_every_s = young_every, young_limit, full_every_s
        self.clock = clock
        self.in_flight = 0
        self.last_full = clock()
        self.collections = [0, 0, 0]  # by this collector, per generation collected
        self._started_at = 0.0
        self.active = False

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """After start-up: collect, freeze what is alive now, and take over from the automatic GC."""
        gc.collect()
        gc.freeze()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        gc.disable()
        self.last_full = self.clock()
        self.active = True

    def freeze(self) -> None:
        """Move everything alive now out of the collector's view (called after the engine read a
        full catalogue: an object or more per item, which every full collection would otherwise
        walk). Frozen objects without cycles are still freed by reference counting when
        the next catalogue replaces them; cyclic garbage of the requests in flight at that moment
        stays for the life of the process (a few requests' worth, once per full read)."""
        gc.freeze()

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.enable()
        self.active = False

    # ---- request accounting ------------------------------------------------------------------
    def started(self) -> None:
        self.in_flight += 1
        if self.active and gc.get_count()[0] >= self.young_limit:  # no idle moment for too long
            self._collect(1)

    def finished(self) -> None:
        self.in_flight -= 1
        if self.active and self.in_flight == 0:
            self.collect_if_due()

    def collect_if_due(self) -> None:
        """Run the collection due now, if any (called when no request is in flight)."""
        if self.clock() - self.last_full >= self.full_every_s:
            self._collect(2)
        elif gc.get_count()[0] >= self.young_every:
            self._collect(1)

    def tick(self) -> None:
        """Called periodically: a full collection that found no idle moment for three periods runs
        anyway (a process that is never idle must not keep cyclic garbage forever)."""
        if not self.active:
            return
        if self.in_flight == 0:
            self.collect_if_due()
        elif self.clock() - self.last_full >= 3 * self.full_every_s:
            self._collect(2)

    def _collect(self, generation: int) -> None:
        gc.collect(generation)
        self.collections[generation] += 1
        if generation == 2:
            self.last_full = self.clock()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
        else:
            M.GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - self._started_at)


class CollectorMiddleware:
    """ASGI middleware: HTTP requests are counted; collections happen after the response is sent."""

    def __init__(self, app: ASGIApp, collector: IdleCollector) -> None:
        self.app, self.collector = app, collector

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.collector.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.collector.finished()


__all__ = ["CollectorMiddleware", "IdleCollector"]
