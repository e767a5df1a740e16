"""The idle-time garbage collector: when it collects, and that it gives the GC back on stop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from api import metrics as M
from api.collector import CollectorMiddleware, IdleCollector


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Cycle:
    def __init__(self) -> None:
        self.me = self


def garbage(n: int) -> None:
    for _ in range(n):
        Cycle()


@pytest.fixture()
def collector() -> Iterator[tuple[IdleCollector, Clock]]:
    clock = Clock()
    c = IdleCollector(young_every=500, young_limit=5_000, full_every_s=60.0, clock=clock)
    c.start()
    try:
        yield c, clock
    finally:
        c.stop()
        gc.unfreeze()


def pauses(gen: str) -> float:
    return M.REGISTRY.get_sample_value("graphrec_gc_pause_seconds_count", {"generation": gen}) or 0.0


def test_start_takes_over_and_stop_gives_back(collector: tuple[IdleCollector, Clock]) -> None:
    c, _ = collector
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    c.stop()
    assert gc.isenabled()


def test_young_collection_only_when_idle(collector: tuple[IdleCollector, Clock]) -> None:
    c, _ = collector
    c.started()
    c.started()
    garbage(1_000)
    c.finished()  # one request still in flight: nothing
    assert c.collections == [0, 0, 0] and gc.get_count()[0] >= 1_000
    before = pauses("1")
    c.finished()  # idle now: the young generations, once
    assert c.collections == [0, 1, 0]
    assert gc.get_count()[0] < 500  # the cycles are gone
    assert pauses("1") == before + 1  # and the pause went to /metrics
    c.started()
    c.finished()  # idle again, but too little pending: nothing
    assert c.collections == [0, 1, 0]


def test_backstop_when_never_idle(collector: tuple[IdleCollector, Clock]) -> None:
    c, _ = collector
    c.started()
    garbage(6_000)
    c.started()  # past young_limit with a request in flight: collect anyway
    assert c.collections == [0, 1, 0]


def test_full_collection_when_idle_and_forced_after_three_periods(collector: tuple[IdleCollector, Clock]) -> None:
    c, clock = collector
    clock.t += 61
    c.started()
    c.tick()  # in flight: wait for an idle moment
    assert c.collections[2] == 0
    c.finished()
    assert c.collections[2] == 1
    c.started()
    clock.t += 120
    c.tick()
    assert c.collections[2] == 1  # two periods busy: still waiting
    clock.t += 61
    c.tick()  # three: forced
    assert c.collections[2] == 2
    c.finished()


def test_middleware_counts_http_only_and_survives_errors(collector: tuple[IdleCollector, Clock]) -> None:
    c, _ = collector
    seen: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(c.in_flight)
        if scope.get("boom"):
            raise RuntimeError("boom")

    mw = CollectorMiddleware(app, c)
    asyncio.run(mw({"type": "http"}, None, None))
    asyncio.run(mw({"type": "lifespan"}, None, None))
    with pytest.raises(RuntimeError):
        asyncio.run(mw({"type": "http", "boom": True}, None, None))
    assert seen == [1, 0, 1] and c.in_flight == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        IdleCollector(young_every=10, young_limit=5)
