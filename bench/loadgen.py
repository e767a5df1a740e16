"""A lean open-loop HTTP/1.1 load generator for loopback benchmarks.

httpx costs about a millisecond of CPU per request in the client; at 100–200 req/s on a 2-core
machine that steals a noticeable share of the CPU the server under test needs, and its pool
serialises at high concurrency. This client speaks just enough HTTP/1.1 (keep-alive,
``Content-Length`` bodies, no chunked requests) over a pool of asyncio connections, so the
client's own cost stays around 50–100 µs per request.

Requests are sent on schedule (request i at t0 + i/rate) whether or not earlier ones finished:
a slow server shows up as latency (no coordinated omission), not as a lower offered rate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    latency_ms: list[float] = field(default_factory=list)
    sent_at_s: list[float] = field(default_factory=list)  # when each request of latency_ms was due
    status: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # transport errors, non-200, or GraphQL errors
    graphql_errors: int = 0
    degraded: int = 0  # answers that say "degraded": true (served, but from what was left)
    sent: int = 0
    elapsed_s: float = 0.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(length)
        if close:
            self.writer.close()
            raise ConnectionResetError("server closed the connection")
        return status, body


class Pool:
    """Keep-alive connections to one host; a request takes an idle one or opens a new one."""

    #: Servers close idle keep-alive connections (uvicorn after 5 s); never reuse one that old.
    MAX_IDLE_S = 3.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Conn] = []

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        conn = None
        while self.idle:
            c = self.idle.pop()
            if time.monotonic() - c.last_used < self.MAX_IDLE_S:
                conn = c
                break
            c.writer.close()
        if conn is None:
            conn = _Conn(*await asyncio.open_connection(self.host, self.port))
        try:
            out = await conn.request(raw)
        except BaseException:
            conn.writer.close()
            raise
        conn.last_used = time.monotonic()
        self.idle.append(conn)
        return out

    def close(self) -> None:
        for c in self.idle:
            c.writer.close()
        self.idle.clear()


def graphql_request(host: str, port: int, query: str, variables: dict[str, Any], token: str | None = None) -> bytes:
    body = json.dumps({"query": query, "variables": variables}).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def open_loop(host: str, port: int, make_request: Callable[[int], bytes], rate: float, duration: float,
                    timeout: float = 10.0) -> Outcome:
    """Send ``rate * duration`` requests on a fixed schedule; wait for all of them."""
    pool = Pool(host, port)
    out = Outcome()
    n = int(rate * duration)

    async def one(raw: bytes) -> None:
        t = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(pool.request(raw), timeout)
            out.status[status] = out.status.get(status, 0) + 1
            bad = status != 200 or b'"errors"' in body
            if status == 200 and bad:
                out.graphql_errors += 1
            if b'"degraded":true' in body or b'"degraded": true' in body:
                out.degraded += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            bad = True
            out.status[0] = out.status.get(0, 0) + 1
        out.latency_ms.append((time.perf_counter() - t) * 1000)
        out.sent_at_s.append(t - t0)
        out.errors += bad

    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(make_request(i))))
        out.sent += 1
    await asyncio.gather(*tasks)
    out.elapsed_s = time.perf_counter() - t0
    pool.close()
    return out


def p99_by_window(out: Outcome, window_s: float = 10.0) -> list[float]:
    """p99 latency of the requests due in each ``window_s`` of the run (is the tail steady, or
    made by a burst or a cold start?)."""
    from bench.common import pct

    by: dict[int, list[float]] = {}
    for at, ms in zip(out.sent_at_s, out.latency_ms, strict=True):
        by.setdefault(int(at // window_s), []).append(ms)
    return [round(pct(by.get(w, []), 99), 1) for w in range(max(by) + 1)] if by else []
