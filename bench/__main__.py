"""Run every benchmark in turn and summarise them: ``python -m bench [--scale]``.

Each benchmark runs in its own process (its own peak memory, no state carried over) and writes
its JSON report under ``bench/reports/``; this runner collects the headline figures against the
targets into ``bench/reports/summary.json``, prints them as a table and, after a full run, writes
them into docs/scaling.md (:mod:`bench.docs`).

The default sizes fit in about 15 minutes on a 2-core machine; ``--scale`` runs the 1M sizes
(synthetic 5M-interaction load, 1M-item ANN and training, and serving on a 1M-item graph built by
``bench.scale``), which take about two hours the first time. The engine
and serving benchmarks run on the demo graph (MovieLens-100K, ``make demo`` or ``make bench``
loads and trains it first).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import docs
from bench.serve import target as serve_target

REPORTS = Path("bench/reports")


def plan(scale: bool) -> list[tuple[str, list[str]]]:
    return [
        ("load", ["bench.load", "--synthetic", "5000000" if scale else "1000000"]),
        ("train", ["bench.train", "--items", "1000000" if scale else "100000"]),
        # At 1M: int8 (half the build) and 1,000 queries per point, so that p99 is not the 2nd-worst query.
        ("ann", ["bench.ann", "--sizes", *(["100000", "1000000", "--quantization", "scalar", "--queries", "1000",
                                             "--ef", "256", "512", "640", "704", "1024"] if scale else ["100000"])]),
        ("engine", ["bench.engine", "--requests", "1000"]),
        ("serve", ["bench.serve", "--rates", "50,100,200", "--duration", "60" if scale else "30"]),
        *([("serve-1m", ["bench.scale"])] if scale else []),  # builds the 1M graph once (~25 min), then serves (~12 min)
    ]


def _get(report: dict[str, Any], *path: Any) -> Any:
    cur: Any = report
    for p in path:
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur):
            cur = cur[p]
        else:
            return None
    return cur


def headline(name: str, report: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(figure, value, target) rows of one report."""
    rows: list[tuple[str, Any, str]] = []
    if name == "load":
        rows.append(("MovieLens-100K interactions/s", _get(report, "movielens", "interactions_per_s"), ">= 50,000"))
        rows.append((f"synthetic {_get(report, 'synthetic', 'interactions')} interactions/s",
                     _get(report, "synthetic", "interactions_per_s"), ">= 50,000"))
        rows.append((f"synthetic {_get(report, 'synthetic_bulk', 'interactions')} interactions/s, bulk import "
                     "(empty graph, neo4j-admin)", _get(report, "synthetic_bulk", "interactions_per_s"), ">= 50,000"))
    elif name == "engine":
        rows.append(("engine home feed p99 ms", report.get("p99_ms"), "< 30"))
    elif name in ("serve", "serve-1m"):
        serve = report.get("serve") or report
        rows.extend(serve_headline(serve.get("runs", []), "1m" if name == "serve-1m" else "movielens"))
    elif name == "ann":
        for r in report.get("results", []):
            for fname in ("none", "category"):
                pts = [x for x in r.get("searches", []) if x["filter"] == fname]
                ok = [x for x in pts if x.get("recall@100", 0) >= 0.95] or pts
                if ok:
                    b = min(ok, key=lambda x: x["p99_ms"])
                    rows.append((f"ANN {r['engine']} n={r['size']:,} filter={fname} (ef={b['hnsw_ef']})",
                                 f"recall@100 {b.get('recall@100')}, p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms",
                                 "p99 <= 5 ms, recall >= 0.95 at 1M" if fname == "category" else ""))
    elif name == "train":
        for r in report.get("runs", report.get("datasets", [])):
            if isinstance(r, dict):
                rows.append((f"train {r.get('dataset')}", _compact(r), ""))
    return rows


def serve_headline(runs: list[dict[str, Any]], size: str) -> list[tuple[str, Any, str]]:
    """Per operation and rate, the modes side by side: p50/p99 ms and the result cache's hit
    ratio (computed: every answer computed; traffic: Zipf-like mix, cache on). Targets are for
    computed."""
    rows: list[tuple[str, Any, str]] = []
    by: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    for r in runs:
        by.setdefault((r["op"], r["rate"]), {})[r.get("mode", "-")] = r
    for (op, rate), modes in by.items():
        parts = []
        for mode, r in modes.items():
            hr = r.get("cache_hit_ratio")
            parts.append(f"{mode}: p50 {r['p50_ms']} p99 {r['p99_ms']} hits {'-' if hr is None else f'{hr:.2f}'}"
                         + (f" err {r['errors']}" if r["errors"] else "")
                         + (f" degraded {r['degraded']}" if r.get("degraded") else ""))
        t = serve_target(size, op, rate)
        label = "" if t is None else f"p99 <= {t:g}" if op == "recordInteraction" else f"computed p99 <= {t:g}, 0 errors"
        rows.append((f"{op} @ {rate:.0f} req/s (ms)", " | ".join(parts), label))
    return rows


def _compact(r: dict[str, Any]) -> str:
    keep = {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ", ".join(f"{k}={v}" for k, v in list(keep.items())[:8])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", action="store_true", help="the 1M sizes (about an hour)")
    ap.add_argument("--only", nargs="+", default=None, help="run only these benchmarks")
    a = ap.parse_args()
    summary: dict[str, Any] = {"scale": a.scale, "benchmarks": {}}
    for name, argv in plan(a.scale):
        if a.only and name not in a.only:
            continue
        out = REPORTS / (f"{name}-scale.json" if a.scale else f"{name}.json")
        print(f"\n=== {name}: python -m {' '.join(argv)} --out {out}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", *argv, "--out", str(out)])
        entry: dict[str, Any] = {"command": f"python -m {' '.join(argv)}", "exit_code": rc,
                                 "seconds": round(time.perf_counter() - t0, 1), "report": str(out)}
        if rc == 0 and out.exists():
            entry["headline"] = headline(name, json.loads(out.read_text()))
        summary["benchmarks"][name] = entry
    summary = docs.stamp(summary)
    path = REPORTS / ("summary-scale.json" if a.scale else "summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    if not a.only and not a.scale:  # a full run is the current state: docs/scaling.md shows it
        docs.update(docs.DOC, summary)
    print("\n=== summary")
    for name, e in summary["benchmarks"].items():
        print(f"{name} ({e['seconds']} s, exit {e['exit_code']})")
        for fig, val, target in e.get("headline", []):
            print(f"  {fig:55s} {val!s:40s} {target}" if len(str(val)) <= 40 else f"  {fig:55s} {target}\n      {val}")
    print(f"summary: {path}")
    if any(e["exit_code"] for e in summary["benchmarks"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
