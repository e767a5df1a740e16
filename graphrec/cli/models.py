"""``graphrec train``, ``status``, ``evaluate``, ``train-ranker``, ``models ...``, ``schedule``: the model lifecycle."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphrec.cli.common import _store, app, console, friendly, models_app, settings
from graphrec.core.config import Settings
from graphrec.core.errors import GraphrecError


# ---- models ------------------------------------------------------------------------------
@app.command("train")
@friendly
def train_cmd(force: Annotated[bool, typer.Option("--force", help="Promote even if it regresses; train even without new data.")] = False,
              no_pipeline_eval: Annotated[bool, typer.Option("--no-pipeline-eval", help="Skip the offline replay of the request pipeline.")] = False,
              background: Annotated[bool, typer.Option("--background", help="Start it detached and return at once (log: var/logs/train.log; progress: graphrec status).")] = False,
              after_api: Annotated[bool, typer.Option("--after-api", help="Wait until the local API (api.port) has finished its start-up warm-up before the export (at most 10 min), so Neo4j serves the API's first answers first.")] = False) -> None:
    """Export, train the GNN (early stopping on validation NDCG@10), evaluate against baselines,
    register, publish to the vector index and promote if it does not regress. Progress goes to
    var/run/train-status.json (``graphrec status``, the API's /readyz)."""
    s = settings()
    if background:  # before importing torch: returns in a second
        _train_in_background(s, force, no_pipeline_eval, after_api)
        return
    from gnn.lifecycle import run_pipeline
    from gnn.schedule import retrain_lock
    from graphrec.core.progress import StatusWriter

    with retrain_lock(s.var_dir), StatusWriter(s.var_dir) as status:
        if after_api:
            status.status["stage"] = "waiting for the API's warm-up"
            waited = wait_for_api(lambda: api_warmed(s.api.port), AFTER_API_LIMIT_S)
            console.print(f"the API's warm-up: {waited}; training starts")
        out = run_pipeline(s, force=force, evaluate_pipeline=not no_pipeline_eval)
        status.status["version"] = out.get("version")
    if out["status"] == "skipped":
        console.print(out["reason"])
        return
    console.print(out["table"], highlight=False, markup=False)
    console.print(f"\nversion {out['version']}: {out['status']} ({out['reason']}); training {out['train_seconds']}s, "
                  f"total {out['seconds']}s; report {out['report']}")


#: ``graphrec train --after-api`` waits at most this long for the API's warm-up, then trains anyway.
AFTER_API_LIMIT_S = 600.0


def api_warmed(port: int, host: str = "127.0.0.1") -> bool | None:
    """The local API's start-up warm-up from its ``/readyz`` (200 or 503, both say): True when it
    is over, False while it warms up (or its engine is not created yet), None when no API answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=5) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:  # 503: not ready, and the body says why
        body = exc.read()
    except OSError:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return "warming" in data and not data["warming"]


def wait_for_api(probe: Callable[[], bool | None], limit_s: float, every_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> str:
    """Poll ``probe`` (:func:`api_warmed`) until it says True or ``limit_s`` passed; returns what
    happened: "over", "still warming after N s", "no API answered in N s"."""
    t0 = clock()
    seen = False  # an API answered at least once
    while True:
        state = probe()
        if state:
            return "over"
        seen = seen or state is not None
        if clock() - t0 >= limit_s:
            return f"still warming after {limit_s:.0f} s" if seen else f"no API answered in {limit_s:.0f} s"
        sleep(every_s)


def _train_in_background(s: Settings, force: bool, no_pipeline_eval: bool, after_api: bool = False) -> None:
    import subprocess

    from graphrec.core.progress import pid_path, running_pid

    pid = running_pid(s.var_dir)
    if pid is not None:
        console.print(f"training is already running (pid {pid}); `graphrec status` shows its progress")
        return
    log = s.var_dir / "logs" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "graphrec.cli", "train"] + (["--force"] if force else []) \
        + (["--no-pipeline-eval"] if no_pipeline_eval else []) + (["--after-api"] if after_api else [])
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    pid_path(s.var_dir).parent.mkdir(parents=True, exist_ok=True)
    pid_path(s.var_dir).write_text(f"{proc.pid}\n")
    console.print(f"training the GNN in the background (pid {proc.pid}, log {log}); `graphrec status` shows "
                  "its progress; the API switches to the new version when it is promoted")


@app.command("status")
@friendly
def status_cmd() -> None:
    """What is running: Neo4j, the live model version, background training (stage, epoch, ETA)."""
    from graphrec.core.neo4j_server import Neo4jServer
    from graphrec.core.progress import describe, read_status
    from graphrec.core.registry import Registry

    s = settings()
    st = Neo4jServer(s).status()
    for line in st.lines():
        console.print(line)
    if st.bolt:
        with _store() as store:
            live = Registry(store, s.var_dir / "models").live("gnn")
        console.print(f"live model: {live.id if live else 'none yet (answers come from the Cypher paths, content and popularity)'}")
    console.print(describe(read_status(s.var_dir)), highlight=False)


@app.command("evaluate")
@friendly
def evaluate_cmd(version: Annotated[str | None, typer.Option(help="A version id (default: the live one).")] = None,
                 protocol: Annotated[list[str] | None, typer.Option(
                     "--protocol", help="Run a fresh evaluation under this protocol (user-temporal, global-time; "
                                        "repeat the option for both) instead of printing the stored one.")] = None,
                 cut: Annotated[float, typer.Option(help="global-time: the quantile of timestamps where test begins.")] = 0.8,
                 seeds: Annotated[int, typer.Option(help="With --protocol: refit every model with this many seeds "
                                                         "(from the version's) and print mean ± spread.")] = 1,
                 ) -> None:
    """Print a version's evaluation tables (the GNN, the served pipeline and every baseline from the
    same run, per protocol), or with --protocol evaluate it afresh on the current graph; redraw
    the metric history across versions (PNG)."""
    from gnn.evaluate import format_tables, plot_version_history, report_tables
    from gnn.split import PROTOCOLS
    from graphrec.core.registry import Registry

    s = settings()
    out = s.var_dir / "reports"
    if protocol:
        bad = [p for p in protocol if p not in PROTOCOLS]
        if bad:
            raise GraphrecError(f"unknown protocol {bad[0]!r}: one of {', '.join(PROTOCOLS)}")
        if not 0.0 < cut < 1.0:
            raise GraphrecError(f"--cut must be between 0 and 1, got {cut}")
        from gnn.lifecycle import evaluate_version

        if seeds < 1:
            raise GraphrecError(f"--seeds must be at least 1, got {seeds}")
        res = evaluate_version(s, version, list(dict.fromkeys(protocol)), cut, seeds=seeds)
        v = res["version"]
        console.print(f"{v.id} ({v.status}) — evaluated now on the current graph")
        console.print(res["table"], highlight=False, markup=False)
        report_path = Path(res["report"])
    else:
        with _store() as store:
            reg = Registry(store, s.var_dir / "models")
            v = reg.get(version) if version else reg.live("gnn")
            if v is None:
                raise GraphrecError("no live model yet: run `graphrec train` first")
            stored = Path(v.artifact_dir or "") / "evaluation.json"
            if not stored.is_file():
                raise GraphrecError(f"{v.id} has no stored evaluation at {stored} (its artifacts are gone, or it "
                                    "was trained without evaluation): evaluate it afresh with `graphrec evaluate --protocol user-temporal`")
            report = json.loads(stored.read_text())
        tables, meta = report_tables(report)
        console.print(f"{v.id} ({v.status}) — stored evaluation of its training run")
        for p, m in meta.items():
            console.print(f"  {p}: {m.get('description', '')}", highlight=False)
        console.print(format_tables(tables, meta), highlight=False, markup=False)
        out.mkdir(parents=True, exist_ok=True)
        report_path = out / "evaluation.json"
        report_path.write_text(json.dumps(report, indent=2))
    with _store() as store:
        versions = [{"id": x.id, "metrics": x.metrics, "status": x.status}
                    for x in reversed(Registry(store, s.var_dir / "models").list("gnn", 50))]
    plot_version_history(versions, out / "versions.png")
    console.print(f"JSON: {report_path}; plots: {Path(v.artifact_dir or '') / 'learning_curve.png'}, {out / 'versions.png'}")


@app.command("train-ranker")
@friendly
def train_ranker_cmd() -> None:
    """Train the DCN-v2 ranker on the live GNN's candidates; it is used only if it beats the pipeline
    served without it (the live version's hybrid, or fusion, + MMR) on the same offline replay, and only
    with that GNN version."""
    from gnn.evaluate import format_table
    from gnn.ranking.lifecycle import train_ranker

    out = train_ranker(settings())
    console.print(format_table(out["rows"]), highlight=False)
    console.print(f"ranker {out['version']} registered; {'ENABLED' if out['enabled'] else 'disabled'}: {out['reason']} "
                  f"(it must beat the pipeline served without it on the same replay); {out['seconds']}s")


@models_app.command("list")
@friendly
def models_list(kind: str = "gnn", limit: int = 20) -> None:
    """Model versions, newest first."""
    from graphrec.core.registry import Registry

    with _store() as store:
        versions = Registry(store, settings().var_dir / "models").list(kind, limit)
    t = Table("id", "status", "NDCG@10", "Recall@100", "train s", "interactions", "seed")
    for v in versions:
        t.add_row(v.id, v.status, f"{v.metrics.get('ndcg@10', float('nan')):.4f}",
                  f"{v.metrics.get('recall@100', float('nan')):.4f}", f"{v.training_seconds or 0:.0f}",
                  f"{v.snapshot.get('interactions', 0):,}", str(v.seed))
    console.print(t)


@models_app.command("rollback")
@friendly
def models_rollback() -> None:
    """Return to the previous version: switch the vector alias back, then mark it live."""
    from gnn.lifecycle import rollback

    live, rolled = rollback(settings())
    console.print(f"{live} is live again ({rolled} rolled back)")


@app.command("schedule")
@friendly
def schedule_cmd(cron: Annotated[str | None, typer.Option(help="Cron expression (default: training.cron).")] = None,
                 once: Annotated[bool, typer.Option("--once", help="Run one cycle now and exit.")] = False) -> None:
    """Retrain on a cron schedule: skips when there is no new data, one run at a time, every run
    logged; after a promoted GNN, the ranker too when one is in use."""
    from gnn.schedule import next_run, retrain_cycle, run_forever

    s = settings()
    if not once:
        console.print(f"next run at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(next_run(cron or s.training.cron, time.time())))}")
    run_forever(s, lambda st, scheduled: retrain_cycle(st, scheduled=scheduled, progress=False), cron, once,
                on_tick=lambda e: console.print(json.dumps({k: v for k, v in e.items() if k not in ("table", "tables")}, default=str)))
