"""The ``graphrec`` command.

``graphrec neo4j start|stop|status``, ``graphrec schema apply``, ``graphrec load ...``,
``graphrec stats``, ``graphrec demo-summary`` and the bench commands. Errors a user can cause
print one readable line and exit 1; no stack traces.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from graphrec.core.config import Settings, get_settings
from graphrec.core.errors import BadRowError, GraphrecError

app = typer.Typer(help="graphrec: graph-centric recommendations.", no_args_is_help=True, add_completion=False)
neo4j_app = typer.Typer(help="Manage the local Neo4j server.", no_args_is_help=True)
schema_app = typer.Typer(help="Constraints and indexes.", no_args_is_help=True)
load_app = typer.Typer(help="Load data into the graph.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (JSON reports under bench/reports).", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(schema_app, name="schema")
app.add_typer(load_app, name="load")
app.add_typer(bench_app, name="bench")
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
apikey_app = typer.Typer(help="API keys for the GraphQL API.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
clock_app = typer.Typer(help="The graph's clock (the newest interaction time, 'now' for decay).", no_args_is_help=True)
app.add_typer(clock_app, name="clock")

console = Console(stderr=False)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn graphrec errors into one red line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GraphrecError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    return get_settings()


def _store() -> Any:
    from graphrec.core.graph.store import GraphStore

    return GraphStore.from_settings(settings())


# ---- neo4j ---------------------------------------------------------------------------------
@neo4j_app.command("start")
@friendly
def neo4j_start() -> None:
    """Provision (Maven Central) and start the local Neo4j; waits until Bolt answers."""
    from graphrec.core.neo4j_server import Neo4jServer

    s = settings()
    server = Neo4jServer(s)
    if not s.neo4j.managed:
        console.print(f"GRAPHREC_NEO4J_URI is set ({s.neo4j.uri}): using that server, nothing started locally.")
        st = server.status()
        if not st.bolt:
            raise GraphrecError(f"the external Neo4j at {s.neo4j.uri} does not answer")
        return
    t0 = time.perf_counter()
    if not server.provisioned():
        console.print(f"Resolving Neo4j {s.neo4j.version} from Maven Central into {server.lib} ...")
    st = server.start()
    console.print(f"Neo4j {s.neo4j.version} up in {time.perf_counter() - t0:.1f}s (pid {st.pid})")
    for line in st.lines():
        console.print("  " + line)
    if s.neo4j.password is None:
        console.print(f"  user neo4j; password in {server.password_file} (mode 0600)")


@neo4j_app.command("stop")
@friendly
def neo4j_stop() -> None:
    """Stop the local Neo4j."""
    from graphrec.core.neo4j_server import Neo4jServer

    s = settings()
    if not s.neo4j.managed:
        console.print("external Neo4j: nothing to stop")
        return
    console.print("stopped" if Neo4jServer(s).stop() else "not running")


@neo4j_app.command("status")
@friendly
def neo4j_status() -> None:
    """Is the server running and answering?"""
    from graphrec.core.neo4j_server import Neo4jServer

    st = Neo4jServer(settings()).status()
    for line in st.lines():
        console.print(line)
    if not st.bolt:
        raise typer.Exit(3)


# ---- schema --------------------------------------------------------------------------------
@schema_app.command("apply")
@friendly
def schema_apply() -> None:
    """Create constraints and indexes (idempotent) and record the schema version."""
    from graphrec.core.graph import schema

    with _store() as store:
        before = schema.current_version(store)
        v = schema.apply(store)
    console.print(f"schema version {v} applied (was {before})")


# ---- load ----------------------------------------------------------------------------------
class OnErrorMode(str, Enum):  # noqa: UP042 - typer's choice type; str() of members is not used
    skip = "skip"
    stop = "stop"


def _on_error(on_error: OnErrorMode | None) -> Literal["skip", "stop"]:
    if on_error is None:
        return settings().loader.on_error
    return "stop" if on_error is OnErrorMode.stop else "skip"


def _writer(store: Any, on_error: OnErrorMode | None, batch_size: int | None) -> Any:
    from loaders.writer import GraphWriter

    s = settings()
    return GraphWriter(store, batch_size=batch_size or s.loader.batch_size,
                       on_error=_on_error(on_error), progress=sys.stderr.isatty() or True,
                       writers=s.loader.writers)


def _print_reports(reports: list[Any], json_out: Path | None = None, warnings: list[Any] | None = None) -> None:
    for w in (warnings or [])[:20]:
        console.print(f"  [yellow]warning[/yellow] {w}", highlight=False)
    if len(warnings or []) > 20:
        console.print(f"  ... and {len(warnings or []) - 20} more dropped fields (all in --report)")
    for r in reports:
        console.print(r.summary())
        for e in r.errors[:20]:
            console.print(f"  [yellow]bad row[/yellow] {e.file}:{e.line}: {e.reason}", highlight=False)
        if r.bad > 20:
            console.print(f"  ... and {r.bad - 20} more bad rows")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        dicts = [r.to_dict() for r in reports]
        if warnings:
            dicts[0]["warnings"] = [{"file": w.file, "line": w.line, "field": w.field, "value": w.value,
                                     "reason": w.reason} for w in warnings]
        json_out.write_text(json.dumps(dicts, indent=2))


OnError = Annotated[OnErrorMode | None, typer.Option("--on-error", help="skip: report bad rows and go on; stop: stop at the first.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Rows per transaction.")]


@load_app.command("movielens")
@friendly
def load_movielens(kg: Annotated[bool, typer.Option(help="Also load the Freebase knowledge graph.")] = True,
                   batch_size: BatchSize = None,
                   reload: Annotated[bool, typer.Option("--reload", help="Load again even if a previous load completed.")] = False) -> None:
    """MovieLens-100K from the recbole==1.2.1 wheel (downloaded once, sha256-verified, cached)."""
    from graphrec.core.graph import schema
    from loaders import movielens

    root = movielens.fetch(settings().cache_dir)
    key = "dataset:movielens-100k" + (":kg" if kg else "")
    with _store() as store:
        schema.apply(store)
        if not reload and store.read("load/meta_get", key=key):
            console.print("MovieLens-100K is already loaded (a previous load completed); --reload loads it again")
            return
        reports = movielens.load(_writer(store, OnErrorMode.stop, batch_size), root, with_kg=kg)
        store.write("load/meta_set", key=key, props={"loaded_at": time.time()})
    _print_reports(reports)


def _load_file(kind: str, path: Path, on_error: OnErrorMode | None, batch_size: int | None, report: Path | None) -> None:
    from graphrec.core.graph import schema
    from graphrec.core.records import RowLimits
    from loaders import files

    warnings: list[files.FieldWarning] = []
    rows = files.read_file(path, kind, warnings, RowLimits.from_settings(settings().loader))  # type: ignore[arg-type]
    with _store() as store:
        schema.apply(store)
        w = _writer(store, on_error, batch_size)
        total = files.count_lines(path)
        try:
            rep = {"users": w.users, "items": w.items, "interactions": w.interactions}[kind](rows, total=total)
        except BadRowError as exc:
            raise GraphrecError(f"stopped at bad row {exc.file}:{exc.line}: {exc.reason} "
                                "(nothing of that batch was written; earlier batches were)") from None
        if kind in ("items", "interactions"):
            dated = store.write("load/created_from_first_interaction", now=time.time())[0]["items"]
            if dated:
                console.print(f"{dated:,} items without created_at dated by their first interaction")
    _print_reports([rep], report, warnings)
    if rep.bad:
        raise typer.Exit(2)


PathArg = Annotated[Path, typer.Argument(help="A .csv or .jsonl file.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the load report as JSON here.")]


@load_app.command("users")
@friendly
def load_users(path: PathArg, on_error: OnError = None, batch_size: BatchSize = None, report: ReportOpt = None) -> None:
    """Users from CSV/JSONL (id, created_at, attribute columns)."""
    _load_file("users", path, on_error, batch_size, report)


@load_app.command("items")
@friendly
def load_items(path: PathArg, on_error: OnError = None, batch_size: BatchSize = None, report: ReportOpt = None) -> None:
    """Items from CSV/JSONL (id, title, year, available, description, categories, tags, created_at)."""
    _load_file("items", path, on_error, batch_size, report)


@load_app.command("interactions")
@friendly
def load_interactions(path: PathArg, on_error: OnError = None, batch_size: BatchSize = None, report: ReportOpt = None) -> None:
    """Interactions from CSV/JSONL (user_id, item_id, type, ts, value, dwell_seconds, session_id, key)."""
    _load_file("interactions", path, on_error, batch_size, report)


def _print_bulk(rep: Any, json_out: Path | None = None) -> None:
    _print_reports(rep.reports)
    for note in rep.notes:
        console.print(f"  [yellow]note[/yellow] {note}", highlight=False)
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in rep.phases.items())
    console.print(f"bulk import: {rep.interactions:,} interactions, "
                  + ", ".join(f"{n:,} {k}" for k, n in rep.nodes.items())
                  + f" in {rep.seconds:.1f}s = {rep.rate:,.0f} interactions/s ({phases})")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(rep.to_dict(), indent=2))


@load_app.command("bulk")
@friendly
def load_bulk(users: Annotated[Path | None, typer.Option(help="Users, .csv or .jsonl.")] = None,
              items: Annotated[Path | None, typer.Option(help="Items, .csv or .jsonl.")] = None,
              interactions: Annotated[Path | None, typer.Option(help="Interactions, .csv or .jsonl.")] = None,
              on_error: OnError = None, report: ReportOpt = None) -> None:
    """The FIRST load of an empty local graph, through neo4j-admin database import (stops and
    restarts the local server; refused when the graph holds data). Same files as load users/items/
    interactions; about twice the online loader's rate at 5M interactions (python -m bench.load)."""
    from loaders import files
    from loaders.bulk import BulkImport

    if items is None and users is None:
        raise GraphrecError("give at least --items (interactions name loaded items) or --users")
    from graphrec.core.records import RowLimits

    limits = RowLimits.from_settings(settings().loader)
    with BulkImport(settings(), on_error=_on_error(on_error)) as bulk:
        try:
            if users is not None:
                bulk.users(files.read_file(users, "users"), total=files.count_lines(users))
            if items is not None:
                bulk.items(files.read_file(items, "items"), total=files.count_lines(items))
            if interactions is not None:
                bulk.interactions(files.read_file(interactions, "interactions", limits=limits), total=files.count_lines(interactions))
        except BadRowError as exc:
            raise GraphrecError(f"stopped at bad row {exc.file}:{exc.line}: {exc.reason} (nothing was imported)") from None
        rep = bulk.commit()
    _print_bulk(rep, report)
    if any(r.bad for r in rep.reports):
        raise typer.Exit(2)


