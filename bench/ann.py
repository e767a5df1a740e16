"""ANN benchmark of the vector engines: recall@k and latency against exact search.

For each engine and size: random unit vectors (seeded), one of 10 categories per item; build the
collection (upsert in batches, then ``finalize``: Edge's blocking optimise), then single-query
top-k searches with and without a category filter (10% of items pass) at several ``hnsw_ef``
values. Ground truth is exact cosine in NumPy. Each (engine, size) runs in its own process, so
its peak RSS is its own (it includes the float32 dataset the builder holds, reported apart).

qdrant-client local mode is exact brute force in Python (``hnsw_ef`` has no effect; seconds per
query at 1M), so it runs few queries (``--local-queries``) and in memory (``:memory:``: with a
path it commits one SQLite transaction per point).

    python -m bench.ann --sizes 100000 --dim 64 --queries 200 --engines edge qdrant-local \\
        --out bench/reports/ann.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import pct, peak_rss_mb, pyplot, save_figure

CATEGORIES = [f"cat{c}" for c in range(10)]
BATCH = 10_000


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dataset(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, unit vectors (float32) and each item's category index, the same for every engine."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cats = rng.integers(0, len(CATEGORIES), n)
    return [f"item-{k}" for k in range(n)], x, cats


def queries(q: int, dim: int, seed: int) -> np.ndarray:
    y = np.random.default_rng(seed + 1).standard_normal((q, dim), dtype=np.float32)
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def exact_topk(x: np.ndarray, qs: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[set[int]]:
    out = []
    for q in qs:
        s = x @ q
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        top = np.argpartition(-s, k)[:k]
        out.append(set(top.tolist()))
    return out


def open_index(engine: str, root: Path, m: int, ef_construct: int, payload_m: int, quantization: str = "none") -> Any:
    if engine == "edge":
        from graphrec.core.vectors.edge import EdgeIndex

        return EdgeIndex(root / "edge", m=m, ef_construct=ef_construct, payload_m=payload_m, quantization=quantization)
    if engine == "qdrant-local":
        from graphrec.core.vectors.qdrant_server import QdrantIndex

        return QdrantIndex(path=":memory:")
    raise SystemExit(f"unknown engine {engine!r} (edge, qdrant-local)")


def worker(engine: str, n: int, dim: int, nq: int, k: int, efs: list[int], seed: int, root: Path,
           m: int = 16, ef_construct: int = 128, payload_m: int = 16, quantization: str = "none") -> dict[str, Any]:
    """Build one collection and measure it; runs in a child process (see module docstring)."""
    from graphrec.core.vectors.base import VectorFilter

    rss0 = rss_mb()
    ids, x, cats = dataset(n, dim, seed)
    qs = queries(nq, dim, seed)
    data_mb = rss_mb() - rss0
    idx = open_index(engine, root, m, ef_construct, payload_m, quantization)
    t0 = time.perf_counter()
    idx.create_collection("bench", dim)
    for s in range(0, n, BATCH):
        pl = [{"categories": [CATEGORIES[c]], "available": True, "year": 2000} for c in cats[s:s + BATCH]]
        idx.upsert("bench", ids[s:s + BATCH], x[s:s + BATCH], pl)
    upsert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx.finalize("bench")
    finalize_s = time.perf_counter() - t0
    gc.collect()
    built_rss = rss_mb()

    target = 3  # the filtered searches ask for one category: ~10% of the items
    cases = {"none": (None, None),
             "category": (VectorFilter(categories_any=[CATEGORIES[target]], available_only=False), cats == target)}
    ef_values: list[int | None] = list(efs) if engine == "edge" else [None]  # local mode is exact
    searches = []
    for fname, (flt, mask) in cases.items():
        truth = exact_topk(x, qs, k, mask)
        for ef in ef_values:
            if ef is not None:
                idx.hnsw_ef = ef
            for q in qs[: min(5, nq)]:  # warm-up: page in the index
                idx.search("bench", q, k, flt)
            lat, rec = [], []
            for q, want in zip(qs, truth, strict=True):
                t = time.perf_counter()
                hits = idx.search("bench", q, k, flt)
                lat.append((time.perf_counter() - t) * 1000)
                rec.append(len({int(h.id[5:]) for h in hits} & want) / k)
            searches.append({"filter": fname, "hnsw_ef": ef if ef is not None else "exact",
                             "hnsw_ef_effective": max(ef, k) if ef is not None else None, "queries": nq,
                             f"recall@{k}": round(statistics.mean(rec), 4), "recall_min": round(min(rec), 3),
                             "p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3),
                             "mean_ms": round(statistics.mean(lat), 3)})
            print(f"  {engine:12s} n={n:>9,} filter={fname:8s} ef={searches[-1]['hnsw_ef']!s:>5}: "
                  f"recall@{k} {searches[-1][f'recall@{k}']:.4f}  p50 {searches[-1]['p50_ms']:8.2f} ms  "
                  f"p99 {searches[-1]['p99_ms']:8.2f} ms", file=sys.stderr, flush=True)
    disk_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20 if engine == "edge" else None
    idx.close()
    hnsw = ({"m": m, "ef_construct": ef_construct, "payload_m": payload_m, "quantization": quantization}
            if engine == "edge" else None)
    return {"engine": engine, "size": n, "dim": dim, "k": k, "hnsw": hnsw, "upsert_s": round(upsert_s, 2),
            "finalize_s": round(finalize_s, 2), "build_s": round(upsert_s + finalize_s, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_build_mb": round(built_rss, 1),
            "dataset_mb": round(data_mb, 1), "disk_mb": None if disk_mb is None else round(disk_mb, 1),
            "searches": searches}


def _hnsw(r: dict[str, Any]) -> str:
    h = r.get("hnsw")
    if not h:
        return ""
    return f" m={h['m']} efc={h['ef_construct']}" + (" int8" if h.get("quantization") == "scalar" else "")


def plot(results: list[dict[str, Any]], k: int, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        for fname in ("none", "category"):
            pts = [s for s in r["searches"] if s["filter"] == fname]
            if not pts:
                continue
            xs = [s["p50_ms"] for s in pts]
            ys = [s[f"recall@{k}"] for s in pts]
            style = "-o" if fname == "none" else "--s"
            (line,) = ax.plot(xs, ys, style, label=f"{r['engine']}{_hnsw(r)} n={r['size']:,} filter={fname}")
            for s, xv, yv in zip(pts, xs, ys, strict=True):
                ax.annotate(f"ef={s['hnsw_ef']}", (xv, yv), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per query (ms, log scale)")
    ax.set_ylabel(f"recall@{k}")
    ax.set_title(f"ANN recall vs latency (top-{k}, single query, {os.cpu_count()} cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--local-queries", type=int, default=20,
                    help="queries for qdrant-local (exact Python search: ~1 s/query at 100k, ~10 s at 1M)")
    ap.add_argument("--local-max-size", type=int, default=1_000_000, help="skip qdrant-local above this size")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512, 768, 1024],
                    help="hnsw_ef values (Edge; raised to k when below)")
    ap.add_argument("--m", type=int, default=16, help="HNSW graph degree (Edge; config qdrant.hnsw_m)")
    ap.add_argument("--ef-construct", type=int, default=128, help="HNSW build beam (Edge)")
    ap.add_argument("--payload-m", type=int, default=16, help="degree of the per-category links (Edge)")
    ap.add_argument("--quantization", choices=["none", "scalar"], default="none", help="Edge: int8 copies, rescored")
    ap.add_argument("--engines", nargs="+", default=["edge", "qdrant-local"], choices=["edge", "qdrant-local"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scratch", type=Path, default=None, help="where Edge shards are built (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/ann.json"))
    ap.add_argument("--worker", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:  # child: one engine, one size; JSON on stdout
        engine, n = a.worker[0], int(a.worker[1])
        nq = a.local_queries if engine == "qdrant-local" else a.queries
        root = Path(tempfile.mkdtemp(prefix="graphrec-ann-", dir=a.scratch))
        try:
            print(json.dumps(worker(engine, n, a.dim, nq, a.k, a.ef, a.seed, root, a.m, a.ef_construct, a.payload_m,
                                    a.quantization)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return

    results = []
    for n in a.sizes:
        for engine in a.engines:
            if engine == "qdrant-local" and n > a.local_max_size:
                print(f"skip qdrant-local at n={n:,} (> --local-max-size)", file=sys.stderr)
                continue
            print(f"{engine} n={n:,} dim={a.dim}", file=sys.stderr, flush=True)
            cmd = [sys.executable, "-m", "bench.ann", "--worker", engine, str(n), "--dim", str(a.dim),
                   "--queries", str(a.queries), "--local-queries", str(a.local_queries), "--k", str(a.k),
                   "--seed", str(a.seed), "--m", str(a.m), "--ef-construct", str(a.ef_construct), "--payload-m", str(a.payload_m), "--quantization", a.quantization,
                   "--ef", *map(str, a.ef)]
            if a.scratch:
                cmd += ["--scratch", str(a.scratch)]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  build {r['build_s']} s (upsert {r['upsert_s']} s, finalize {r['finalize_s']} s), "
                  f"peak RSS {r['peak_rss_mb']} MB (dataset {r['dataset_mb']} MB)", file=sys.stderr)
            results.append(r)

    from bench.common import write_report

    report = {"benchmark": "ann", "sizes": a.sizes, "dim": a.dim, "k": a.k, "queries": a.queries,
              "local_queries": a.local_queries, "hnsw_ef": a.ef, "m": a.m, "ef_construct": a.ef_construct, "payload_m": a.payload_m, "quantization": a.quantization, "seed": a.seed, "categories": len(CATEGORIES),
              "category_filter_selectivity": 1 / len(CATEGORIES), "load_average": os.getloadavg(),
              "results": results}
    write_report(a.out, report)
    plot(results, a.k, a.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
