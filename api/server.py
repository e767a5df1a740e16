"""The HTTP connection layer: uvicorn's httptools protocol with the bounds it lacks.

uvicorn with httptools bounds neither the size of a request's head (an 8 MB header was served,
four never-finished 64 MB ones held 320 MB) nor the time a request may take to arrive (only the
idle time between requests, ``timeout_keep_alive``); its one connection limit
(``limit_concurrency``) is global, so 25 slow sockets from one client made every client, ``/healthz``
included, get 503. (``h11_max_incomplete_event_size`` exists for the h11 protocol only.)
``GuardedHttpToolsProtocol`` adds, per worker (settings in ``[api]``):

- ``max_header_bytes``: the request line and headers, counted twice: as the bytes arrive, so a
  head that never ends is refused once it passes the limit (431, connection closed; memory per
  connection stays within the limit plus one read), and as the parser hands over the URL and each
  header, so a whole head that arrives in one read (up to 256 KB) is refused too;
- ``max_headers``: more header lines: 431;
- ``read_timeout_s``: a request, head and body, must have arrived within this of its first byte (or
  of the connection's opening, for the first one): else 408 and the connection is closed, and an
  app still waiting for the body sees the client gone. The time between requests stays uvicorn's
  keep-alive timeout;
- ``max_connections_per_client``: open connections per peer address (the socket's, never a
  forwarded header); one more is answered 429 with ``Retry-After`` and closed at once.

Past uvicorn's own global limit (``api.max_connections``, its ``limit_concurrency``) a request is
answered 503 ``OVERLOADED`` with ``Retry-After: 1`` instead of uvicorn's plain-text 503.

Every refusal is a JSON error body like the app's (api/errors.py), counted in
``graphrec_errors_total{code}``. ``graphrec serve`` runs uvicorn with this protocol
(``http="api.server:GuardedHttpToolsProtocol"``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api import metrics as M
from graphrec.core.config import ApiSettings

PROTOCOL = "api.server:GuardedHttpToolsProtocol"  # for uvicorn's ``http=`` option


def uvicorn_options(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's options from ``[api]``, for ``graphrec serve`` (and the tests that serve the app as
    it does): this protocol, the global connection limit, and forwarded headers believed only from
    ``forwarded_allow_ips`` (uvicorn's default believes any loopback peer, which let a local client
    pick the address its per-address limits count against)."""
    proxies = api.forwarded_allow_ips.strip()
    return {"http": PROTOCOL, "limit_concurrency": api.max_connections, "proxy_headers": bool(proxies),
            "forwarded_allow_ips": proxies or None}


class HeadTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ApiSettings | None] = None  # None: read from get_settings() on first use
    open_per_client: ClassVar[Counter[str]] = Counter()  # this worker's open connections per address

    def __init__(self, *args: Any, limits: ApiSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if limits is None:
            if GuardedHttpToolsProtocol.limits is None:
                from graphrec.core.config import get_settings

                GuardedHttpToolsProtocol.limits = get_settings().api
            limits = GuardedHttpToolsProtocol.limits
        self.cfg: ApiSettings = limits
        self._peer: str | None = None
        self._in_head = True  # the next bytes belong to a request line and headers
        self._head_bytes = 0
        self._parsed_head = 0
        self._header_count = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    # ---- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else "unknown"
        if self.open_per_client[peer] >= self.cfg.max_connections_per_client:
            self._refuse(429, "Too Many Requests", "RATE_LIMITED",
                         f"more than {self.cfg.max_connections_per_client} open connections from this address",
                         retry_after=1)
            return
        self._peer = peer
        self.open_per_client[peer] += 1
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._peer is not None:
            self.open_per_client[self._peer] -= 1
            if self.open_per_client[self._peer] <= 0:
                del self.open_per_client[self._peer]
            self._peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, with the head counted and the parser's refusals answered in JSON.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse(431, "Request Header Fields Too Large", "BAD_USER_INPUT", str(exc.__context__))
            else:
                self._refuse(400, "Bad Request", "BAD_USER_INPUT", "invalid HTTP request")
            return
        except httptools.HttpParserError:
            self._refuse(400, "Bad Request", "BAD_USER_INPUT", "invalid HTTP request")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if not self._refused and self._in_head and self._head_bytes > self.cfg.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large", "BAD_USER_INPUT",
                         f"request line and headers over {self.cfg.max_header_bytes} bytes")

    # ---- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._parsed_head = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url) + 16)  # the method, the version, spaces and CRLF: about 16
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.cfg.max_headers:
            raise HeadTooLarge(f"more than {self.cfg.max_headers} header lines")
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_head(self, n: int) -> None:
        """The head as parsed so far; raising here makes the parser stop (answered 431)."""
        self._parsed_head += n
        if self._parsed_head > self.cfg.max_header_bytes:
            raise HeadTooLarge(f"request line and headers over {self.cfg.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in: from here the app's own budgets apply
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # uvicorn picks its own plain-text 503 app past limit_concurrency: answer in JSON instead.
        super()._start_asgi_task(cycle, _overloaded if app is service_unavailable else app)

    # ---- the read deadline -----------------------------------------------------------------------
    def _arm(self) -> None:
        if self._deadline is None and self.cfg.read_timeout_s > 0:
            self._deadline = self.loop.call_later(self.cfg.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # an answer is on its way: only stop reading the rest
            return
        self._refuse(408, "Request Timeout", "BAD_USER_INPUT",
                     f"the request did not arrive within {self.cfg.read_timeout_s:g} s")

    def _refuse(self, status: int, reason: str, code: str, message: str, retry_after: int | None = None) -> None:
        self._refused = True
        self._disarm()
        M.ERRORS.labels(code).inc()
        body = json.dumps({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}).encode()
        head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
                f"content-length: {len(body)}", "connection: close"]
        if retry_after is not None:
            head.append(f"retry-after: {retry_after}")
        if not self.transport.is_closing():
            self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            self.transport.close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app must not answer on this connection
            self.cycle.message_event.set()


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The answer past ``api.max_connections``: the documented OVERLOADED, not uvicorn's text."""
    M.ERRORS.labels("OVERLOADED").inc()
    body = json.dumps({"data": None, "errors": [{"message": "the server is at its connection limit; retry later",
                                                 "extensions": {"code": "OVERLOADED"}}]}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


__all__ = ["GuardedHttpToolsProtocol", "PROTOCOL"]