@load_app.command("synthetic")
@friendly
def load_synthetic(users: int = 10_000, items: int = 5_000, interactions: int = 200_000, categories: int = 20,
                   seed: int = 7, batch_size: BatchSize = None,
                   bulk: Annotated[bool, typer.Option("--bulk", help="First load of an empty local graph "
                                                      "through neo4j-admin import (see load bulk).")] = False) -> None:
    """A seeded synthetic catalogue (power-law popularity, latent tastes, sessions), streamed."""
    from graphrec.core.graph import schema
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec

    cat = SyntheticCatalog(SyntheticSpec(users=users, items=items, interactions=interactions,
                                         categories=categories, seed=seed))
    if bulk:
        from loaders.bulk import import_synthetic

        _print_bulk(import_synthetic(settings(), cat))
        return
    with _store() as store:
        schema.apply(store)
        w = _writer(store, OnErrorMode.stop, batch_size)
        reports = [w.users(cat.users(), total=users), w.items(cat.items(), total=items),
                   w.interactions(cat.interaction_batches(), total=interactions)]
    _print_reports(reports)


# ---- stats / demo --------------------------------------------------------------------------
@app.command("stats")
@friendly
def stats(graph: Annotated[bool, typer.Option("--graph", help="Also the interaction graph: degree distributions, "
                                                "components, cold items, and a degree plot.")] = False,
          plot: Annotated[Path, typer.Option(help="Where --graph writes its degree plot.")] = Path("var/graph_degrees.png"),
          ) -> None:
    """What is in the graph."""
    with _store() as store:
        counts = store.counts()
        snap = None
        if graph:
            from graphrec.core.export import export_snapshot

            snap = export_snapshot(store)
    t = Table("what", "count")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    if snap is not None:
        from gnn.graphstats import graph_stats, plot_degrees

        st = graph_stats(snap)
        g = Table("interaction graph", "value")
        for k in ("users", "items", "edges", "components", "users_outside_largest", "cold_items",
                  "users_without_interactions"):
            g.add_row(k.replace("_", " "), f"{st[k]:,}")
        g.add_row("density", f"{st['density']:.4f}")
        g.add_row("largest component", f"{st['largest_component_share']:.1%} of nodes")
        g.add_row("cold item share", f"{st['cold_item_share']:.1%}")
        for kind in ("user", "item"):
            q = st[f"{kind}_degree"]
            if q:
                g.add_row(f"{kind} degree", f"median {q['median']:.0f}, p90 {q['p90']:.0f}, p99 {q['p99']:.0f}, "
                                            f"max {q['max']:.0f}")
        console.print(g)
        console.print(f"degree plot: {plot_degrees(st, plot)}")


