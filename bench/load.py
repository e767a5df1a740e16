"""Load benchmark: interactions/s into Neo4j over Bolt.

Runs against a scratch Neo4j (``var/bench``, ports 7688/7475), never the demo database:

1. MovieLens-100K: users, items, then the 100,000 ratings (timed), then the same ratings again
   (the idempotent re-load: every row is found and skipped);
2. a synthetic set of N interactions (default 5M; sessions included), timed end to end,
   generation included;
3. the same synthetic set as a first load through ``neo4j-admin database import``
   (``loaders/bulk.py``, ``graphrec load synthetic --bulk``) into a second empty scratch Neo4j
   (``var/bench-bulk``, ports 7691/7478), timed from the first row generated to the graph
   answering with its constraints and indexes built, phase by phase.

    python -m bench.load --synthetic 5000000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.common import scratch_neo4j, tree_cpu_s, write_report
from graphrec.core.config import Settings, load_settings


def _bulk(settings: Settings, n: int) -> dict:
    """The synthetic set of :func:`run` as a bulk import into an empty scratch Neo4j."""
    from loaders.bulk import import_synthetic
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec

    spec = SyntheticSpec(users=max(1000, n // 50), items=max(500, n // 100), interactions=n, seed=11)
    with scratch_neo4j(settings, name="bench-bulk", bolt_port=7691, http_port=7478) as s:
        rep = import_synthetic(s, SyntheticCatalog(spec))
    out = {"users": spec.users, "items": spec.items, "interactions": rep.interactions,
           "seconds": round(rep.seconds, 1), "interactions_per_s": round(rep.rate),
           "phases_s": {k: round(v, 1) for k, v in rep.phases.items()}, "nodes": rep.nodes}
    print(f"synthetic, bulk import: {rep.interactions:,} interactions in {rep.seconds:.1f}s = "
          f"{rep.rate:,.0f} interactions/s (" + ", ".join(f"{k} {v:.1f}s" for k, v in rep.phases.items()) + ")")
    return out


def run(settings: Settings, synthetic_interactions: int = 5_000_000, out: Path = Path("bench/reports/load.json"),
        batch_size: int = 10_000, writers: int = 2, bulk: bool = True) -> dict:
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.neo4j_server import Neo4jServer
    from loaders import movielens
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec
    from loaders.writer import GraphWriter

    results: dict = {"batch_size": batch_size, "writers": writers}
    root = movielens.fetch(settings.cache_dir)
    with scratch_neo4j(settings) as s, GraphStore.from_settings(s) as store:
        schema.apply(store)
        w = GraphWriter(store, batch_size=batch_size, on_error="stop", writers=writers)
        w.users(movielens.users(root), total=movielens.NUM_USERS)
        w.items(movielens.items(root), total=movielens.NUM_ITEMS)
        rep = w.interactions(movielens.ratings(root), total=movielens.NUM_RATINGS)
        again = w.interactions(movielens.ratings(root), total=movielens.NUM_RATINGS)
        results["movielens"] = {"interactions": rep.rows, "new": rep.written, "seconds": round(rep.seconds, 2),
                                "interactions_per_s": round(rep.rate),
                                "reload_new": again.written, "reload_interactions_per_s": round(again.rate)}
        print(f"MovieLens-100K: {rep.rows:,} ratings in {rep.seconds:.1f}s = {rep.rate:,.0f} interactions/s "
              f"(re-load: {again.written} new, {again.rate:,.0f} rows/s)")
        if synthetic_interactions:
            n = synthetic_interactions
            spec = SyntheticSpec(users=max(1000, n // 50), items=max(500, n // 100), interactions=n, seed=11)
            cat = SyntheticCatalog(spec)
            w.users(cat.users(), total=spec.users)
            w.items(cat.items(), total=spec.items)
            pid = Neo4jServer(s).pid()
            me = os.getpid()  # this process only: the Neo4j server it started is its child
            cpu0 = (tree_cpu_s(me, children=False), tree_cpu_s(pid))
            t0 = time.perf_counter()
            rep = w.interactions(cat.interaction_batches(), total=n)
            secs = time.perf_counter() - t0
            cpu1 = (tree_cpu_s(me, children=False), tree_cpu_s(pid))
            # Where the two cores went: the loader (generation, validation, hashing, encoding)
            # and Neo4j (the writes), in CPU microseconds per interaction.
            loader_us, neo4j_us = ((b - a) * 1e6 / max(1, rep.rows) for a, b in zip(cpu0, cpu1, strict=True))
            results["synthetic"] = {"users": spec.users, "items": spec.items, "interactions": rep.rows,
                                    "new": rep.written, "seconds": round(secs, 1),
                                    "interactions_per_s": round(rep.rows / secs), "with_sessions": True,
                                    "loader_cpu_us_per_interaction": round(loader_us, 1),
                                    "neo4j_cpu_us_per_interaction": round(neo4j_us, 1)}
            print(f"synthetic: {rep.rows:,} interactions ({spec.users:,} users, {spec.items:,} items, sessions) "
                  f"in {secs:.1f}s = {rep.rows / secs:,.0f} interactions/s; CPU per interaction: loader "
                  f"{loader_us:.1f} us, Neo4j {neo4j_us:.1f} us")
    if synthetic_interactions and bulk:
        results["synthetic_bulk"] = _bulk(settings, synthetic_interactions)
    results["target_interactions_per_s"] = 50_000
    write_report(out, {"benchmark": "load", **results})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", type=int, default=5_000_000, help="synthetic interactions (0 to skip)")
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--writers", type=int, default=2, help="concurrent write transactions")
    ap.add_argument("--no-bulk", action="store_true", help="skip the bulk import (neo4j-admin) of the synthetic set")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/load.json"))
    a = ap.parse_args()
    run(load_settings(), a.synthetic, a.out, a.batch_size, a.writers, bulk=not a.no_bulk)


if __name__ == "__main__":
    main()
