"""Open-loop serving benchmark on loopback against `graphrec serve` (the demo graph).

For each operation (``recommendations``, ``similarItems``, ``recordInteraction``), each mode and
each fixed arrival rate, requests are sent on schedule for ``--duration`` seconds
(bench/loadgen.py: no coordinated omission, a lean client so the load generator does not eat the
server's CPU). Two modes for the cached reads:

- ``computed``: no request key repeats in the whole run (user or item and ``first`` vary, drawn
  without replacement), so every answer is computed: what the service costs;
- ``traffic``: a Zipf-like mix of users or items (weight 1/rank, ranks a seeded permutation),
  ``first: 20``, the result cache on: what a cache in front of real traffic saves.

``--first N`` measures the computed mode at one page size (the targets name ``first: 20``): users
or items drawn uniformly per phase, and the API started with its result cache off
(``GRAPHREC_ENGINE_RESULT_CACHE_SIZE=0``) so that every answer is still computed although keys
repeat; the report's hit ratio shows it (0 lookups answered).

Every phase (warm-up, each mode, each rate) draws its own keys from its own seed, so none repeats
what the warm-up asked. Reports p50/p99/max latency, errors, achieved rate, the result cache's hit
ratio in the phase (from the API's ``/metrics``: ``graphrec_result_cache_lookups_total``) and the
RSS and CPU per request of the API workers and of Neo4j; writes a JSON report and a
latency-vs-rate plot. The targets are stated for ``computed``.

    python -m bench.serve                                   # 50, 100, 200 req/s x 60 s, all ops, both modes
    python -m bench.serve --rates 100 --ops recommendations --modes computed --duration 60
    python -m bench.serve --rates 100,200 --ops recommendations --modes computed --first 20
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
from typing import Any

import httpx

from bench.common import pct, pyplot, save_figure, tree_cpu_s, tree_rss_mb, write_report
from bench.loadgen import graphql_request, open_loop, p99_by_window
from graphrec.core.config import load_settings
from graphrec.testing.server import free_port

HOST = "127.0.0.1"
REC = ("query($u: ID!, $n: Int!) { recommendations(userId: $u, first: $n) { requestId degraded "
       "items { rank score item { id title } } } }")
SIM = "query($i: ID!, $n: Int!) { similarItems(itemId: $i, first: $n) { degraded items { rank item { id title } } } }"
MODES = ("computed", "traffic")
CACHED_OPS = ("recommendations", "similarItems")
#: ``first`` values of the computed mode (with the user or item: keys that never repeat).
FIRSTS = range(10, 101)
REC_INT = ("mutation($in: InteractionInput!) { recordInteraction(input: $in) { key created stored } }")
#: Targets, per graph size: p99 ms of the computed mode (every answer computed; 0 errors and 0
#: degraded answers too) at a rate, and of the writes. "1m": the synthetic graph of bench.scale.
TARGETS: dict[str, dict[str, float]] = {
    "movielens": {"recommendations_computed_p99_ms_at_200": 20, "similarItems_computed_p99_ms_at_200": 10,
                  "recordInteraction_p99_ms": 20},
    "1m": {"recommendations_computed_p99_ms_at_200": 50, "recordInteraction_p99_ms": 20},
}


def size_of(ids: str, items: int) -> str:
    """The TARGETS key of a graph: MovieLens, or the synthetic graph at 1M items or more."""
    return "movielens" if ids == "movielens" else "1m" if items >= 1_000_000 else "synthetic"


def target(size: str, op: str, rate: float) -> float | None:
    """The p99 target (ms) of ``op`` at ``rate`` on a graph of ``size`` (a key of TARGETS), if any."""
    t = TARGETS.get(size, {})
    return t.get("recordInteraction_p99_ms") if op == "recordInteraction" else t.get(
        f"{op}_computed_p99_ms_at_{rate:.0f}")


#: How the dataset names its users and items: MovieLens numbers them from 1, the synthetic
#: generator (loaders/synthetic.py) calls them u0..u(N-1) and i0..i(N-1).
ID_FORMATS = {"movielens": (lambda rng, n: str(rng.randint(1, n)), lambda rng, n: str(rng.randint(1, n))),
              "synthetic": (lambda rng, n: f"u{rng.randrange(n)}", lambda rng, n: f"i{rng.randrange(n)}")}


def all_ids(ids: str, kind: str, n: int) -> list[str]:
    """Every id of the dataset's ``n`` users or items (``kind``), as ID_FORMATS names them."""
    if ids == "synthetic":
        return [f"{'u' if kind == 'user' else 'i'}{k}" for k in range(n)]
    return [str(k) for k in range(1, n + 1)]


