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
7. The hostile mix (``--no-hostile`` turns it off): the first third of the traffic is the quiet
   phase; from then on, beside the same traffic, clients that mean harm or are careless: sockets
   that never finish their headers (a byte now and then), oversized bodies and headers, malformed
   requests (bad JSON, a JSON array, GET and a wrong content type on /graphql), floods of random
   unknown keys, reused idempotency keys through the API, and, while Neo4j is down, poison lines
   written straight into the journal (a key reused for another user, a value out of range, a line
   that is not JSON). Reported: legitimate p99 in the quiet phase and in the hostile phase (outside
   the degraded window), the hostile requests by answer, and ``/readyz`` sampled every second,
   checked against what is known (Neo4j down: it must not say ready; healthy: the reads answered
   around it must be whole), and its dead-letter count against the poison lines written.

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
from graphrec.core.config import Settings, load_settings
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
    from gnn.lifecycle import run_pipeline
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.gnn_config import GNNConfig
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
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


def _random_key(rng: random.Random) -> str:
    return f"grk_{rng.getrandbits(48):012x}_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
                                                    for _ in range(43))


async def _raw(port: int, data: bytes, timeout: float = 10.0) -> int:
    """Send raw bytes as one request; the HTTP status of the answer (0: none in time, or reset)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(data)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return 0
    finally:
        writer.close()


def _post(port: int, body: bytes, ctype: str = "application/json", extra: str = "", key: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST /graphql HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {ctype}\r\n{auth}{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def hostile(port: int, key: str, journal_dir: Path, t0: float, start_s: float, end_s: float,
                  marks: dict[str, float], users: int, items: int, out: dict[str, Any], slow_sockets: int = 50) -> None:
    """The hostile mix from ``start_s`` to ``end_s`` (seconds since ``t0``): see the module's doc.
    Counts answers by kind and status in ``out["hostile"]``; poison lines written in ``out["poison"]``."""
    from graphrec.engine.journal import Journal

    rng = random.Random(11)
    counts: Counter[str] = Counter()
    out["hostile"], out["poison"] = counts, []
    await asyncio.sleep(max(0.0, t0 + start_s - time.monotonic()))
    socks: list[asyncio.StreamWriter] = []

    async def slow() -> None:
        """Sockets that start a request and never finish its headers (a byte every few seconds)."""
        for _ in range(slow_sockets):
            try:
                _, w = await asyncio.open_connection(HOST, port)
                w.write(f"POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
                socks.append(w)
            except OSError:
                counts["slow_socket_refused"] += 1
        counts["slow_sockets_opened"] = len(socks)
        while time.monotonic() - t0 < end_s:
            await asyncio.sleep(5.0)
            for w in list(socks):
                try:
                    w.write(b"a")
                    await w.drain()
                except OSError:
                    socks.remove(w)
                    counts["slow_socket_closed_by_server"] += 1

    async def every(period: float, fn: Any) -> None:
        while time.monotonic() - t0 < end_s:
            await fn()
            await asyncio.sleep(period)

    async def oversized() -> None:
        big = b'{"query": "' + b"x" * 1_000_000 + b'"}'
        status = await _raw(port, _post(port, big, key=key))
        counts[f"oversized_body:{status}"] += 1
        header = "X-Big: " + "y" * 65_536 + "\r\n"
        status = await _raw(port, _post(port, b"{}", extra=header, key=key))
        counts[f"oversized_header:{status}"] += 1

    async def malformed() -> None:
        for name, raw in (("bad_json", _post(port, b'{"query": ', key=key)),
                          ("json_array", _post(port, b'[{"query": "{ popularItems { id } }"}]', key=key)),
                          ("wrong_content_type", _post(port, b"query=1", "text/plain", key=key)),
                          ("get_graphql", f"GET /graphql HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())):
            counts[f"{name}:{await _raw(port, raw)}"] += 1

    async def flood() -> None:
        body = json.dumps({"query": "{ popularItems(first: 1) { id } }"}).encode()
        got = await asyncio.gather(*(_raw(port, _post(port, body, key=_random_key(rng))) for _ in range(10)))
        for status in got:
            counts[f"unauthenticated:{status}"] += 1

    async def reused_keys() -> None:
        """A careless client: one idempotency key for two users (the second must be refused)."""
        k = f"reused-{rng.getrandbits(32):08x}"
        item = f"i{rng.randrange(items)}"
        async with httpx.AsyncClient(timeout=10) as client:
            for n, u in enumerate((f"u{rng.randrange(users)}", f"x{rng.randrange(users)}")):
                try:
                    r = await client.post(f"http://{HOST}:{port}/graphql", headers={"Authorization": f"Bearer {key}"},
                                          json={"query": RECORD, "variables": {"in": {
                                              "userId": u, "itemId": item, "type": "CLICK", "key": k}}})
                    errs = r.json().get("errors") or []
                    got = errs[0].get("extensions", {}).get("code") if errs else "ok"
                    counts[f"reused_key_{'first' if n == 0 else 'second'}:{r.status_code}:{got}"] += 1
                except (httpx.HTTPError, ValueError):
                    counts[f"reused_key_{'first' if n == 0 else 'second'}:no_answer"] += 1

    async def poison() -> None:
        """While Neo4j is down, lines that can never be written go straight into the journal (as an
        older API, or a hand edit, would have left them)."""
        while time.monotonic() - t0 < end_s:
            if "down" in marks and "start" not in marks and not out["poison"]:
                j, now = Journal(journal_dir), time.time()
                base = {"dwell": None, "session": None, "ts": now, "type": "CLICKED", "item": f"i{rng.randrange(items)}"}
                lines = [{**base, "key": "poison-1", "user": "p-a", "value": None},
                         {**base, "key": "poison-1", "user": "p-b", "value": None},  # the key, another user
                         {**base, "key": "poison-2", "user": "p-c", "value": -95464.0}]  # no CLICK has that value
                for line in lines:
                    await asyncio.to_thread(j.append, line)
                with open(j.path, "ab") as fh:
                    fh.write(b"this is not json\n")
                out["poison"] = [*lines, "not json"]
            await asyncio.sleep(0.5)

    await asyncio.gather(slow(), every(1.0, oversized), every(1.0, malformed), every(0.5, flood),
                         every(2.0, reused_keys), poison())
    for w in socks:
        w.close()


async def sample_readyz(port: int, t0: float, seconds: float, samples: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() - t0 < seconds:
            t = time.monotonic() - t0
            try:
                r = await client.get(f"http://{HOST}:{port}/readyz")
                d = r.json()
                samples.append({"t": round(t, 2), "status": r.status_code, "ready": d.get("ready"),
                                "degraded": d.get("degraded"), "reasons": d.get("degraded_reasons"),
                                "breaker": (d.get("breakers") or {}).get("neo4j"),
                                "pending": d.get("journal_pending_bytes"),
                                "dead_lettered": (d.get("journal") or {}).get("dead_lettered")})
            except (httpx.HTTPError, ValueError):
                samples.append({"t": round(t, 2), "status": 0})
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0 - t)))


def p99_ms(done: list[Done]) -> float | None:
    lat = sorted((d.t - d.sent) * 1000 for d in done)
    return round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None


def readyz_truth(samples: list[dict[str, Any]], done: list[Done], marks: dict[str, float]) -> dict[str, Any]:
    """/readyz against what is known: while Neo4j is down (stopped to started) no sample may say
    ready; a sample that says healthy (ready, not degraded) must not sit among reads answered
    degraded by Neo4j (sent within a second of it)."""
    down = (marks.get("down", float("inf")), marks.get("start", float("-inf")))
    reads = [d for d in done if d.op != "recordInteraction"]
    ready_while_down = [x for x in samples if down[0] <= x["t"] <= down[1] and x.get("ready")]
    healthy = [x for x in samples if x.get("ready") and not x.get("degraded")]
    lies = [x for x in healthy
            if sum("neo4j" in d.reasons for d in reads if abs(d.sent - x["t"]) <= 1.0) >= 2]
    return {"samples": len(samples), "no_answer": sum(x["status"] == 0 for x in samples),
            "said_ready_while_neo4j_down": len(ready_while_down),
            "said_healthy_amid_neo4j_degraded_reads": len(lies),
            "said_not_ready": sum(x["status"] != 200 for x in samples),
            "said_degraded": sum(bool(x.get("degraded")) for x in samples),
            "last": samples[-1] if samples else None}


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
    ap.add_argument("--no-hostile", action="store_true", help="normal traffic only (no hostile mix)")
    a = ap.parse_args()
    seconds = a.minutes * 60
    run_id = str(int(time.time()))
    with scratch_neo4j(load_settings(), "soak", free_port(), free_port(), heap="1g", pagecache="512m") as s:
        from pydantic import SecretStr

        from graphrec.core.graph.store import GraphStore
        from graphrec.core.neo4j_server import Neo4jServer

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

        hostile_out: dict[str, Any] = {}
        readyz: list[dict[str, Any]] = []

        async def go() -> list[Done]:
            side = [asyncio.create_task(sample_readyz(port, t0, seconds, readyz))]
            if not a.no_hostile:
                side.append(asyncio.create_task(hostile(port, key, s.var_dir / "journal", t0, seconds / 3, seconds, marks,
                                                        a.users, a.items, hostile_out)))
            out = await traffic(port, key, seconds, a.rate, a.users, a.items, run_id, t0, on_tick)
            for t in restarter:
                await t
            await asyncio.gather(*side)
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
            final = httpx.get(f"http://{HOST}:{port}/readyz", timeout=10).json()
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
    # The hostile mix: legitimate latency in the quiet phase (after the warm-up, before the mix)
    # and in the hostile phase outside the degraded window; /readyz against what is known.
    w0, w1 = report["degraded_window_s"]
    quiet = [d for d in done if a.warmup_seconds <= d.sent < seconds / 3 and d.ok]
    loud = [d for d in done if d.sent >= seconds / 3 and not w0 <= d.sent <= w1 and d.ok]
    report["hostile"] = {
        "enabled": not a.no_hostile, "answers": dict(sorted(hostile_out.get("hostile", Counter()).items())),
        "poison_lines_written": len(hostile_out.get("poison", [])),
        "legit_p99_ms": {"quiet": p99_ms(quiet), "hostile_outside_window": p99_ms(loud),
                         "ratio": round(p99_ms(loud) / p99_ms(quiet), 2) if quiet and loud else None},
        "readyz": {**readyz_truth(readyz, done, marks), "final": final},
    }
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
    h = report["hostile"]
    if h["enabled"]:
        rz = h["readyz"]
        print(f"hostile mix: {h['answers']}")
        print(f"legitimate p99: quiet {h['legit_p99_ms']['quiet']} ms, hostile phase {h['legit_p99_ms']['hostile_outside_window']} ms "
              f"(x{h['legit_p99_ms']['ratio']})")
        print(f"/readyz: {rz['samples']} samples, {rz['said_ready_while_neo4j_down']} said ready while Neo4j was down, "
              f"{rz['said_healthy_amid_neo4j_degraded_reads']} said healthy amid degraded reads; at the end: "
              f"dead-lettered {rz['final'].get('journal', {}).get('dead_lettered')} of {h['poison_lines_written']} poison "
              f"lines written (one of them is the first use of its key: it lands), pending {rz['final'].get('journal_pending_bytes')} bytes")
    write_report(a.out, report)


if __name__ == "__main__":
    main()
