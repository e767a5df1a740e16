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
   phase; from then on, beside the same traffic, clients that mean harm or are careless, from a
   process of their own (their work never delays the legitimate client's event loop) and from
   another address, 127.0.0.2 (attackers are not on the legitimate clients' machine; the API's
   per-address limits must meet them, not the legitimate traffic): 50 sockets that never finish
   their headers (a byte every 5 s; each one the server closes is replaced at once), oversized
   bodies and headers, malformed requests (bad JSON, a JSON array, GET and a wrong content type on
   /graphql), floods of random unknown keys, reused idempotency keys through the API, and, while
   Neo4j is down, poison lines written straight into the journal (a key reused for another user, a
   value out of range, a line that is not JSON). One probe comes from the legitimate address on
   purpose, reported apart (``shared_address_flood``): made-up keys at twice the address's
   refused-credentials budget, as a neighbour behind the same NAT would send them; the legitimate
   key must still pass. The API's connections by peer address are sampled to show it sees both.
8. Reported, by send time: legitimate p50/p99 (of the answers that were ok) and errors per phase:
   ``quiet`` (after the warm-up, before the mix), ``hostile_before_restart`` (the mix's start to
   the Neo4j stop), ``hostile_after_recovery`` (from ``--settle-seconds`` after the degraded
   window's end to the end: the restart and the minute of a cold Neo4j after it are left out,
   since the quiet phase has no restart) and ``hostile_whole`` (nothing left out); each with its
   ratio to quiet. Per 30-s bucket (``buckets_30s``): the same figures and the cores busy on the
   machine, in the API, in Neo4j, in the load generators and elsewhere (other programs sharing the
   machine: read a phase's latency beside them). The legitimate errors by status and message per
   phase; the hostile requests by answer; ``/readyz`` sampled every second, checked against what
   is known (Neo4j down: it must not say ready; healthy: the reads answered around it must be
   whole), and its dead-letter count against the poison lines written.

Writes ``bench/reports/soak.json`` and prints the figures. One module over 400 lines: one run,
end to end (its scratch stack, the traffic, the restart, the audit of what was acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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

from bench.common import scratch_neo4j, tree_cpu_s, tree_rss_mb, write_report
from bench.loadgen import Pool, graphql_request
from graphrec.core.config import Settings, load_settings
from graphrec.testing.server import free_port

HOST = "127.0.0.1"  # the API, and the legitimate traffic's own address
# The hostile clients connect from another loopback address (Linux routes all of 127/8 to lo), as
# attackers on other machines would: the API's per-address limits (connections per client,
# refused credentials) then meet them, not the legitimate traffic. One probe, the shared-address
# flood, comes from HOST on purpose (a neighbour behind the same NAT) and is reported apart.
HOSTILE = "127.0.0.2"
BUCKET_S = 30  # the width of the latency/CPU buckets in the report
REC = "query($u: ID!) { recommendations(userId: $u, first: 10) { degraded degradedReasons items { item { id title } } } }"
SIM = "query($i: ID!) { similarItems(itemId: $i, first: 10) { degraded degradedReasons items { item { id title } } } }"
RECORD = "mutation($in: InteractionInput!) { recordInteraction(input: $in) { key created stored } }"
MIX: tuple[tuple[str, float], ...] = (("recommendations", 0.6), ("similarItems", 0.2), ("recordInteraction", 0.2))


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
    error: str | None = None  # not ok: the first error's code and message (or why there was none)


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
        refresh(store, export_snapshot(store, progress=False), s.interactions.score_weights, k=20, progress=False)
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


def _error(status: int, body: bytes) -> str:
    """What an answer that is not ok says: ``CODE: message`` of its first error."""
    if status == 0:
        return body.decode() or "no answer"
    try:
        doc = json.loads(body)
        e = (doc.get("errors") or [{}])[0]
        return f"{(e.get('extensions') or {}).get('code', '?')}: {e.get('message', '')}"[:160]
    except (ValueError, AttributeError, IndexError):
        return f"not JSON: {body[:80]!r}"


def _parse(op: str, status: int, body: bytes) -> tuple[bool, tuple[str, ...], str | None, str | None, str | None]:
    """(ok, degraded reasons, stored, key, error) of one answer."""
    try:
        doc = json.loads(body) if status == 200 else None
    except ValueError:
        doc = None
    data = (doc.get("data") or {}) if isinstance(doc, dict) else {}
    if not isinstance(doc, dict) or doc.get("errors") or not data.get(op):
        return False, (), None, None, _error(status, body)
    d = data[op]
    if op == "recordInteraction":
        return True, (), d["stored"], d["key"], None
    return True, tuple(d["degradedReasons"]) if d["degraded"] else (), None, None, None


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
        except TimeoutError:
            status, body = 0, b"no answer within 10 s"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status, body = 0, f"no answer: {type(exc).__name__} (the connection was closed or reset)".encode()
        ok, reasons, stored, k, err = _parse(op, status, body)
        done.append(Done(op, sent, time.monotonic() - t0, status, ok, bool(reasons), reasons, stored, k or ikey, err))

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


async def _raw(port: int, data: bytes, source: str, timeout: float = 10.0) -> int:
    """Send raw bytes as one request from ``source``; the HTTP status of the answer (0: none in
    time, or reset)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, local_addr=(source, 0)), timeout)
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
                  neo4j_down: Any, users: int, items: int, out: dict[str, Any], slow_sockets: int = 50,
                  source: str = HOSTILE) -> None:
    """The hostile mix from ``start_s`` to ``end_s`` (seconds since ``t0``, monotonic): see the
    module's doc. ``neo4j_down()`` says whether Neo4j is stopped now. Counts answers by kind and
    status in ``out["hostile"]``; poison lines written in ``out["poison"]``."""
    from graphrec.engine.journal import Journal

    rng = random.Random(11)
    counts: Counter[str] = Counter()
    out["hostile"], out["poison"] = counts, []
    await asyncio.sleep(max(0.0, t0 + start_s - time.monotonic()))
    async def slow_one() -> None:
        """A socket that starts a request and never finishes its headers (a byte every few
        seconds); when the server times it out (408), another takes its place at once; when it
        is refused at once (429), a second later."""
        while time.monotonic() - t0 < end_s:
            try:
                r, w = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
            except OSError:
                counts["slow_socket_refused"] += 1
                await asyncio.sleep(1.0)
                continue
            counts["slow_sockets_opened"] += 1
            try:
                w.write(f"POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
                while time.monotonic() - t0 < end_s:
                    try:
                        line = await asyncio.wait_for(r.readline(), 5.0)
                    except TimeoutError:
                        w.write(b"a")
                        await w.drain()
                        continue
                    parts = line.split()
                    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                    counts[f"slow_socket:{status or 'closed'}"] += 1
                    if status != 408:  # refused at once (429: Retry-After 1): come back in a second
                        await asyncio.sleep(1.0)
                    break
            except OSError:
                counts["slow_socket:reset"] += 1
                await asyncio.sleep(1.0)
            finally:
                w.close()

    async def every(period: float, fn: Any) -> None:
        while time.monotonic() - t0 < end_s:
            await fn()
            await asyncio.sleep(period)

    async def oversized() -> None:
        big = b'{"query": "' + b"x" * 1_000_000 + b'"}'
        status = await _raw(port, _post(port, big, key=key), source)
        counts[f"oversized_body:{status}"] += 1
        header = "X-Big: " + "y" * 65_536 + "\r\n"
        status = await _raw(port, _post(port, b"{}", extra=header, key=key), source)
        counts[f"oversized_header:{status}"] += 1

    async def malformed() -> None:
        for name, raw in (("bad_json", _post(port, b'{"query": ', key=key)),
                          ("json_array", _post(port, b'[{"query": "{ popularItems { id } }"}]', key=key)),
                          ("wrong_content_type", _post(port, b"query=1", "text/plain", key=key)),
                          ("get_graphql", f"GET /graphql HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())):
            counts[f"{name}:{await _raw(port, raw, source)}"] += 1

    async def flood() -> None:
        body = json.dumps({"query": "{ popularItems(first: 1) { id } }"}).encode()
        got = await asyncio.gather(*(_raw(port, _post(port, body, key=_random_key(rng)), source) for _ in range(10)))
        for status in got:
            counts[f"unauthenticated:{status}"] += 1

    async def shared_address_flood() -> None:
        """Made-up keys from the legitimate traffic's own address (a neighbour behind the same NAT),
        twice the refused-credentials budget: the address stays over it, and the keys it already
        verified must still pass."""
        body = json.dumps({"query": "{ popularItems(first: 1) { id } }"}).encode()
        counts[f"shared_address_flood:{await _raw(port, _post(port, body, key=_random_key(rng)), HOST)}"] += 1

    async def reused_keys() -> None:
        """A careless client: one idempotency key for two users (the second must be refused)."""
        k = f"reused-{rng.getrandbits(32):08x}"
        item = f"i{rng.randrange(items)}"
        async with httpx.AsyncClient(timeout=10, transport=httpx.AsyncHTTPTransport(local_address=source)) as client:
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
            if neo4j_down() and not out["poison"]:
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

    await asyncio.gather(*(slow_one() for _ in range(slow_sockets)), every(1.0, oversized), every(1.0, malformed),
                         every(0.5, flood), every(2.0, reused_keys), every(0.5, shared_address_flood), poison())


def _collect(mix: Any, results: Any, out: dict[str, Any]) -> None:
    """The hostile process's counts into ``out`` (blocks until it has finished)."""
    out.update(results.get())
    mix.join(timeout=30)


def hostile_process(port: int, key: str, journal_dir: Path, t0: float, start_s: float, end_s: float,
                    down: Any, users: int, items: int, results: Any, source: str = HOSTILE) -> None:
    """The hostile mix in a process of its own, so that its work (1 MB bodies, sockets by the
    dozen) never delays the legitimate client's event loop and so its timings. ``down`` is an
    Event set while Neo4j is stopped; the counts go back through the ``results`` queue."""
    out: dict[str, Any] = {}
    asyncio.run(hostile(port, key, journal_dir, t0, start_s, end_s, down.is_set, users, items, out, source=source))
    results.put({"hostile": dict(out["hostile"]), "poison": out["poison"], "pid": os.getpid()})


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


def p99_ms(done: list[Done], q: float = 0.99) -> float | None:
    lat = sorted((d.t - d.sent) * 1000 for d in done)
    return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None


@dataclass
class CpuSample:
    """Cumulative CPU seconds at one moment: the whole machine (busy, all cores), the API's
    process tree, Neo4j's process (its pid changes at the restart), and this load generator."""

    t: float
    machine: float
    api: float
    neo4j_pid: int | None
    neo4j: float
    soak: float  # this process (the legitimate traffic, /readyz samples) and the hostile mix's


def cpu_sample(t: float, api_pid: int, neo4j_pid: int | None, hostile_pid: int | None) -> CpuSample:
    import psutil

    c = psutil.cpu_times()
    busy = c.user + c.nice + c.system + getattr(c, "irq", 0.0) + getattr(c, "softirq", 0.0) + getattr(c, "steal", 0.0)
    mix = tree_cpu_s(hostile_pid, children=False) if hostile_pid else 0.0
    return CpuSample(round(t, 2), busy, tree_cpu_s(api_pid), neo4j_pid, tree_cpu_s(neo4j_pid, children=False),
                     tree_cpu_s(os.getpid(), children=False) + (0.0 if mix != mix else mix))


def _cores(first: CpuSample, last: CpuSample) -> dict[str, float | None]:
    """Cores busy between two samples: the machine, the API, Neo4j (None across its restart), the
    load generators (this process and the hostile mix's), and others (the rest of the machine:
    other programs sharing it)."""
    dt = last.t - first.t
    if dt <= 0:
        return {}
    machine, api, soak = [(getattr(last, k) - getattr(first, k)) / dt for k in ("machine", "api", "soak")]
    neo4j = (last.neo4j - first.neo4j) / dt if first.neo4j_pid and first.neo4j_pid == last.neo4j_pid else None
    others = machine - api - neo4j - soak if neo4j is not None else None
    f = {"machine": machine, "api": api, "neo4j": neo4j, "soak": soak, "others": others}
    return {k: None if v is None else round(v, 2) for k, v in f.items()}


def latency_phases(done: list[Done], seconds: float, warmup_s: float, marks: dict[str, float],
                   window: tuple[float, float], settle_s: float, cpu: list[CpuSample]) -> dict[str, Any]:
    """Legitimate latency per phase, by send time. quiet: after the warm-up, before the hostile mix
    (the first third); hostile_before_restart: from the mix's start to the Neo4j stop;
    hostile_after_recovery: from ``settle_s`` after the degraded window's end (the first whole
    answer after the restart) to the end; hostile_whole: the whole hostile phase, nothing excluded.
    The excluded span (stop to window end + settle_s) is the restart and its aftermath (reads
    degraded while Neo4j is cold), which the quiet phase does not have. p50/p99 are over the answers
    that were ok; errors are counted beside them, by status and message."""
    third = seconds / 3
    stop = marks.get("stop", seconds)
    recovered = min(seconds, window[1] + settle_s)
    spans = {"quiet": (warmup_s, third), "hostile_before_restart": (third, stop),
             "hostile_after_recovery": (recovered, seconds), "hostile_whole": (third, seconds)}
    out: dict[str, Any] = {"excluded_s": [round(stop, 1), round(recovered, 1)], "settle_s": settle_s}
    for name, (a, b) in spans.items():
        these = [d for d in done if a <= d.sent < b]
        ok = [d for d in these if d.ok]
        inside = [c for c in cpu if a <= c.t < b]
        out[name] = {"span_s": [round(a, 1), round(b, 1)], "requests": len(these), "errors": len(these) - len(ok),
                     "p50_ms": p99_ms(ok, 0.5), "p99_ms": p99_ms(ok), "degraded": sum(d.degraded for d in ok),
                     "cores": _cores(inside[0], inside[-1]) if len(inside) > 1 else {}}
    q = out["quiet"]["p99_ms"]
    out["p99_ratio_to_quiet"] = {n: _ratio(out[n]["p99_ms"], q) for n in spans if n != "quiet"}
    return out


def buckets(done: list[Done], cpu: list[CpuSample], width: float = BUCKET_S) -> dict[str, dict[str, Any]]:
    """Per ``width`` seconds of send time: requests, errors, degraded, p50/p99 of the ok answers, and
    the cores busy (machine, API, Neo4j, this generator, others)."""
    out: dict[str, dict[str, Any]] = {}
    for b in sorted({int(d.sent // width) for d in done}):
        a, z = b * width, (b + 1) * width
        these = [d for d in done if a <= d.sent < z]
        ok = [d for d in these if d.ok]
        inside = [c for c in cpu if a <= c.t < z]
        out[str(int(a))] = {"requests": len(these), "errors": len(these) - len(ok), "degraded": sum(d.degraded for d in ok),
                            "p50_ms": p99_ms(ok, 0.5), "p99_ms": p99_ms(ok),
                            "cores": _cores(inside[0], inside[-1]) if len(inside) > 1 else {}}
    return out


def legit_errors(done: list[Done], spans: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The legitimate requests that were not ok, per span: by HTTP status, then by what the answer
    said (``CODE: message``)."""
    out: dict[str, Any] = {}
    for name, (a, b) in spans.items():
        by: dict[str, Counter[str]] = {}
        for d in done:
            if a <= d.sent < b and not d.ok:
                by.setdefault(str(d.status), Counter())[d.error or "?"] += 1
        out[name] = {st: dict(c.most_common()) for st, c in sorted(by.items())}
    return out


def peers(api_pid: int, port: int) -> Counter[str]:
    """The API's established connections on ``port`` by the peer's address, as the server's sockets
    see it (what ``request.client.host`` and the per-address limits see)."""
    import psutil

    try:
        procs = [psutil.Process(api_pid), *psutil.Process(api_pid).children(recursive=True)]
        return Counter(c.raddr.ip for p in procs for c in p.net_connections("tcp")
                       if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port and c.raddr)
    except psutil.Error:
        return Counter()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def readyz_truth(samples: list[dict[str, Any]], done: list[Done], marks: dict[str, float]) -> dict[str, Any]:
    """/readyz against what is known: while Neo4j is down (stopped to started) no sample may say
    ready; a sample that says healthy (ready, not degraded) must not sit among reads answered
    degraded by Neo4j (two or more sent within a second of it; and, more leniently, /readyz's own
    documented rule: a fifth of the reads answered in the 15 s before it, at least 5)."""
    down = (marks.get("down", float("inf")), marks.get("start", float("-inf")))
    reads = [d for d in done if d.op != "recordInteraction"]
    ready_while_down = [x for x in samples if down[0] <= x["t"] <= down[1] and x.get("ready")]
    healthy = [x for x in samples if x.get("ready") and not x.get("degraded")]
    lies = [x for x in healthy
            if sum("neo4j" in d.reasons for d in reads if abs(d.sent - x["t"]) <= 1.0) >= 2]
    # /readyz's own rule (api/app.py): degraded when at least 5 and a fifth of the answers of the
    # last 10-20 s were degraded by Neo4j. Judged on the client's side over the 15 s before.
    def rule(x: dict[str, Any]) -> bool:
        near = [d for d in reads if x["t"] - 15.0 <= d.t <= x["t"]]
        bad = sum("neo4j" in d.reasons for d in near)
        return bad >= 5 and bad * 5 >= len(near)

    by_rule = [x for x in healthy if rule(x)]
    return {"samples": len(samples), "no_answer": sum(x["status"] == 0 for x in samples),
            "said_ready_while_neo4j_down": len(ready_while_down),
            "said_healthy_amid_neo4j_degraded_reads": len(lies),
            "said_healthy_against_its_own_rule": len(by_rule),
            "said_healthy_amid_degraded_at_s": [x["t"] for x in lies][:50],
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
    ap.add_argument("--hostile-address", default=HOSTILE,
                    help=f"the hostile clients' source address (default {HOSTILE}; {HOST} puts them beside the "
                         "legitimate traffic, as the soak did before)")
    ap.add_argument("--settle-seconds", type=float, default=60.0,
                    help="after the first whole answer following the restart, how long is left out of the "
                         "'hostile after recovery' phase (Neo4j cold; default 60)")
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
        cpu: list[CpuSample] = []
        seen_peers: dict[str, int] = {}  # peer address -> most connections open at once (sampled)
        marks: dict[str, float] = {}  # seconds since the traffic started
        restarter: list[asyncio.Task[None]] = []
        t0 = time.monotonic()

        async def restart_store() -> None:
            marks["stop"] = time.monotonic() - t0
            await asyncio.to_thread(server.stop)
            marks["down"] = time.monotonic() - t0
            down.set()
            await asyncio.sleep(a.down_seconds)
            marks["start"] = time.monotonic() - t0
            down.clear()
            await asyncio.to_thread(server.start)
            marks["up"] = time.monotonic() - t0

        def on_tick(now: float) -> None:
            rss.append((round(now, 1), round(tree_rss_mb(api.pid), 1)))
            cpu.append(cpu_sample(now, api.pid, server.pid(), hostile_pid[0]))
            if len(rss) % 5 == 0:
                for ip, n in peers(api.pid, port).items():
                    seen_peers[ip] = max(n, seen_peers.get(ip, 0))
            if now >= seconds / 2 and not restarter:
                restarter.append(asyncio.create_task(restart_store()))

        hostile_out: dict[str, Any] = {}
        hostile_pid: list[int | None] = [None]
        mp = multiprocessing.get_context("spawn")
        down, results = mp.Event(), mp.Queue()
        readyz: list[dict[str, Any]] = []

        async def go() -> list[Done]:
            side = [asyncio.create_task(sample_readyz(port, t0, seconds, readyz))]
            if not a.no_hostile:
                mix = mp.Process(target=hostile_process, daemon=True, args=(
                    port, key, s.var_dir / "journal", t0, seconds / 3, seconds, down, a.users, a.items, results,
                    a.hostile_address))
                mix.start()
                hostile_pid[0] = mix.pid
                side.append(asyncio.create_task(asyncio.to_thread(_collect, mix, results, hostile_out)))
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
    # The hostile mix: legitimate latency per phase (quiet; hostile before the restart; hostile
    # after the restart's aftermath; the whole hostile phase), per 30-s bucket, the legitimate
    # errors by what they said; /readyz against what is known.
    w0, w1 = report["degraded_window_s"]
    phases = latency_phases(done, seconds, a.warmup_seconds, marks, (w0, w1), a.settle_seconds, cpu)
    spans = {n: tuple(phases[n]["span_s"]) for n in ("quiet", "hostile_before_restart", "hostile_after_recovery",
                                                     "hostile_whole")}
    report["hostile"] = {
        "enabled": not a.no_hostile, "from": a.hostile_address, "answers": dict(sorted(hostile_out.get("hostile", Counter()).items())),
        "poison_lines_written": len(hostile_out.get("poison", [])),
        "api_peers_max_connections": seen_peers,
        "legit_latency": phases,
        "legit_errors": legit_errors(done, {**spans, "excluded": tuple(phases["excluded_s"]), "all": (0.0, seconds)}),
        "readyz": {**readyz_truth(readyz, done, marks), "final": final},
    }
    report["buckets_30s"] = buckets(done, cpu)
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
        ph = h["legit_latency"]
        for n in ("quiet", "hostile_before_restart", "hostile_after_recovery", "hostile_whole"):
            x = ph[n]
            print(f"legitimate {n} {x['span_s'][0]}-{x['span_s'][1]} s: p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms "
                  f"(x{ph['p99_ratio_to_quiet'].get(n, 1.0)} of quiet), {x['errors']} errors of {x['requests']:,}; "
                  f"cores {x['cores']}")
        print(f"left out of 'after recovery': {ph['excluded_s'][0]}-{ph['excluded_s'][1]} s (the Neo4j stop to "
              f"{a.settle_seconds:g} s after the first whole answer after the restart)")
        print(f"legitimate errors: {h['legit_errors']['all'] or 'none'}")
        print(f"API connections by peer (most at once): {h['api_peers_max_connections']}")
        print(f"/readyz: {rz['samples']} samples, {rz['said_ready_while_neo4j_down']} said ready while Neo4j was down, "
              f"{rz['said_healthy_amid_neo4j_degraded_reads']} said healthy amid degraded reads "
              f"({rz['said_healthy_against_its_own_rule']} against its own rule); at the end: "
              f"dead-lettered {rz['final'].get('journal', {}).get('dead_lettered')} of {h['poison_lines_written']} poison "
              f"lines written (one of them is the first use of its key: it lands), pending {rz['final'].get('journal_pending_bytes')} bytes")
    write_report(a.out, report)


if __name__ == "__main__":
    main()