@clock_app.command("repair")
@friendly
def clock_repair() -> None:
    """Recompute the clock from the interactions stored, ignoring any later than now plus
    loader.max_clock_skew_s (an event from the future moved it). Scans every interaction."""
    from graphrec.engine.writes import repair_clock

    with _store() as store:
        r = repair_clock(store, settings().loader.max_clock_skew_s)

    def when(ts: float | None) -> str:
        return "none" if ts is None else f"{ts:.0f} ({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(ts))} UTC)"

    console.print(f"clock was {when(r['was'])}, now {when(r['ts'])}")
    if r["future"]:
        console.print(f"[yellow]{r['future']:,} interaction(s) lie past now + max_clock_skew_s; they were kept and "
                      "no longer move the clock[/yellow]")


@app.command("demo-summary")
@friendly
def demo_summary(user_id: str = "196", limit: int = 10) -> None:
    """Counts, a sample of collaborative recommendations straight from Cypher, the Browser address."""
    from graphrec.core.neo4j_server import Neo4jServer
    from graphrec.core.recs.merge import decay_now

    s = settings()
    with _store() as store:
        counts = store.counts()
        t = Table("in the graph", "count", title="graphrec: the graph of record")
        for k, v in counts.items():
            t.add_row(k, f"{v:,}")
        console.print(t)
        hist = store.read("repo/user_history", user_id=user_id, limit=5)
        # Decay as of the user's latest event (graphrec.core.recs.merge.decay_now): a live write that
        # moved the graph's clock to today must not decay a 1998 history to nothing.
        now = decay_now(hist, store.read("recs/latest_ts")[0]["ts"] or time.time())
        rows = store.read("recs/co_interaction", user_id=user_id, type_weights=s.interactions.score_weights, now=now,
                          half_life_s=s.engine.half_life_days * 86400.0, history=20, fanout=30, limit=limit)
        ids = [r["item_id"] for r in rows] + [h["item_id"] for h in hist] + [b for r in rows for b in r["because"]]
        titles = {r["id"]: r["title"] for r in store.read("repo/get_items", ids=ids)}
    console.print(f"\nUser {user_id}'s latest ratings: " + "; ".join(
        f"{titles.get(h['item_id'], h['item_id'])} ({h['value']:.0f})" for h in hist))
    rt = Table("#", "item", "title", "score", "because you rated", title=f"Collaborative recommendations for user {user_id} (cypher/recs/co_interaction.cypher)")
    for n, r in enumerate(rows, 1):
        rt.add_row(str(n), r["item_id"], titles.get(r["item_id"], ""), f"{r['score']:.2f}",
                   ", ".join(titles.get(b, b) for b in r["because"]))
    console.print(rt)
    if s.neo4j.managed:
        server = Neo4jServer(s)
        console.print(f"\nNeo4j Browser: {server.browser_url}  (user neo4j, password in {server.password_file})")
        console.print("Try: MATCH p=(:User {id:'196'})-[:RATED]->(:Item)-[:IN_CATEGORY]->(:Category) RETURN p LIMIT 50")
    else:
        console.print(f"\nNeo4j at {s.neo4j.uri}")




