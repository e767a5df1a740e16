"""``graphrec load ...``, ``graphrec stats``, ``graphrec demo-summary``, ``graphrec refresh-neighbours``: data in the graph."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from graphrec.cli.common import _store, app, console, friendly, load_app, settings, step_lock
from graphrec.core.errors import BadRowError, GraphrecError


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
                       on_error=_on_error(on_error), progress=True,
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
    with step_lock("load-movielens", "`graphrec load movielens`"), _store() as store:
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
    interactions; faster than the online loader on a large first load (python -m bench.load compares them)."""
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


@app.command("explain")
@friendly
def explain(user_id: Annotated[str, typer.Argument(help="The user.")],
            item_id: Annotated[str, typer.Argument(help="The recommended item.")],
            graphml: Annotated[Path | None, typer.Option(help="Also write the subgraph as GraphML (Gephi, yEd, Cytoscape).")] = None,
            limit: Annotated[int, typer.Option(min=1, max=500, help="Paths of each kind at most.")] = 25) -> None:
    """The paths between a user and an item: who else interacted with what you did, and what the
    item shares with your items (networkx in Python: graphrec.core.explanation.explanation_graph)."""
    from graphrec.core.explanation import explanation_graph, paths_by_kind, write_graphml

    with _store() as store:
        g = explanation_graph(store, user_id, item_id, limit)
    t = Table("from", "relationship", "to", "path")
    for a, b, d in sorted(g.edges(data=True), key=lambda e: (e[2]["kind"], e[0], e[1])):
        t.add_row(g.nodes[a]["name"], d["type"], g.nodes[b]["name"], d["kind"])
    console.print(t)
    kinds = paths_by_kind(g)
    console.print(f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges"
                  + (": " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) if kinds else
                     " (no collaborative or content path: the embeddings or popularity brought it)"))
    if graphml is not None:
        console.print(f"GraphML: {write_graphml(g, graphml)}")


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
    """Recompute the materialised CO_INTERACTED and SIMILAR_CONTENT neighbour edges (nearline job),
    and the same lists as files the API maps (var/neighbours)."""
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    with step_lock("refresh-neighbours", "`graphrec refresh-neighbours`"), _store() as store:
        signature = json.dumps([store.counts(), store.read("recs/latest_ts")[0]["ts"], k], sort_keys=True)
        last = store.read("load/meta_get", key="neighbours")
        index_dir = settings().var_dir / "neighbours"
        if (if_changed and last and last[0]["props"].get("signature") == signature
                and (index_dir / str(last[0]["props"].get("version"))).is_dir()):
            console.print("neighbours: the graph is unchanged since the last refresh; reused")
            return
        snap = export_snapshot(store)
        written = refresh(store, snap, settings().interactions.score_weights, k=k, index_dir=index_dir)
        store.write("load/meta_set", key="neighbours", props={"signature": signature, "at": time.time()})
    for rel, n in written.items():
        console.print(f"{rel}: {n:,} edges")
