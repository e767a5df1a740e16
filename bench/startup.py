"""Start-up benchmark: from ``graphrec serve`` to the first answered ``recommendations``.

What a second ``make demo`` waits for once everything is loaded (and trained): the API's start.
Each run starts ``graphrec serve`` (anonymous reads on, the configured port and workers) against
the graph the settings point at, polls ``recommendations`` for user ``--user`` until it answers
with items, then asks for the next 40 users' recommendations (how many came back degraded, their
median latency), then waits for ``/readyz`` to say ready (the start-up warm-up is over), and stops
the server. ``--restart-neo4j`` restarts the local Neo4j before each run (its read path cold, as
after a reboot). Run it from the checkout whose code you measure (``python -m`` imports from the
current directory first); to compare two versions, run it in each, alternately.

``--with-training``: what ``make demo`` does on a first run: a ``graphrec train --force
--no-pipeline-eval`` starts together with the server, and is stopped once the run has measured
``/readyz``. Each run is a pair, interleaved: the training started at once (its export reads the
whole graph while the API warms up and answers its first requests), then with ``--after-api``
(the export waits for the warm-up: what ``make demo`` runs now). Each run records the training's
stage when the API was ready.

    python -m bench.startup --runs 2 --restart-neo4j --out bench/reports/startup.json
    python -m bench.startup --runs 3 --with-training --out bench/reports/startup-training.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

QUERY = '{ recommendations(userId: "%s", first: 10) { modelVersion degraded items { rank } } }'


def _ask(port: int, user: str, timeout: float = 10.0) -> dict[str, Any] | None:
    body = json.dumps({"query": QUERY % user}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out: dict[str, Any] = json.loads(r.read())["data"]["recommendations"]
            return out
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
            return True
    except (OSError, urllib.error.HTTPError):
        return False


def one_run(port: int, user: str, limit_s: float = 300.0, training: str | None = None) -> dict[str, Any]:
    """One start; ``training``: None, "now" (a training starts with the server) or "after-api"
    (the same with ``--after-api``)."""
    env = dict(os.environ, GRAPHREC_API_ANONYMOUS_READ="true", GRAPHREC_API_PORT=str(port))
    t0 = time.monotonic()
    trainer = None
    if training is not None:
        trainer = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "train", "--force", "--no-pipeline-eval",
                                    *(["--after-api"] if training == "after-api" else [])], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {"first_answer_s": None, "ready_s": None, **({"training": training} if training else {})}
    try:
        while time.monotonic() - t0 < limit_s:
            res = _ask(port, user, timeout=5.0)
            if res and res.get("items"):
                out["first_answer_s"] = round(time.monotonic() - t0, 1)
                break
            time.sleep(0.1)
        if out["first_answer_s"] is not None:
            lat, degraded = [], 0
            for u in range(1, 41):
                t = time.monotonic()
                res = _ask(port, str(u))
                lat.append(time.monotonic() - t)
                degraded += bool(res is None or res.get("degraded"))
            out.update(next_40_degraded=degraded, next_40_median_ms=round(1000 * statistics.median(lat)))
            while time.monotonic() - t0 < limit_s and not _ready(port):
                time.sleep(0.2)
            out["ready_s"] = round(time.monotonic() - t0, 1)
            if trainer is not None:
                from graphrec.core.config import get_settings
                from graphrec.core.progress import read_status

                st = read_status(get_settings().var_dir) or {}
                out["training_stage_at_ready"] = st.get("stage") if st.get("pid") == trainer.pid else None
    finally:
        if trainer is not None and trainer.poll() is None:
            os.killpg(trainer.pid, signal.SIGTERM)
            trainer.wait(60)
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:  # a loaded machine: uvicorn's graceful stop can take long
            proc.kill()
            proc.wait(30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--port", type=int, default=None, help="default: api.port")
    ap.add_argument("--user", default="196")
    ap.add_argument("--restart-neo4j", action="store_true")
    ap.add_argument("--with-training", action="store_true",
                    help="each run: a pair, a training started with the server, then one with --after-api")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from graphrec.core.config import get_settings

    port = args.port or get_settings().api.port
    runs = []
    for k in range(args.runs):
        for training in ("now", "after-api") if args.with_training else (None,):
            if args.restart_neo4j:
                for cmd in ("stop", "start"):
                    subprocess.run([sys.executable, "-m", "graphrec.cli", "neo4j", cmd], check=cmd == "start",
                                   stdout=subprocess.DEVNULL)
            runs.append(one_run(port, args.user, training=training))
            print(f"run {k + 1}: {json.dumps(runs[-1])}", flush=True)
    report: dict[str, Any] = {"restart_neo4j": args.restart_neo4j, "with_training": args.with_training, "runs": runs,
                              "load_average": os.getloadavg()}
    for training in ("now", "after-api") if args.with_training else (None,):
        mine = [r for r in runs if r.get("training") == training]
        report[f"medians{'_training_' + training if training else ''}"] = {
            k: statistics.median(v) if (v := [r[k] for r in mine if r.get(k) is not None]) else None
            for k in ("first_answer_s", "next_40_degraded", "next_40_median_ms", "ready_s")}
    if not args.with_training:
        report["first_answer_median_s"] = report["medians"]["first_answer_s"]
    print(json.dumps(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
