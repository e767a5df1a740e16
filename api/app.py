"""The ASGI app: ``/graphql`` (GraphiQL when enabled), ``/healthz``, ``/readyz``, ``/metrics``,
``/widget/similar-items.js`` and ``/demo``; the pages for people (GraphiQL's own assets, the Neo4j
Browser guide and style sheet, ``/dashboard``) are in api/pages.py.

Every ``/graphql`` POST passes the gate first (api/gate.py: body size, credentials, rate limits,
the JSON envelope); anything else on ``/graphql`` but GraphiQL's page is 405. Errors and their
HTTP statuses are in api/errors.py. After start-up the process calls
``gc.freeze()`` (the long-lived objects — schema, engine, caches — leave the collector's view)
and, with ``api.gc = "idle"``, runs the cyclic collector between requests (api/collector.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from cross_web import HTTPException as CrossHTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from api import metrics as M
from api import pages
from api.auth import KeyVerifier, Principal
from api.collector import CollectorMiddleware, IdleCollector
from api.context import make_context
from api.errors import error_response
from api.gate import Gate
from api.http import cors_preflight, with_cors
from api.schema import build_schema
from graphrec.core.config import Settings, get_settings
from graphrec.core.graph.store import AsyncGraphStore
from graphrec.core.progress import read_status
from graphrec.engine.engine import Engine
from graphrec.engine.health import journal_stuck

log = logging.getLogger("graphrec.api")


class GraphQLApp(GraphQL):
    """Strawberry's ASGI app with graphrec's context, auth, limits and metrics."""

    def __init__(self, schema: Any, state: dict[str, Any], settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql" if settings.api.graphiql else None,
                         allow_queries_via_get=False)
        self.state = state
        self.settings = settings
        self.examples = pages.Examples(state)

    async def render_graphql_ide(self, request: Any) -> Any:  # GraphiQL from our own assets (api/pages.py)
        return await pages.graphiql_page(self.examples, self.settings)

    async def get_context(self, request: Any, response: Any = None) -> Any:
        return make_context(self.state["engine"], request.state.principal, request, response)

    async def parse_http_body(self, request_adapter: Any) -> GraphQLRequestData:
        op = request_adapter._request.state.operation  # parsed and checked by the gate (api/http.py)
        return GraphQLRequestData(query=op.query, variables=op.variables, operation_name=op.operation_name,
                                  extensions=op.extensions, protocol="http")

    async def process_result(self, request: Any, result: Any) -> Any:
        data = await super().process_result(request, result)
        for e in data.get("errors") or []:
            ext: dict[str, Any] = e.setdefault("extensions", {})  # type: ignore[attr-defined]
            ext.setdefault("code", "BAD_USER_INPUT")  # syntax errors are refused before any extension runs
            M.ERRORS.labels(ext["code"]).inc()
        return data


def single_threaded_math() -> None:
    """One BLAS/OpenMP/torch thread per API process.

    A request's math is tiny (a user vector, one ranker pass over a few hundred candidates), so
    extra threads buy nothing, and numpy's OpenBLAS threads spin-wait after every call: with two
    workers on two cores their spinning took the CPU the requests needed, and the API saturated
    far below its single-threaded rate (``python -m bench.serve``, docs/scaling.md).
    Request-time code never needs more than one thread.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    settings = settings or get_settings()
    cfg = settings.api
    state: dict[str, Any] = {"engine": engine}
    schema = build_schema(cfg)
    graphql = GraphQLApp(schema, state, settings)
    root_fields = frozenset(f for t in (schema._schema.query_type, schema._schema.mutation_type) if t for f in t.fields)
    gate = Gate(cfg)
    collector = IdleCollector(cfg.gc_young_every, cfg.gc_young_limit, cfg.gc_full_every_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        single_threaded_math()
        own = state["engine"] is None
        if own:
            if cfg.gc == "idle":
                # The start-up reads (a 1M-item catalogue is a million objects) run without the
                # automatic collector, which would walk the growing heap again and again; the
                # collector takes over below and walks it once.
                gc.disable()
            state["engine"] = await Engine.create(settings)
        eng = state["engine"]
        eng.observers.append(_observe)
        eng.cache_observers.append(_observe_cache)
        eng.catalog_listeners.append(collector.freeze)
        # The engine's gauges are refreshed every second, not only when scraped: with several
        # workers a scrape reaches one of them (and not per request: reading the journal's size
        # is file I/O).
        state["keys_store"] = AsyncGraphStore.from_settings(settings)
        state["verifier"] = gate.verifier = KeyVerifier(state["keys_store"], cfg.key_cache_ttl_s,
                                                        unknown_ttl_s=cfg.unknown_key_ttl_s)
        if cfg.gc == "idle":
            collector.start()
        else:
            gc.collect()
            gc.freeze()
        gauges = asyncio.create_task(_refresh_gauges(eng, 1.0, collector))
        try:
            yield
        finally:
            collector.stop()
            gauges.cancel()
            await state["keys_store"].close()
            if own:
                await state["engine"].close()

    in_flight = [0]  # GraphQL requests being served by this worker

    async def graphql_endpoint(request: Request) -> Response:
        # Admission: past api.max_in_flight requests in progress, answer 503 at once. A saturated
        # worker that admits everything queues without bound, and every queued request's objects
        # make each garbage collection longer, which slows the worker further (timeouts instead
        # of a quick refusal).
        if request.method == "OPTIONS":
            return cors_preflight(request)
        if in_flight[0] >= cfg.max_in_flight:
            M.SHED.inc()
            return with_cors(request, error_response("OVERLOADED", "the server is overloaded; retry later"))
        in_flight[0] += 1
        try:
            return with_cors(request, await _graphql(request))
        finally:
            in_flight[0] -= 1

    async def _graphql(request: Request) -> Response:
        t0 = time.perf_counter()
        if request.method != "POST":
            if (cfg.graphiql and request.method == "GET" and "query" not in request.query_params
                    and "text/html" in request.headers.get("accept", "")):
                request.state.principal = Principal(None, frozenset())
                return await graphql.run(request)  # GraphiQL's page (it sends its queries by POST)
            return error_response("METHOD_NOT_ALLOWED", "send GraphQL operations with POST (application/json)"
                                  + ("" if cfg.graphiql else "; GraphiQL is off"), headers={"Allow": "POST"})
        admitted = await gate.admit(request)
        if isinstance(admitted, Response):
            return admitted
        request.state.principal, op = admitted
        request.state.operation = op
        try:
            response = await graphql.run(request)
        except CrossHTTPException as exc:  # what Strawberry raises for a request it refuses
            return error_response("BAD_USER_INPUT", str(exc.reason), exc.status_code if 400 <= exc.status_code < 500 else 400)
        name = operation_label(op.query, root_fields)
        M.REQUESTS.labels(name, str(response.status_code)).inc()
        M.LATENCY.labels(name).observe(time.perf_counter() - t0)
        return response

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        eng: Engine | None = state.get("engine")
        if eng is None:
            return JSONResponse({"ready": False}, status_code=503)
        # Ready: Neo4j answers, this worker's breaker lets calls through and its start-up warm-up
        # is over (while "warming" it answers, slower at first: a load balancer waits). Degraded: answers
        # are (or may be) degraded: a store down, a breaker not closed, the journal backlog growing
        # or stuck (pending, the breaker closed, the replay not moving), or a fifth of this worker's recent answers (at least 5) degraded by Neo4j being slow.
        h, r = await eng.health(), eng.readiness()
        ready = bool(h["neo4j"]) and r["breakers"]["neo4j"] != "open" and not r["warming"]
        a = r["answers"]
        reasons = [k for k, bad in (("neo4j", not h["neo4j"]), ("vectors", not h["vectors"]),
                                    *((f"{n}_breaker_{st}", st != "closed") for n, st in r["breakers"].items()),
                                    ("journal_growing", r["journal"]["growing"]),
                                    ("journal_stuck", r["journal"]["stuck"]),
                                    ("answers_degraded", a["degraded_by_neo4j"] >= 5 and a["degraded_by_neo4j"] * 5 >= a["recent"]))
                   if bad]
        return JSONResponse({"ready": ready, **h, "degraded": bool(reasons), "degraded_reasons": reasons, **r,
                             "journal_pending_bytes": r["journal"]["pending_bytes"], "pid": os.getpid(),
                             "ranker": eng.ranker_status, "model_version": eng.model.version if eng.model else None,
                             "training": read_status(settings.var_dir)},  # graphrec.core.progress
                            status_code=200 if ready else 503)

    def exposition() -> bytes:  # /metrics and the dashboard read the same numbers
        eng: Engine | None = state.get("engine")
        if eng is not None:
            _engine_gauges(eng)
        return M.exposition()

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(exposition().decode(), media_type="text/plain; version=0.0.4")

    async def widget(request: Request) -> Response:
        return pages.static_response("similar-items.js", "application/javascript")

    async def demo(request: Request) -> Response:
        return pages.static_response("demo.html", "text/html")

    app = Starlette(routes=[
        Route("/graphql", graphql_endpoint, methods=["GET", "POST", "OPTIONS"]),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/widget/similar-items.js", widget), Route("/demo", demo),
        *pages.routes(state, settings, exposition),
    ], lifespan=lifespan, middleware=[Middleware(CollectorMiddleware, collector=collector)])
    app.state.graphrec = state
    return app


_FIRST_FIELD = re.compile(r"\{\s*(?:\w+\s*:\s*)?(\w+)")  # the first selection, past an alias


def operation_label(query: str | None, root_fields: frozenset[str]) -> str:
    """The ``operation`` label of a request's metrics: its first root field when the schema has
    one by that name, else ``other``. Never the client's ``operationName`` or anything else a client
    chooses: every distinct label value is a time series kept for the life of the process."""
    m = _FIRST_FIELD.search(query or "")
    return m.group(1) if m and m.group(1) in root_fields else "other"


def _engine_gauges(eng: Engine) -> None:
    for k, v in eng.stats.items():
        if k.startswith("candidates."):
            M.CANDIDATES.labels(k.split(".", 1)[1]).set(v)
    M.CACHE_HIT.labels("results").set(eng.results.hit_rate)
    M.CACHE_HIT.labels("neighbours").set(eng.neighbours.hit_rate)
    M.NEO4J_SHED.set(eng.stats.get("neo4j.shed", 0) + eng.neighbours.refused)
    pending = eng.journal.pending()
    M.JOURNAL.set(pending)
    M.DEAD_LETTERS.set(eng.journal.dead_lettered())
    M.JOURNAL_STUCK.set(journal_stuck(eng.state, pending))
    M.BREAKER_OPEN.labels("neo4j").set(eng.neo4j_breaker.state != "closed")
    M.BREAKER_OPEN.labels("vectors").set(eng.vector_breaker.state != "closed")


async def _refresh_gauges(eng: Engine, every_s: float, collector: IdleCollector) -> None:
    while True:
        _engine_gauges(eng)
        collector.tick()
        await asyncio.sleep(every_s)


def _observe_cache(op: str, hit: bool) -> None:
    M.RESULT_CACHE.labels(op, "hit" if hit else "miss").inc()


def _observe(op: str, res: Any) -> None:
    """Feed an engine answer's per-stage timings and degraded reasons to Prometheus, labelled with
    the engine operation (recommendations, similarItems, rerank)."""
    for stage, ms in res.timings_ms.items():
        M.STAGE.labels(op, stage).observe(ms / 1000.0)
    for r in res.degraded_reasons:
        M.DEGRADED.labels(op, r).inc()
    if res.degraded:  # once per answer (the dashboard's count)
        M.DEGRADED_RESPONSES.labels(op, ",".join(sorted(res.degraded_reasons)) or "unknown").inc()


def app_factory() -> Starlette:
    """For ``uvicorn --factory`` (each worker builds its own app and engine)."""
    return create_app()


__all__ = ["create_app", "app_factory"]