class KeyPool:
    """Request keys (id, first) that never repeat within a run: every pair once, seeded order."""

    def __init__(self, ids: list[str], seed: int) -> None:
        self.ids = ids
        self.order = random.Random(seed).sample(range(len(ids) * len(FIRSTS)), len(ids) * len(FIRSTS))
        self.next = 0

    def take(self, n: int) -> list[tuple[str, int]]:
        if self.next + n > len(self.order):
            raise SystemExit(f"the computed mode ran out of distinct keys ({len(self.order)}): fewer requests, please")
        out = [(self.ids[k // len(FIRSTS)], FIRSTS[k % len(FIRSTS)]) for k in self.order[self.next:self.next + n]]
        self.next += n
        return out


def zipf_keys(ids: list[str], n: int, seed: int, s: float = 1.0) -> list[tuple[str, int]]:
    """``n`` draws of a Zipf-like mix over ``ids`` (weight 1/rank^s; ranks a seeded permutation)."""
    rng = random.Random(seed)
    ranked = rng.sample(ids, len(ids))
    weights = [1.0 / (k + 1) ** s for k in range(len(ranked))]
    return [(i, 20) for i in rng.choices(ranked, weights=weights, k=n)]


def make_ops(users: int, items: int, seed: int, token: str | None, run: str, ids: str = "movielens",
             first: int | None = None) -> dict[str, Any]:
    """Request factories per operation: ``factory(port, mode, n, phase) -> request(i)``, each phase
    with keys of its own (``recordInteraction`` writes as users ``<run>-u<n>``; it has no mode).
    ``first``: every read asks that many, ids drawn uniformly per phase (the API must run without
    its result cache for the answers to be computed)."""
    user_id, item_id = ID_FORMATS[ids]
    pools: dict[str, KeyPool] = {}

    def keys(op: str, mode: str, n: int, phase: int) -> list[tuple[str, int]]:
        space = all_ids(ids, "user", users) if op == "recommendations" else all_ids(ids, "item", items)
        if first is not None:
            rng = random.Random(seed * 1000 + phase)
            return [(rng.choice(space), first) for _ in range(n)]
        if mode == "computed":
            if op not in pools:
                pools[op] = KeyPool(space, seed)
            return pools[op].take(n)
        return zipf_keys(space, n, seed * 1000 + phase)

    def rec(port: int, mode: str, n: int, phase: int) -> Any:
        ks = keys("recommendations", mode, n, phase)
        return lambda i: graphql_request(HOST, port, REC, {"u": ks[i][0], "n": ks[i][1]}, token)

    def sim(port: int, mode: str, n: int, phase: int) -> Any:
        ks = keys("similarItems", mode, n, phase)
        return lambda i: graphql_request(HOST, port, SIM, {"i": ks[i][0], "n": ks[i][1]}, token)

    def interact(port: int, mode: str, n: int, phase: int) -> Any:
        rng = random.Random(seed * 1000 + phase)
        return lambda i: graphql_request(HOST, port, REC_INT, {"in": {
            "userId": f"{run}-u{rng.randint(1, 500)}", "itemId": item_id(rng, items),
            "type": rng.choice(["VIEW", "CLICK", "PURCHASE"]), "dwellSeconds": 12.5}}, token)

    return {"recommendations": rec, "similarItems": sim, "recordInteraction": interact}


def cache_lookups(port: int) -> dict[tuple[str, str], float]:
    """The API's result-cache lookups so far, summed over its workers: (operation, hit|miss) -> n
    (none when ``/metrics`` does not answer within a minute: a saturated machine; the phase's
    other figures still count)."""
    try:
        return parse_cache_lookups(httpx.get(f"http://{HOST}:{port}/metrics", timeout=60, headers={"Connection": "close"}).text)
    except httpx.HTTPError:
        return {}


def parse_cache_lookups(text: str) -> dict[tuple[str, str], float]:
    """``graphrec_result_cache_lookups_total`` samples of a Prometheus text exposition, summed by
    (operation, result)."""
    import re

    out: dict[tuple[str, str], float] = {}
    for m in re.finditer(r'^graphrec_result_cache_lookups_total\{([^}]*)\} ([0-9.e+]+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = (labels.get("operation", ""), labels.get("result", ""))
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def hit_ratio(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], op: str) -> tuple[int, int, float | None]:
    hits = int(after.get((op, "hit"), 0) - before.get((op, "hit"), 0))
    misses = int(after.get((op, "miss"), 0) - before.get((op, "miss"), 0))
    return hits, misses, (round(hits / (hits + misses), 4) if hits + misses else None)


def remove_bench_users(store: Any, run: str) -> int:
    """Remove the users (and interactions) ``recordInteraction`` wrote as ``<run>-u<n>`` into the
    demo graph, and set the graph's clock back: left in, they changed the next training's data and
    its evaluation (a retrained GNN was then rejected for an NDCG@10 drop caused by bench clicks).
    Only this run's users: the prefix carries the run's start time."""
    removed = 0
    while n := store.write("bench/remove_users", prefix=f"{run}-u", limit=1000)[0]["removed"]:
        removed += n
    store.write("bench/reset_clock")
    return removed


def neo4j_pid() -> int | None:
    from graphrec.core.neo4j_server import Neo4jServer

    return Neo4jServer(load_settings()).pid()


def neo4j_rss_mb() -> float:
    pid = neo4j_pid()
    return tree_rss_mb(pid) if pid else float("nan")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for op, mode in sorted({(r["op"], r.get("mode", "")) for r in rows}):
        rs = sorted((r for r in rows if r["op"] == op and r.get("mode", "") == mode), key=lambda r: r["rate"])
        name = f"{op} {mode}".strip()
        ax.plot([r["rate"] for r in rs], [r["p99_ms"] for r in rs], marker="o", label=f"{name} p99")
        ax.plot([r["rate"] for r in rs], [r["p50_ms"] for r in rs], marker=".", linestyle="--", label=f"{name} p50")
    ax.set_xlabel("offered rate (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title("graphrec serve: latency against arrival rate (open loop, loopback)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,100,200", help="comma-separated arrival rates (req/s)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--ops", default="recommendations,similarItems,recordInteraction")
    ap.add_argument("--modes", default="computed,traffic",
                    help="for recommendations and similarItems: computed (keys never repeat) and/or traffic (Zipf mix, cache on)")
    ap.add_argument("--workers", type=int, default=None, help="API worker processes (default: config api.workers)")
    ap.add_argument("--users", type=int, default=943)
    ap.add_argument("--items", type=int, default=1682)
    ap.add_argument("--ids", choices=sorted(ID_FORMATS), default="movielens", help="the dataset's id format")
    ap.add_argument("--label", default="MovieLens-100K (the demo graph)", help="what graph this ran against, for the report")
    ap.add_argument("--no-warmup", action="store_true",
                    help="no 5 s warm-up at 20 req/s before each operation (see p99_ms_by_10s of the first rate)")
    ap.add_argument("--first", type=int, default=None,
                    help="computed mode at one page size: result cache off in the API, ids drawn uniformly")
    ap.add_argument("--ready-timeout", type=float, default=300.0, help="seconds the API may take to start")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/serve.json"))
    a = ap.parse_args()
    settings = load_settings()
    workers = a.workers or settings.api.workers
    port = free_port()
    token = None
    if "recordInteraction" in a.ops:
        from api.auth import create_key, revoke_key
        from graphrec.core.graph.store import GraphStore

        with GraphStore.from_settings(settings) as store:
            kid, token = create_key(store, ["read", "write"], "bench.serve")
    env = dict(os.environ, GRAPHREC_API_ANONYMOUS_READ="true", GRAPHREC_API_RATE_LIMIT_PER_S="100000",
               GRAPHREC_API_RATE_LIMIT_BURST="100000")
    modes = [m for m in a.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode {bad[0]!r}: one of {', '.join(MODES)}")
    if a.first is not None:
        if modes != ["computed"]:
            raise SystemExit("--first measures computed answers: use it with --modes computed")
        env["GRAPHREC_ENGINE_RESULT_CACHE_SIZE"] = "0"
    # The API's own log (slow answers with their stage timings, warnings) next to the report.
    log_path = a.out.with_suffix(".api.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    api_log = open(log_path, "wb")  # noqa: SIM115 - closed after the server
    try:
        server = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers",
                                   str(workers)], env=env, stdout=api_log, stderr=subprocess.STDOUT)
    except BaseException:
        api_log.close()
        raise
    run = f"bench-{int(time.time())}"
    ops = make_ops(a.users, a.items, 1, token, run, a.ids, a.first)
    rows: list[dict[str, Any]] = []
    try:
        # Every worker must be ready (each answers /readyz with its pid), not just the first: a
        # worker still reading a large catalogue competes for the CPU the measured one needs.
        t_ready = time.monotonic()
        ready_pids: set[int] = set()
        while len(ready_pids) < workers:
            try:
                r = httpx.get(f"http://{HOST}:{port}/readyz", timeout=1, headers={"Connection": "close"})
                if r.status_code == 200:
                    ready_pids.add(r.json().get("pid", 0))
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - t_ready > a.ready_timeout:
                api_log.flush()
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                why = "exited" if server.poll() is not None else f"was not ready in {a.ready_timeout:.0f} s"
                raise SystemExit(f"the API {why} ({len(ready_pids)} of {workers} workers ready); "
                                 f"the end of {log_path}:\n{tail}")
            time.sleep(0.05)
        ready_s = round(time.monotonic() - t_ready, 1)
        print(f"API ready in {ready_s} s", flush=True)
        rss_start = tree_rss_mb(server.pid)
        phase = 0
        for op in a.ops.split(","):
            if not a.no_warmup:  # caches, connections; --no-warmup measures the first seconds after /readyz
                phase += 1
                asyncio.run(open_loop(HOST, port, ops[op](port, modes[0], 100, phase), 20, 5))
            for mode in (modes if op in CACHED_OPS else ["-"]):
                for rate in [float(r) for r in a.rates.split(",")]:
                    phase += 1
                    n = int(rate * a.duration)
                    make = ops[op](port, mode, n, phase)
                    looked = cache_lookups(port)
                    cpu0 = (tree_cpu_s(server.pid), tree_cpu_s(neo4j_pid()))
                    out = asyncio.run(open_loop(HOST, port, make, rate, a.duration))
                    cpu1 = (tree_cpu_s(server.pid), tree_cpu_s(neo4j_pid()))
                    hits, misses, ratio = hit_ratio(looked, cache_lookups(port), op)
                    lat = out.latency_ms
                    row = {"op": op, "mode": mode, "rate": rate, "duration_s": a.duration, "requests": out.sent,
                           "cache_hits": hits, "cache_misses": misses, "cache_hit_ratio": ratio, "errors": out.errors, "degraded": out.degraded,
                           "graphql_errors": out.graphql_errors, "status": out.status,
                           "achieved_rate": round(out.sent / out.elapsed_s, 1), "p50_ms": round(pct(lat, 50), 2),
                           "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat), 2),
                           "api_rss_mb": tree_rss_mb(server.pid), "neo4j_rss_mb": neo4j_rss_mb(),
                           "api_cpu_ms_per_request": round((cpu1[0] - cpu0[0]) * 1000 / out.sent, 2),
                           "neo4j_cpu_ms_per_request": round((cpu1[1] - cpu0[1]) * 1000 / out.sent, 2),
                           "p99_ms_by_10s": p99_by_window(out, 10.0)}
                    rows.append(row)
                    hr = "-" if ratio is None else f"{ratio:.3f}"
                    print(f"{op:18s} {mode:8s} {rate:5.0f} req/s x {a.duration:.0f}s: p50 {row['p50_ms']:7.2f} ms  "
                          f"p99 {row['p99_ms']:8.2f} ms  max {row['max_ms']:8.2f} ms  cache hits {hr}  errors {row['errors']}  "
                          f"degraded {row['degraded']}  "
                          f"achieved {row['achieved_rate']} req/s  API {row['api_rss_mb']} MB  Neo4j {row['neo4j_rss_mb']} MB  "
                          f"CPU/request API {row['api_cpu_ms_per_request']} ms Neo4j {row['neo4j_cpu_ms_per_request']} ms", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        api_log.close()
        if token:
            with GraphStore.from_settings(settings) as store:
                revoke_key(store, kid)
                removed = remove_bench_users(store, run)
            print(f"removed the {removed} users recordInteraction wrote (and their interactions)")
    plot(rows, a.out.with_suffix(".png"))
    write_report(a.out, {"benchmark": "serve", "graph": a.label, "users": a.users, "items": a.items, "workers": workers, "api_ready_s": ready_s, "api_rss_start_mb": rss_start,
                         "modes": modes, "first": a.first, "targets": TARGETS.get(size_of(a.ids, a.items), {}), "runs": rows})


if __name__ == "__main__":
    main()
