"""In-process engine latency on the loaded graph (MovieLens-100K after `make demo`).

Home feed, ``first=20``, ~500 candidates per request (sources × candidates_per_source, merged),
over N requests for users drawn at random (seeded), after a warm-up pass. Every answer is
computed: the result cache is off for the measured requests (``--result-cache`` keeps it, and the
report says how many answers it gave). Prints p50/p99, the CPU per request of this process and the
per-stage breakdown (medians of each stage's milliseconds) and writes a JSON report.

    python -m bench.engine --requests 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import pct, write_report
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("bench/reports/engine.json"))
    ap.add_argument("--no-freeze", action="store_true", help="leave the GC as it is (for comparison)")
    ap.add_argument("--result-cache", action="store_true", help="keep the result cache on (a repeated user may be a hit)")
    a = ap.parse_args()
    asyncio.run(run(a.requests, a.out, freeze=not a.no_freeze, result_cache=a.result_cache))


if __name__ == "__main__":
    main()
