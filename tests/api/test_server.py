"""The HTTP connection layer (api/server.py) on its own: a tiny ASGI app behind uvicorn with the
protocol ``graphrec serve`` uses, no engine and no Neo4j."""

from __future__ import annotations

import socket

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.server import PROTOCOL
from graphrec.testing.server import live_server


def _app() -> Starlette:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/healthz", ok)])


def test_uvicorns_connection_limit_answers_the_documented_overloaded() -> None:
    """Past ``api.max_connections`` (uvicorn's ``limit_concurrency``) a request got uvicorn's own
    plain-text 503 "Service Unavailable", with no code and no Retry-After; it gets the JSON error
    every other refusal has: 503 OVERLOADED with ``Retry-After``."""
    with live_server(_app(), http=PROTOCOL, limit_concurrency=2) as url:
        host, port = url.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(2)]  # open, idle: they count
        try:
            r = httpx.get(url + "/healthz", timeout=10)
        finally:
            for s in held:
                s.close()
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/json" and r.headers["retry-after"] == "1", r.headers
        assert r.json() == {"data": None, "errors": [{"message": "the server is at its connection limit; retry later",
                                                     "extensions": {"code": "OVERLOADED"}}]}
        r = httpx.get(url + "/healthz", timeout=10)  # the held connections gone: served
        assert r.status_code == 200 and r.json() == {"ok": True}