@app.command("refresh-neighbours")
@friendly
def refresh_neighbours(k: int = 50, if_changed: Annotated[bool, typer.Option(
        "--if-changed", help="Skip when the graph is unchanged since the last refresh (counts and clock).")] = False) -> None:
    """Recompute the materialised CO_INTERACTED and SIMILAR_CONTENT neighbour edges (nearline job)."""
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    with _store() as store:
        signature = json.dumps([store.counts(), store.read("recs/latest_ts")[0]["ts"], k], sort_keys=True)
        last = store.read("load/meta_get", key="neighbours")
        if if_changed and last and last[0]["props"].get("signature") == signature:
            console.print("neighbours: the graph is unchanged since the last refresh; reused")
            return
        snap = export_snapshot(store)
        written = refresh(store, snap, k=k, type_weights=settings().interactions.score_weights)
        store.write("load/meta_set", key="neighbours", props={"signature": signature, "at": time.time()})
    for rel, n in written.items():
        console.print(f"{rel}: {n:,} edges")


# ---- models ------------------------------------------------------------------------------
@app.command("train")
@friendly
def train_cmd(force: Annotated[bool, typer.Option("--force", help="Promote even if it regresses; train even without new data.")] = False,
              no_pipeline_eval: Annotated[bool, typer.Option("--no-pipeline-eval", help="Skip the offline replay of the request pipeline.")] = False,
              background: Annotated[bool, typer.Option("--background", help="Start it detached and return at once (log: var/logs/train.log; progress: graphrec status).")] = False) -> None:
    """Export, train the GNN (early stopping on validation NDCG@10), evaluate against baselines,
    register, publish to the vector index and promote if it does not regress. Progress goes to
    var/run/train-status.json (``graphrec status``, the API's /readyz)."""
    s = settings()
    if background:  # before importing torch: returns in a second
        _train_in_background(s, force, no_pipeline_eval)
        return
    from gnn.lifecycle import run_pipeline
    from gnn.schedule import retrain_lock
    from graphrec.core.progress import StatusWriter

    with retrain_lock(s.var_dir), StatusWriter(s.var_dir) as status:
        out = run_pipeline(s, force=force, evaluate_pipeline=not no_pipeline_eval)
        status.status["version"] = out.get("version")
    if out["status"] == "skipped":
        console.print(out["reason"])
        return
    console.print(out["table"], highlight=False, markup=False)
    console.print(f"\nversion {out['version']}: {out['status']} ({out['reason']}); training {out['train_seconds']}s, "
                  f"total {out['seconds']}s; report {out['report']}")


