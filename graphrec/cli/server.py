"""``graphrec neo4j ...``, ``graphrec schema apply``, ``graphrec clock repair``: the local Neo4j and the graph's upkeep."""

from __future__ import annotations

import time

import typer

from graphrec.cli.common import (
    _store,
    clock_app,
    console,
    friendly,
    neo4j_app,
    schema_app,
    settings,
)
from graphrec.core.errors import GraphrecError


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



# ---- clock --------------------------------------------------------------------------------
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
