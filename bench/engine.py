"""In-process engine latency on the loaded graph (MovieLens-100K after `make demo`).

Home feed, ``first=20``, ~500 candidates per request (sources × candidates_per_source, merged),
over N requests for users drawn at random (seeded), after a warm-up pass. Every answer is
computed: the result cache is off for the measured requests (``--result-cache`` keeps it, and the
report says how many answers it gave). Prints p50/p99, the CPU per request of this process and the
per-stage breakdown (medians of each stage's milliseconds) and writes a JSON report.

``--profile``: the CPU of each step of a computed answer instead (result cache off): the engine's
parts are timed where they are called (``time.thread_time`` around each step of the request,
on the thread that runs it: the vector index's search runs on a worker thread), so the figures
hold for any tree that has these parts (a part it lacks is left out), and the same command
measures an old and a new tree side by side. Prints each step's median and p99 CPU ms and the
CPU of the whole answer. ``--dump FILE`` writes the served item ids of ``--dump-users`` users
(the same users for every tree) to compare answers between trees (``--compare A B``).

    python -m bench.engine --requests 1000
    python -m bench.engine --profile --requests 2000 --dump /tmp/new.json
    python -m bench.engine --compare /tmp/old.json /tmp/new.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import inspect
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import machine, pct, write_report
from graphrec.core.config import load_settings


async def run(requests: int, out: Path, seed: int = 1, freeze: bool = True, result_cache: bool = False) -> dict:
    from api.app import single_threaded_math
    from graphrec.core.recs.types import RecRequest
    from graphrec.engine.engine import Engine

    single_threaded_math()  # as `graphrec serve` runs it: one BLAS/torch thread (spinning threads cost CPU)
    settings = load_settings()
    engine = await Engine.create(settings, background=False)
    if settings.engine.state_sync_s > 0:  # as `graphrec serve` does: held user states, kept fresh by polls
        engine.start_state_sync()
    try:
        users = sorted(engine.catalog.items and [u["id"] for u in await engine.store.read("export/users", after="", limit=100_000)])
        rng = random.Random(seed)
        for u in rng.sample(users, min(100, len(users))):  # warm-up: connections, plans, JIT
            await engine.recommend(RecRequest(u))
        # A cold result cache, or none (computed answers: a repeated user is computed again).
        engine.results = type(engine.results)(engine.cfg.result_cache_size if result_cache else 0, engine.cfg.result_cache_ttl_s)
        if freeze:  # what `graphrec serve` does after start-up: long-lived objects leave the GC's view
            gc.collect()
            gc.freeze()
        lat: list[float] = []
        stages: dict[str, list[float]] = {}
        cands: list[int] = []
        degraded = 0
        cpu0, reads0 = time.process_time(), engine.stats.get("user_state.read", 0)
        for _ in range(requests):
            u = rng.choice(users)
            t0 = time.perf_counter()
            res = await engine.recommend(RecRequest(u, first=20))
            lat.append((time.perf_counter() - t0) * 1000)
            degraded += res.degraded
            for k, v in res.timings_ms.items():
                stages.setdefault(k, []).append(v)
        cpu_ms = (time.process_time() - cpu0) * 1000 / requests  # this process's CPU (not Neo4j's)
        state_reads = engine.stats.get("user_state.read", 0) - reads0
        for k in list(engine.stats):
            if k.startswith("candidates."):
                cands.append(int(engine.stats[k]))
        report: dict[str, Any] = {
            "benchmark": "engine", "requests": requests, "first": 20,
            "model": engine.model.version if engine.model else None,
            "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat), 2),
            "mean_ms": round(statistics.mean(lat), 2), "degraded": degraded,
            "candidates_per_request": round(sum(cands) / (requests + 100), 1),
            "stage_p50_ms": {k: round(pct(v, 50), 2) for k, v in sorted(stages.items())},
            "stage_p99_ms": {k: round(pct(v, 99), 2) for k, v in sorted(stages.items())},
            "neighbour_cache_hit_rate": round(engine.neighbours.hit_rate, 3),
            "result_cache_hit_rate": round(engine.results.hit_rate, 3),
            "target_p99_ms": 30, "gc_freeze": freeze, "result_cache": result_cache,
            "cpu_ms_per_request": round(cpu_ms, 2), "user_state_reads": state_reads,
        }
    finally:
        await engine.close()
    print(f"home feed first=20 over {requests} requests: p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms "
          f"(~{report['candidates_per_request']} candidates/request, {degraded} degraded); "
          f"{report['cpu_ms_per_request']} ms CPU/request in this process, {state_reads} user states read from Neo4j")
    for k, v in report["stage_p50_ms"].items():
        print(f"  {k:24s} p50 {v:7.2f} ms   p99 {report['stage_p99_ms'][k]:7.2f} ms")
    write_report(out, report)
    return report


#: The steps ``--profile`` times: (label, owner path from the engine, attribute). Nested steps
#: count inside their parents too; async steps (``*``) are timed with the process's CPU clock,
#: which the sources running beside them also move, so only the sequential ones are async.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("user_state*", "users", "read"),
    ("user_state.unpack", "user_state_module", "unpack"),
    ("cache_key", "pipeline", "cached_or_stale"),
    ("sources*", "pipeline", "sources"),
    ("sources.user_vector", "model", "user_vector"),
    ("sources.seeds", "pipeline", "seeds"),
    ("sources.hybrid_scores", "model", "hybrid_scores"),
    ("sources.hybrid_top", "hybrid_module", "candidates"),
    ("sources.hybrid_top", "hybrid_module", "ranked"),
    ("sources.neighbour_sums", "graph_sources", "aggregate_neighbours"),
    ("sources.ann_search", "vectors", "search"),
    ("sources.ann_exact", "candidates", "exact"),
    ("merge", "pipeline", "merge"),
    ("rank", "pipeline", "rank_step"),
    ("rules", "pipeline", "apply_rules"),
    ("rules.mmr", "rules_module", "diversify"),
    ("rules.mmr", "rules_module", "diversify_order"),
    ("rules.exploration_pool", "rules_module", "exploration_pool"),
    ("answer", "pipeline", "answer"),
)


def _owner(engine: Any, path: str) -> Any:
    import graphrec.core.recs.hybrid as hybrid_module
    import graphrec.core.recs.rules as rules_module
    import graphrec.engine.sources.graph as graph_sources
    import graphrec.engine.user_state as user_state_module

    modules = {"hybrid_module": hybrid_module, "rules_module": rules_module, "graph_sources": graph_sources,
               "user_state_module": user_state_module}
    if path in modules:
        return modules[path]
    return getattr(engine, path, None)


def instrument(engine: Any, cpu: dict[str, float]) -> list[str]:
    """Wrap the steps of :data:`STEPS` that ``engine``'s tree has so that each adds its CPU ms to
    ``cpu[label]`` (the model's steps are wrapped on the live model instance). Returns the labels."""
    done = []
    for label, path, attr in STEPS:
        owner = _owner(engine, path)
        fn = getattr(owner, attr, None) if owner is not None else None
        if fn is None:
            continue
        if inspect.iscoroutinefunction(fn):
            async def awrap(*a: Any, _fn: Any = fn, _label: str = label, **k: Any) -> Any:
                t0 = time.process_time()
                try:
                    return await _fn(*a, **k)
                finally:
                    cpu[_label] = cpu.get(_label, 0.0) + (time.process_time() - t0) * 1000
            wrapped: Any = functools.wraps(fn)(awrap)
        else:
            def wrap(*a: Any, _fn: Any = fn, _label: str = label, **k: Any) -> Any:
                t0 = time.thread_time()
                try:
                    return _fn(*a, **k)
                finally:
                    cpu[_label] = cpu.get(_label, 0.0) + (time.thread_time() - t0) * 1000
            wrapped = functools.wraps(fn)(wrap)
        setattr(owner, attr, wrapped)
        if label not in done:
            done.append(label)
    return done


async def profile(requests: int, out: Path, seed: int = 1, dump: Path | None = None, dump_users: int = 200) -> dict:
    """Per-step CPU of computed answers (see the module's docstring)."""
    from api.app import single_threaded_math
    from graphrec.core.recs.types import RecRequest
    from graphrec.engine.engine import Engine

    single_threaded_math()
    settings = load_settings()
    engine = await Engine.create(settings, background=False)
    if settings.engine.state_sync_s > 0:
        engine.start_state_sync()
    try:
        users = sorted(u["id"] for u in await engine.store.read("export/users", after="", limit=100_000))
        rng = random.Random(seed)
        engine.results = type(engine.results)(0, engine.cfg.result_cache_ttl_s)  # every answer computed
        for u in users:  # warm-up: every user once (held states, neighbour lists, plans)
            await engine.recommend(RecRequest(u))
        served: dict[str, list[tuple[str, float, tuple[str, ...], str | None]]] = {}
        if dump is not None:  # the same users in every tree: sorted ids, then a seeded sample
            for u in random.Random(7).sample(users, min(dump_users, len(users))):
                res = await engine.recommend(RecRequest(u, first=20))
                served[u] = [(r.item_id, r.score, r.sources, r.reason) for r in res.items]
        gc.collect()
        gc.freeze()
        cpu: dict[str, float] = {}
        labels = instrument(engine, cpu)
        per: dict[str, list[float]] = {k: [] for k in labels}
        total: list[float] = []
        degraded = 0
        for _ in range(requests):
            u = rng.choice(users)
            cpu.clear()
            t0 = time.process_time()
            res = await engine.recommend(RecRequest(u, first=20))
            total.append((time.process_time() - t0) * 1000)
            degraded += res.degraded
            for k in labels:
                per[k].append(cpu.get(k, 0.0))
        report: dict[str, Any] = {
            "benchmark": "engine-profile", "requests": requests, "first": 20, "degraded": degraded,
            "model": engine.model.version if engine.model else None, "machine": machine(),
            "cpu_ms_p50": {k: round(pct(v, 50), 3) for k, v in per.items()} | {"total": round(pct(total, 50), 3)},
            "cpu_ms_p99": {k: round(pct(v, 99), 3) for k, v in per.items()} | {"total": round(pct(total, 99), 3)},
            "cpu_ms_mean_total": round(statistics.mean(total), 3),
        }
    finally:
        await engine.close()
    print(f"CPU per computed answer (home feed, first=20, {requests} requests, result cache off, {degraded} degraded):")
    for k in [*labels, "total"]:
        print(f"  {k:28s} p50 {report['cpu_ms_p50'][k]:7.3f} ms   p99 {report['cpu_ms_p99'][k]:7.3f} ms")
    print(f"  mean total {report['cpu_ms_mean_total']} ms")
    write_report(out, report)
    if dump is not None:
        dump.write_text(json.dumps(served, indent=0))
    return report


def compare(a: Path, b: Path) -> int:
    """How the served lists of two dumps differ: users with identical ids (in order), the same
    set, and the mean overlap. Returns how many users differ."""
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    same = same_set = same_all = 0
    overlap: list[float] = []
    differ = []
    for u in sorted(set(x) & set(y)):
        ia, ib = [r[0] for r in x[u]], [r[0] for r in y[u]]
        same += ia == ib
        same_all += x[u] == y[u]
        same_set += set(ia) == set(ib)
        overlap.append(len(set(ia) & set(ib)) / max(1, len(ia)))
        if ia != ib:
            differ.append(u)
    n = len(set(x) & set(y))
    print(f"{n} users: {same} identical lists of ids, {same_all} identical also in scores, sources and reasons, "
          f"{same_set} the same items, mean overlap {statistics.mean(overlap or [1.0]):.4f}")
    for u in [u for u in sorted(set(x) & set(y)) if x[u] != y[u]][:5]:
        print(f"  user {u} (ids the same: {u not in differ}):")
        for ra, rb in zip(x[u], y[u], strict=False):
            if ra != rb:
                print(f"    {ra}\n    {rb}")
    for u in differ[:10]:
        print(f"  user {u}:\n    {x[u]}\n    {y[u]}")
    return n - same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("bench/reports/engine.json"))
    ap.add_argument("--no-freeze", action="store_true", help="leave the GC as it is (for comparison)")
    ap.add_argument("--result-cache", action="store_true", help="keep the result cache on (a repeated user may be a hit)")
    ap.add_argument("--profile", action="store_true", help="CPU ms per step of a computed answer (see above)")
    ap.add_argument("--dump", type=Path, default=None, help="with --profile: write the served lists of --dump-users users")
    ap.add_argument("--dump-users", type=int, default=200)
    ap.add_argument("--compare", type=Path, nargs=2, default=None, metavar=("OLD", "NEW"),
                    help="compare two --dump files (no engine)")
    a = ap.parse_args()
    if a.compare:
        raise SystemExit(1 if compare(*a.compare) else 0)
    if a.profile:
        out = a.out if a.out != Path("bench/reports/engine.json") else Path("bench/reports/engine-profile.json")
        asyncio.run(profile(a.requests, out, dump=a.dump, dump_users=a.dump_users))
        return
    asyncio.run(run(a.requests, a.out, freeze=not a.no_freeze, result_cache=a.result_cache))


if __name__ == "__main__":
    main()
