"""Soak: mixed traffic at a steady rate against a real API process, with Neo4j restarted once in
the middle. Shows that the API's memory stays bounded, that no request fails outside the window
in which the store is away, and that no acknowledged interaction is lost.

    python -m bench.soak                  # 20 minutes at 30 req/s (make soak)
    python -m bench.soak --minutes 2      # a quick run

1. A scratch Neo4j under ``var/soak`` on free ports (never the demo's), loaded with a seeded
   synthetic catalogue; neighbours materialised; a small GNN trained and published to the Edge
   index (``--no-train`` skips it); one API key with read and write scopes.
2. One API process, ``graphrec serve --workers 1``, with the shipped defaults (request budgets,
   breaker, caches); only the rate limit is lifted for the benchmark's single key.
3. Open-loop traffic (request i at t0 + i/rate, whether or not earlier ones finished): 60 %
   ``recommendations``, 20 % ``similarItems``, 20 % ``recordInteraction`` with unique keys.
4. At half time Neo4j is stopped (SIGTERM), left down ``--down-seconds``, and started again.
   The degraded window runs from the stop to the first whole (non-degraded) answer after the
   restart; errors are counted inside and outside it.
5. The API's RSS is sampled every second: start (after a warm-up), peak and end are reported.
6. After the traffic, once the API has replayed its journal: the interactions acknowledged by the
   API are looked up by key in Neo4j (accepted vs found, duplicates, lost).

Writes ``bench/reports/soak.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import scratch_neo4j, tree_rss_mb, write_report
from bench.loadgen import Pool, graphql_request
from graphrec.config import Settings, load_settings
from graphrec.testing.server import free_port

HOST = "127.0.0.1"
REC = "query($u: ID!) { recommendations(userId: $u, first: 10) { degraded degradedReasons items { item { id title } } } }"
SIM = "query($i: ID!) { similarItems(itemId: $i, first: 10) { degraded degradedReasons items { item { id title } } } }"
RECORD = "mutation($in: InteractionInput!) { recordInteraction(input: $in) { key created stored } }"
MIX = (("recommendations", 0.6), ("similarItems", 0.2), ("recordInteraction", 0.2))


@dataclass
class Done:
    """One request as the client saw it (times in seconds since the traffic started)."""

    op: str
    sent: float
    t: float
    status: int  # 0: no HTTP answer in time
    ok: bool  # HTTP 200 and no GraphQL error
    degraded: bool = False
    reasons: tuple[str, ...] = ()  # degradedReasons
    stored: str | None = None  # recordInteraction: DIRECT or JOURNAL
    key: str | None = None


def prepare(s: Settings, users: int, items: int, interactions: int, train: bool) -> str:
    """Load the catalogue, materialise neighbours, train (optional); returns a read/write API key."""
    from api.auth import create_key
    from gnn.config import GNNConfig
    from gnn.export import export_snapshot
    from gnn.lifecycle import run_pipeline
    from graphrec.graph import schema
    from graphrec.graph.store import GraphStore
    from graphrec.neighbours import refresh
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec
    from loaders.writer import GraphWriter

    for d in ("journal", "models", "vectors", "locks", "logs"):
        shutil.rmtree(s.var_dir / d, ignore_errors=True)
    t0 = time.perf_counter()
    cat = SyntheticCatalog(SyntheticSpec(users=users, items=items, interactions=interactions, categories=12, seed=7))
    with GraphStore.from_settings(s) as store:
        schema.apply(store)
        w = GraphWriter(store, batch_size=10_000, progress=False)
        w.users(cat.users())
        w.items(cat.items())
        w.interactions(cat.interaction_batches())
        refresh(store, export_snapshot(store, progress=False), k=20, progress=False)
        _, key = create_key(store, ["read", "write"], "bench.soak")
    print(f"catalogue: {users:,} users, {items:,} items, {interactions:,} interactions "
          f"({time.perf_counter() - t0:.0f}s with neighbours)", flush=True)
    if train:
        t0 = time.perf_counter()
        small = GNNConfig(dim=32, hidden=64, epochs=4, patience=4, batch_users=128, walks_per_item=30, neighbors=10,
                          easy_negatives=16, hard_negatives_max=4, hard_negative_ranks=(10, 100), examples_per_user=2)
        out = run_pipeline(s.model_copy(update={"gnn": small}), progress=False, evaluate_pipeline=False)
        print(f"GNN {out['version']} {out['status']} ({time.perf_counter() - t0:.0f}s)", flush=True)
    return key


def start_api(s: Settings, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(s.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(s.neo4j.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(s.neo4j.http_port),
                "GRAPHREC_API_RATE_LIMIT_PER_S": "100000", "GRAPHREC_API_RATE_LIMIT_BURST": "100000"})
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers", "1"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the API did not become ready; see {log}")


def _parse(op: str, status: int, body: bytes) -> tuple[bool, tuple[str, ...], str | None, str | None]:
    """(ok, degraded reasons, stored, key) of one answer."""
    if status != 200:
        return False, (), None, None
    try:
        doc = json.loads(body)
    except ValueError:
        return False, (), None, None
    data = doc.get("data") or {}
    if doc.get("errors") or not data.get(op):
        return False, (), None, None
    d = data[op]
    if op == "recordInteraction":
        return True, (), d["stored"], d["key"]
    return True, tuple(d["degradedReasons"]) if d["degraded"] else (), None, None


async def traffic(port: int, key: str, seconds: float, rate: float, users: int, items: int, run_id: str,
                  t0: float, on_tick: Any) -> list[Done]:
    """Open-loop mixed traffic from ``t0`` (monotonic); ``on_tick(elapsed)`` runs about every second."""
    pool = Pool(HOST, port)
    rng = random.Random(7)
    done: list[Done] = []
    pending: set[asyncio.Task[None]] = set()
    ops, weights = zip(*MIX, strict=True)

    async def one(op: str, raw: bytes, sent: float, ikey: str | None) -> None:
        try:
            status, body = await asyncio.wait_for(pool.request(raw), 10.0)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status, body = 0, b""
        ok, reasons, stored, k = _parse(op, status, body)
        done.append(Done(op, sent, time.monotonic() - t0, status, ok, bool(reasons), reasons, stored, k or ikey))

    next_tick = 0.0
    for i in range(int(seconds * rate)):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.monotonic() - t0
        if now >= next_tick:
            next_tick = now + 1.0
            on_tick(now)
        op = rng.choices(ops, weights)[0]
        ikey = None
        if op == "recommendations":
            raw = graphql_request(HOST, port, REC, {"u": f"u{rng.randrange(users)}"}, key)
        elif op == "similarItems":
            raw = graphql_request(HOST, port, SIM, {"i": f"i{rng.randrange(items)}"}, key)
        else:
            ikey = f"soak-{run_id}-{i}"
            raw = graphql_request(HOST, port, RECORD, {"in": {
                "userId": f"u{rng.randrange(users)}", "itemId": f"i{rng.randrange(items)}",
                "type": rng.choice(["VIEW", "CLICK", "PURCHASE"]), "dwellSeconds": 12.5, "key": ikey}}, key)
        task = asyncio.create_task(one(op, raw, now, ikey))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    pool.close()
    return done


def drained(port: int) -> bool:
    """The API answers ready and has replayed its whole journal."""
    try:
        r = httpx.get(f"http://{HOST}:{port}/readyz", timeout=10)
        return r.status_code == 200 and r.json()["journal_pending_bytes"] == 0
    except httpx.HTTPError:
        return False


def summarise(done: list[Done], found: list[str], marks: dict[str, float], rss: list[tuple[float, float]],
              rss_end: float, warmup_s: float) -> dict[str, Any]:
    # The degraded window: from the stop to the first whole answer to a read sent after the restart.
    stop_at, up_at = marks.get("stop", float("nan")), marks.get("up", float("inf"))
    whole = sorted((d for d in done if d.op != "recordInteraction" and d.sent >= up_at and d.ok and not d.degraded),
                   key=lambda d: d.sent)
    window = (stop_at, whole[0].t if whole else float("inf"))
    inside = [d for d in done if window[0] <= d.sent <= window[1]]
    outside = [d for d in done if not window[0] <= d.sent <= window[1]]
    writes = [d for d in done if d.op == "recordInteraction" and d.ok]
    accepted, found_set = {d.key for d in writes}, set(found)
    warm = [m for t, m in rss if t >= warmup_s] or [m for _, m in rss]
    return {
        "requests": len(done), "served_ok": sum(d.ok for d in done), "errors": sum(not d.ok for d in done),
        "errors_outside_degraded_window": sum(not d.ok for d in outside),
        "errors_inside_degraded_window": sum(not d.ok for d in inside),
        "degraded_answers": sum(d.degraded for d in done),
        "degraded_answers_outside_window": sum(d.degraded for d in outside),
        "degraded_reasons_outside_window": dict(Counter(r for d in outside for r in d.reasons)),
        # When they happened (10-s buckets of send time): budget overruns on a busy machine, a cold
        # cache after the restart, or something that lasts.
        "degraded_outside_window_by_10s": dict(sorted(Counter(int(d.sent // 10) * 10 for d in outside if d.degraded).items())),
        "degraded_window_s": [round(window[0], 1), round(window[1], 1)],
        "neo4j_restart": {"at_s": round(stop_at, 1), "stopping_s": round(marks.get("down", 0) - stop_at, 1),
                          "down_s": round(marks.get("start", 0) - marks.get("down", 0), 1),
                          "starting_s": round(marks.get("up", 0) - marks.get("start", 0), 1)},
        "by_op": {op: {"requests": sum(d.op == op for d in done), "errors": sum(d.op == op and not d.ok for d in done),
                       "degraded": sum(d.op == op and d.degraded for d in done)} for op, _ in MIX},
        "interactions": {"accepted": len(writes), "direct": sum(d.stored == "DIRECT" for d in writes),
                         "journal": sum(d.stored == "JOURNAL" for d in writes),
                         "found_in_neo4j": len(found_set), "duplicates": len(found) - len(found_set),
                         "lost": len(accepted - found_set), "found_not_acknowledged": len(found_set - accepted)},
        "api_rss_mb": {"start": warm[0] if warm else None, "peak": max((m for _, m in rss), default=None),
                       "end": round(rss_end, 1)},
        "rss_series": rss[:: max(1, len(rss) // 240)],
        "status_codes": {str(c): sum(d.status == c for d in done) for c in sorted({d.status for d in done})},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="length of the traffic (default 20)")
    ap.add_argument("--rate", type=float, default=30.0, help="requests per second, all operations together")
    ap.add_argument("--down-seconds", type=float, default=10.0, help="how long Neo4j stays down at half time")
    ap.add_argument("--warmup-seconds", type=float, default=20.0, help="traffic before the start RSS is taken")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--interactions", type=int, default=50_000)
    ap.add_argument("--no-train", action="store_true", help="no GNN: recommendations without the vector index")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/soak.json"))
    a = ap.parse_args()
    seconds = a.minutes * 60
    run_id = str(int(time.time()))
    with scratch_neo4j(load_settings(), "soak", free_port(), free_port(), heap="1g", pagecache="512m") as s:
        from pydantic import SecretStr

        from graphrec.graph.store import GraphStore
        from graphrec.neo4j_server import Neo4jServer

        server = Neo4jServer(s)
        s = s.model_copy(update={"var_dir": s.var_dir.resolve(),
                                 "neo4j": s.neo4j.model_copy(update={"password": SecretStr(server.password())})})
        key = prepare(s, a.users, a.items, a.interactions, not a.no_train)
        api, port = start_api(s, s.var_dir / "api.log")
        rss: list[tuple[float, float]] = []
        marks: dict[str, float] = {}  # seconds since the traffic started
        restarter: list[asyncio.Task[None]] = []
        t0 = time.monotonic()

        async def restart_store() -> None:
            marks["stop"] = time.monotonic() - t0
            await asyncio.to_thread(server.stop)
            marks["down"] = time.monotonic() - t0
            await asyncio.sleep(a.down_seconds)
            marks["start"] = time.monotonic() - t0
            await asyncio.to_thread(server.start)
            marks["up"] = time.monotonic() - t0

        def on_tick(now: float) -> None:
            rss.append((round(now, 1), round(tree_rss_mb(api.pid), 1)))
            if now >= seconds / 2 and not restarter:
                restarter.append(asyncio.create_task(restart_store()))

        async def go() -> list[Done]:
            out = await traffic(port, key, seconds, a.rate, a.users, a.items, run_id, t0, on_tick)
            for t in restarter:
                await t
            return out

        print(f"soak: {a.minutes:g} min at {a.rate:g} req/s against API pid {api.pid}; "
              f"Neo4j restarted at {seconds / 2:.0f} s", flush=True)
        try:
            t0 = time.monotonic()
            done = asyncio.run(go())
            traffic_s = time.monotonic() - t0
            deadline = time.monotonic() + 180
            while not drained(port) and time.monotonic() < deadline:
                time.sleep(1)
            rss_end = tree_rss_mb(api.pid)
            with GraphStore.from_settings(s) as store:
                found = [r["key"] for r in store.run_text(
                    "MATCH ()-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->() WHERE r.key STARTS WITH $prefix "
                    "RETURN r.key AS key", prefix=f"soak-{run_id}-")]
        finally:
            api.terminate()
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                api.kill()
    report = {"benchmark": "soak", "minutes": a.minutes, "rate": a.rate, "traffic_seconds": round(traffic_s, 1),
              "catalogue": {"users": a.users, "items": a.items, "interactions": a.interactions, "gnn": not a.no_train},
              **summarise(done, found, marks, rss, rss_end, a.warmup_seconds)}
    i, r, w, n = report["interactions"], report["api_rss_mb"], report["degraded_window_s"], report["neo4j_restart"]
    ops = ", ".join(f"{op} {v['requests']:,}" for op, v in report["by_op"].items())
    print(f"requests served: {report['served_ok']:,} of {report['requests']:,} ({ops})")
    print(f"errors: {report['errors']} ({report['errors_outside_degraded_window']} outside the degraded window "
          f"{w[0]}-{w[1]} s: Neo4j stopping {n['stopping_s']} s, down {n['down_s']} s, starting {n['starting_s']} s)")
    print(f"degraded answers: {report['degraded_answers']} ({report['degraded_answers_outside_window']} outside the "
          f"window: {report['degraded_reasons_outside_window'] or 'none'})")
    print(f"interactions accepted: {i['accepted']:,} ({i['direct']:,} direct, {i['journal']:,} journalled); "
          f"found in Neo4j: {i['found_in_neo4j']:,}; duplicates: {i['duplicates']}; lost: {i['lost']}")
    print(f"API RSS: start {r['start']} MB (after {a.warmup_seconds:g} s of traffic), peak {r['peak']} MB, end {r['end']} MB")
    write_report(a.out, report)


if __name__ == "__main__":
    main()
