"""Hostile clients against a running API, with a legitimate client measured beside them
(issue 21, findings 3 and 6). Run it against two servers to compare them side by side.

    python -m bench.hostile --url http://127.0.0.1:8000 --key grk_... --pid <API pid>

1. quiet: 100 ``similarItems`` requests from 127.0.0.1, one at a time (after 100 to warm up): p50/p99;
2. a flood of 400 made-up, well-formed keys from 127.0.0.2 (20 at a time) while the legitimate
   client sends its 100 requests: its p50/p99, and the flood's statuses;
3. four never-ending 64 MB headers from 127.0.0.3 while the legitimate client sends 100 requests:
   its p50/p99, the API's RSS before and after, the bytes the server took;
4. 300 sockets from 127.0.0.4 that never finish their headers: ``/healthz`` and GraphQL from
   127.0.0.1 meanwhile, and how many of the 300 the server has closed after 15 s.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

QUERY = '{ similarItems(itemId: "heat", first: 5) { items { item { id } } } }'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def legit(url: str, key: str, n: int = 100) -> dict[str, Any]:
    times: list[float] = []
    statuses: Counter[int | str] = Counter()
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": "Bearer " + key}) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                r = c.post("/graphql", json={"query": QUERY})
                statuses[r.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p99_ms": round(times[int(len(times) * 0.99) - 1], 1),
            "statuses": dict(statuses)}


def bad_key_flood(url: str, n: int, out: Counter[Any]) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=url, timeout=30, transport=transport) as c:
        def one(_: int) -> None:
            key = f"grk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            try:
                out[c.post("/graphql", json={"query": QUERY}, headers={"Authorization": "Bearer " + key}).status_code] += 1
            except httpx.HTTPError as exc:
                out[type(exc).__name__] += 1

        with ThreadPoolExecutor(20) as pool:
            list(pool.map(one, range(n)))


def big_header(port: int, sent: list[int]) -> None:
    chunk = b"x" * (1 << 20)
    try:
        s = socket.socket()
        s.bind(("127.0.0.3", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /graphql HTTP/1.1\r\nHost: a\r\nX-Big: ")
        for _ in range(64):
            s.sendall(chunk)
            sent[0] += len(chunk)
        time.sleep(2)
        s.close()
    except OSError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True, help="a read key")
    ap.add_argument("--pid", type=int, required=True, help="the API process (for its RSS)")
    a = ap.parse_args()
    port = int(a.url.rsplit(":", 1)[1])
    legit(a.url, a.key)  # warm-up (Neo4j's and the API's caches)
    out: dict[str, Any] = {"quiet": legit(a.url, a.key)}

    flood: Counter[Any] = Counter()
    t = threading.Thread(target=bad_key_flood, args=(a.url, 400, flood))
    t.start()
    time.sleep(0.2)
    out["bad_key_flood"] = legit(a.url, a.key)
    t.join()
    out["bad_key_flood"]["flood_statuses"] = {str(k): v for k, v in flood.items()}

    rss0 = rss_mb(a.pid)
    sent = [[0] for _ in range(4)]
    threads = [threading.Thread(target=big_header, args=(port, sent[k])) for k in range(4)]
    for th in threads:
        th.start()
    during = legit(a.url, a.key)
    peak = rss_mb(a.pid)
    for th in threads:
        th.join(timeout=300)
    out["big_headers"] = {**during, "rss_before_mb": round(rss0, 1), "rss_during_mb": round(peak, 1),
                          "rss_after_mb": round(rss_mb(a.pid), 1), "mb_sent": sum(s[0] for s in sent) >> 20}

    slow = []
    for _ in range(300):
        s = socket.socket()
        s.bind(("127.0.0.4", 0))
        s.settimeout(0.1)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"POST /graphql HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        except OSError:
            pass
        slow.append(s)
    health: int | str
    try:
        health = httpx.get(a.url + "/healthz", timeout=10).status_code
    except httpx.HTTPError as exc:
        health = type(exc).__name__
    out["slow_sockets"] = {"healthz": health, **legit(a.url, a.key, 20)}
    time.sleep(15)
    closed = 0
    for s in slow:
        try:
            data = s.recv(4096)
            closed += 1 if data or data == b"" else 0
        except TimeoutError:
            pass
        except OSError:
            closed += 1
        s.close()
    out["slow_sockets"]["closed_by_server_after_15s"] = closed
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
