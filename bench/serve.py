"""Open-loop load on loopback against `graphrec serve`: fixed arrival rate, bounded duration.

Requests are sent on schedule (request i at t0 + i/rate) whether or not earlier ones finished,
so a slow server shows up as latency, not as a lower offered rate. The server runs in its own
process (`graphrec serve`, anonymous reads on) on the demo graph.

    python -m bench.serve --rate 100 --duration 60 --query recommendations
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import write_report
from graphrec.testing.server import free_port

QUERIES = {
    "recommendations": ("query($u: ID!) { recommendations(userId: $u, first: 20) { requestId items { rank item { id title } } } }",
                        lambda rng: {"u": str(rng.randint(1, 943))}),
    "similarItems": ("query($i: ID!) { similarItems(itemId: $i, first: 20) { items { item { id } } } }",
                     lambda rng: {"i": str(rng.randint(1, 1682))}),
}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


async def load(url: str, query: str, rate: float, duration: float, seed: int = 1) -> dict:
    text, make_vars = QUERIES[query]
    rng = random.Random(seed)
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits) as client:
        async def one(variables: dict) -> None:
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client.post("/graphql", json={"query": text, "variables": variables})
                ok = r.status_code == 200 and not r.json().get("errors")
            except httpx.HTTPError:
                ok = False
            lat.append((time.perf_counter() - t) * 1000)
            errors += 0 if ok else 1

        n = int(rate * duration)
        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(make_vars(rng))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {"query": query, "rate": rate, "duration_s": duration, "requests": n, "errors": errors,
            "achieved_rate": round(n / elapsed, 1), "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
            "max_ms": round(max(lat), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--query", choices=sorted(QUERIES), default="recommendations")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/reports/serve.json"))
    a = ap.parse_args()
    port = free_port()
    env = dict(os.environ, GRAPHREC_API_ANONYMOUS_READ="true", GRAPHREC_API_RATE_LIMIT_PER_S="100000",
               GRAPHREC_API_RATE_LIMIT_BURST="100000")
    server = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers", str(a.workers)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        asyncio.run(load(url, a.query, min(a.rate, 20), 5))  # warm-up
        res = asyncio.run(load(url, a.query, a.rate, a.duration))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"{res['query']} at {res['rate']} req/s for {res['duration_s']} s: p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
          f"max {res['max_ms']} ms, errors {res['errors']}, achieved {res['achieved_rate']} req/s")
    write_report(a.out, {"benchmark": "serve", "workers": a.workers, **res})


if __name__ == "__main__":
    main()
