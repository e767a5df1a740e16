"""Serving at 1M items: a synthetic graph of record built through the CLI, then ``bench.serve``.

Everything runs as an operator would run it, against a Neo4j of its own (``var/scale``, Bolt
7689, HTTP 7476; the demo database is never touched), with the settings a catalogue this size
needs passed as ``GRAPHREC_*`` variables:

1. ``graphrec neo4j start``;
2. ``graphrec load synthetic`` (default 1M items, 100k users, 2M interactions with sessions);
3. ``graphrec refresh-neighbours --k 20`` (CO_INTERACTED and SIMILAR_CONTENT edges, and the
   same lists as the files the API processes map);
4. ``graphrec train --no-pipeline-eval`` with ``training.baselines=false`` (EASE is
   items x items), ``training.max_eval_users`` (validation and test on a seeded user sample),
   ``training.refit_full=false``, ``gnn.examples_per_user`` and ``gnn.epochs`` small, LightGCN
   off (``gnn.lightgcn.enabled=false``: its full-graph epochs would take hours), and int8
   scalar quantization (the Edge shard builds in about half the time);
5. ``python -m bench.serve --ids synthetic`` at 50, 100 and 200 req/s, in both modes (``computed``:
   keys that never repeat; ``traffic``: a Zipf-like mix with the result cache on), with the cache
   hit ratio of every phase.

Steps already done for the same spec are skipped (``var/scale/steps.json``), so a run that
stopped half-way resumes; ``--fresh`` starts over. Step times and the serving figures go to
``bench/reports/scale.json``; the serving report itself to ``bench/reports/serve-1m.json``.

    python -m bench.scale                      # ~25 min to build the graph on 2 cores, ~12 min to serve
    python -m bench.scale --rates 100 --duration 30 --ops recommendations
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import write_report

BOLT, HTTP = 7689, 7476


def scale_env(a: argparse.Namespace) -> dict[str, str]:
    return dict(os.environ, **{
        "GRAPHREC_VAR_DIR": str(a.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(BOLT), "GRAPHREC_NEO4J_HTTP_PORT": str(HTTP),
        "GRAPHREC_NEO4J_HEAP": a.heap, "GRAPHREC_NEO4J_PAGECACHE": a.pagecache,
        "GRAPHREC_TRAINING_BASELINES": "false", "GRAPHREC_TRAINING_MAX_EVAL_USERS": str(a.eval_users),
        "GRAPHREC_TRAINING_REFIT_FULL": "false", "GRAPHREC_GNN_EPOCHS": str(a.epochs),
        "GRAPHREC_GNN_EXAMPLES_PER_USER": str(a.examples_per_user), "GRAPHREC_QDRANT_QUANTIZATION": "scalar",
        # LightGCN's full-graph epochs over 1M items (100 by default) would take hours here.
        "GRAPHREC_GNN_LIGHTGCN": '{"enabled": false}',
        # Every user's state held in each API process (read at start, in the warm-up), so that a
        # request reads memory, not Neo4j: a cache of the graph of record, bounded by this size
        # (--held-users 0: the default 10,000, most requests read their user's state).
        **({"GRAPHREC_ENGINE_USER_STATE_CACHE_SIZE": str(a.held_users), "GRAPHREC_ENGINE_USER_STATE_PRELOAD": str(a.held_users),
            "GRAPHREC_ENGINE_WARM_UP_S": "300"} if a.held_users else {}),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--interactions", type=int, default=2_000_000)
    ap.add_argument("--k", type=int, default=20, help="neighbours per item")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--examples-per-user", type=int, default=1)
    ap.add_argument("--eval-users", type=int, default=2000)
    ap.add_argument("--held-users", type=int, default=None,
                    help="user states each API process holds (default: every user; 0: the engine's default)")
    ap.add_argument("--heap", default="4g")
    ap.add_argument("--pagecache", default="4g")
    ap.add_argument("--rates", default="50,100,200")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--ops", default="recommendations,similarItems,recordInteraction")
    ap.add_argument("--modes", default="computed,traffic", help="bench.serve's modes (computed, traffic)")
    ap.add_argument("--var-dir", type=Path, default=Path("var/scale"))
    ap.add_argument("--fresh", action="store_true", help="drop the scale graph and build it again")
    ap.add_argument("--keep-running", action="store_true", help="leave the scale Neo4j running afterwards")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/scale.json"))
    a = ap.parse_args()
    if a.held_users is None:
        a.held_users = a.users

    env = scale_env(a)
    spec = {"items": a.items, "users": a.users, "interactions": a.interactions, "k": a.k, "epochs": a.epochs,
            "examples_per_user": a.examples_per_user}
    state_file = a.var_dir / "steps.json"
    exe = [sys.executable, "-m", "graphrec.cli"]
    if a.fresh:
        subprocess.call([*exe, "neo4j", "stop"], env=env)
        shutil.rmtree(a.var_dir, ignore_errors=True)
    a.var_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("spec") != spec:
        if state:
            raise SystemExit(f"{a.var_dir} holds another spec ({state.get('spec')}); pass --fresh to rebuild it")
        state = {"spec": spec, "steps": {}}
    serve_out = a.out.with_name("serve-1m.json")
    steps: list[tuple[str, list[str]]] = [
        ("load", [*exe, "load", "synthetic", "--users", str(a.users), "--items", str(a.items),
                  "--interactions", str(a.interactions)]),
        ("neighbours", [*exe, "refresh-neighbours", "--k", str(a.k)]),
        ("train", [*exe, "train", "--no-pipeline-eval"]),
    ]
    report: dict[str, Any] = {"benchmark": "scale", "spec": spec, "env": {k: v for k, v in env.items() if k.startswith("GRAPHREC_")}}
    try:
        t0 = time.perf_counter()
        subprocess.run([*exe, "neo4j", "start"], env=env, check=True)
        report["neo4j_start_s"] = round(time.perf_counter() - t0, 1)
        for name, argv in steps:
            if name in state["steps"]:
                print(f"=== {name}: done earlier in {state['steps'][name]['seconds']} s (skipped)", flush=True)
                continue
            print(f"=== {name}: {' '.join(argv[2:])}", flush=True)
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, check=True)
            state["steps"][name] = {"seconds": round(time.perf_counter() - t0, 1), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            state_file.write_text(json.dumps(state, indent=2))
        report["steps"] = state["steps"]
        print("=== serve", flush=True)
        subprocess.run([sys.executable, "-m", "bench.serve", "--ids", "synthetic", "--users", str(a.users),
                        "--items", str(a.items), "--rates", a.rates, "--duration", str(a.duration), "--ops", a.ops, "--modes", a.modes,
                        "--label", f"synthetic: {a.items:,} items, {a.users:,} users, {a.interactions:,} interactions",
                        "--ready-timeout", "900", "--out", str(serve_out)], env=env, check=True)
        report["serve"] = json.loads(serve_out.read_text())
    finally:
        if not a.keep_running:
            subprocess.call([*exe, "neo4j", "stop"], env=env)
        write_report(a.out, report)


if __name__ == "__main__":
    main()