def _train_in_background(s: Settings, force: bool, no_pipeline_eval: bool) -> None:
    import subprocess

    from graphrec.core.progress import pid_path, running_pid

    pid = running_pid(s.var_dir)
    if pid is not None:
        console.print(f"training is already running (pid {pid}); `graphrec status` shows its progress")
        return
    log = s.var_dir / "logs" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "graphrec.cli", "train"] + (["--force"] if force else []) \
        + (["--no-pipeline-eval"] if no_pipeline_eval else [])
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

        res = evaluate_version(s, version, list(dict.fromkeys(protocol)), cut)
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
            report = json.loads((Path(v.artifact_dir or "") / "evaluation.json").read_text())
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
    served without it (fusion + MMR) on the same offline replay, and only with that GNN version."""
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
    from gnn.ranking.lifecycle import retrain_cycle
    from gnn.schedule import next_run, run_forever

    s = settings()
    if not once:
        console.print(f"next run at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(next_run(cron or s.training.cron, time.time())))}")
    run_forever(s, lambda st, scheduled: retrain_cycle(st, scheduled=scheduled, progress=False), cron, once,
                on_tick=lambda e: console.print(json.dumps({k: v for k, v in e.items() if k not in ("table", "tables")}, default=str)))


# ---- serving -------------------------------------------------------------------------------
@app.command("serve")
@friendly
def serve(host: Annotated[str | None, typer.Option(help="Bind address (default api.host, 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default api.port, 8000).")] = None,
          workers: Annotated[int | None, typer.Option(help="Worker processes (default api.workers).")] = None,
          check: Annotated[bool, typer.Option("--check", help="Only check that the port is free.")] = False) -> None:
    """Serve the GraphQL API on uvicorn (GraphQL at /graphql, widget demo at /demo, /dashboard)."""
    import uvicorn

    s = settings()
    h, p, w = host or s.api.host, port or s.api.port, workers or s.api.workers
    _port_free(h, p)
    if check:
        return
    # Worker processes inherit these before numpy/torch load: one math thread each (see
    # api.app.single_threaded_math, which also applies them when the app is started otherwise).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if w > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds up every worker's samples (api.metrics); the directory starts empty.
        import shutil

        mdir = s.var_dir / "run" / f"metrics-{p}"
        shutil.rmtree(mdir, ignore_errors=True)
        mdir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mdir)
    console.print(f"graphrec API on http://{h}:{p}/graphql  (demo: http://{h}:{p}/demo, metrics: /metrics)")
    # api.server's protocol bounds request heads, the time a request may take to arrive and the
    # connections per client address (uvicorn's own limits do not).
    uvicorn.run("api.app:app_factory", factory=True, host=h, port=p, workers=w, log_level="warning",
                timeout_graceful_shutdown=10, limit_concurrency=s.api.max_connections,
                http="api.server:GuardedHttpToolsProtocol")


def _port_free(host: str, port: int) -> None:
    """A port already in use is a one-line error that says what to do (a second `make demo`)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise GraphrecError(f"port {port} is in use (another `graphrec serve` or `make demo` running?): "
                                "stop it, or pass --port / set GRAPHREC_API_PORT") from None


