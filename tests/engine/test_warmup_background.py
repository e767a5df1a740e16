"""The API answers while the start-up warm-up runs (a second `make demo` used to wait ~60 s for
it): Engine.create returns once the catalogue and the model are loaded, the warm-up's commits and
sample requests go on in the background (readiness says "warming"), and clients' answers are the
ones a warm engine gives: counted, observed and cached, while the warm-up's own are none of these."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from graphrec.core.config import Settings
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.testing import tiny_graph

pytestmark = pytest.mark.integration


@pytest.fixture()
def tiny(store, neo4j_settings: Settings) -> Iterator[Settings]:  # noqa: ANN001
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    tiny_graph(store)
    refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False)
    yield neo4j_settings.model_copy(update={"engine": neo4j_settings.engine.model_copy(update={
        "explore_epsilon": 0.0, "request_budget_ms": 3000.0, "source_budget_ms": 2000.0, "warm_up_s": 20.0})})


def _request() -> RecRequest:
    return RecRequest("alice", first=5, context=RequestContext(now=2000.0))


def test_the_engine_answers_while_it_warms_up(tiny: Settings) -> None:
    async def warm_answer() -> list[str]:  # a warm engine's answer (warm-up done before create returns)
        e = await Engine.create(tiny, vectors=None, background=False)
        try:
            assert not e.state.warming and e.stats["warm_up_requests"] >= 200
            return [r.item_id for r in (await e.recommend(_request())).items]
        finally:
            await e.close()

    async def go() -> dict[str, Any]:
        e = await Engine.create(tiny, vectors=None, background=True)
        out: dict[str, Any] = {}
        try:
            out["warming_at_create"] = e.readiness()["warming"]
            out["budget_while_warming"] = e.cfg.request_budget_ms
            out["warmed_at_create"] = "warm_up_requests" in e.stats
            seen: list[str] = []
            e.observers.append(lambda op, r: seen.append(op))
            res = await e.recommend(_request())
            out["during"] = [r.item_id for r in res.items]
            out["degraded"] = res.degraded
            out["still_warming"] = e.state.warming
            deadline = time.monotonic() + 120
            while e.state.warming and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            out["after_warming"] = e.readiness()["warming"]
            out["budget_after"] = e.cfg.request_budget_ms
            out["warm_up_requests"] = e.stats.get("warm_up_requests", 0)
            out["seen"] = list(seen)
            out["cached"] = len(e.results)
            again = await e.recommend(_request())
            out["again"] = ([r.item_id for r in again.items], again.timings_ms.get("cache_hit"))
            out["counted"] = sum(c[1] for c in e.state.answer_counts)
        finally:
            await e.close()
        return out

    warm = asyncio.run(warm_answer())
    out = asyncio.run(go())
    assert out["warming_at_create"] and not out["warmed_at_create"]  # create did not wait for it
    # Clients' requests meet a cold Neo4j with wider budgets (complete answers, slower), then the usual.
    assert out["budget_while_warming"] == 5 * tiny.engine.request_budget_ms and out["budget_after"] == tiny.engine.request_budget_ms
    assert out["still_warming"] and not out["degraded"]
    assert out["during"] == warm  # the answer a warm engine gives
    assert not out["after_warming"] and out["warm_up_requests"] >= 200
    assert out["seen"] == ["recommendations"]  # only the client's answer reached the observers
    assert out["cached"] == 1 and out["again"] == (warm, 1.0)  # and only it was cached
    assert out["counted"] == 1