@apikey_app.command("create")
@friendly
def apikey_create(scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, interact (only "
                                                             "recordInteraction, for keys in public pages).")] = "read",
                  name: Annotated[str, typer.Option(help="A label for people.")] = "",
                  origins: Annotated[str, typer.Option(help="Comma-separated origins an interact key may be used from "
                                                            "(https://shop.example); default api.interact_origins.")] = ""
                  ) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from api.auth import create_key

    with _store() as store:
        kid, key = create_key(store, [x.strip() for x in scopes.split(",") if x.strip()], name,
                              [x.strip() for x in origins.split(",") if x.strip()])
    console.print(f"key id {kid} (scopes: {scopes}{'; origins: ' + origins if origins else ''}). The key, shown once:")
    print(key)


@apikey_app.command("revoke")
@friendly
def apikey_revoke(key_id: str) -> None:
    """Revoke a key by its id (refused everywhere within api.key_cache_ttl_s seconds)."""
    from api.auth import revoke_key

    with _store() as store:
        if not revoke_key(store, key_id):
            raise GraphrecError(f"no API key with id {key_id!r}")
    console.print(f"revoked {key_id}")


@apikey_app.command("list")
@friendly
def apikey_list() -> None:
    """API keys (ids, scopes, status; never the keys)."""
    from api.auth import list_keys

    with _store() as store:
        rows = list_keys(store)
    t = Table("id", "name", "scopes", "origins", "created", "revoked")
    for r in rows:
        t.add_row(r["id"], r["name"] or "", ",".join(r["scopes"]), ",".join(r["origins"]), time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created_at"])),
                  "yes" if r["revoked_at"] else "")
    console.print(t)


# ---- bench ---------------------------------------------------------------------------------
@bench_app.command("load")
@friendly
def bench_load(synthetic_interactions: int = 5_000_000, out: Path = Path("bench/reports/load.json")) -> None:
    """Interactions/s into Neo4j for MovieLens-100K and a synthetic set (isolated databases are not
    available in Community, so the graph is wiped first: run it against a scratch server)."""
    from bench.load import run

    run(settings(), synthetic_interactions=synthetic_interactions, out=out)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
