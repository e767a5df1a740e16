"""``graphrec serve`` and ``graphrec apikey ...``: the GraphQL API."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from graphrec.cli.common import _store, apikey_app, app, console, friendly, journal_app, settings
from graphrec.core.errors import GraphrecError


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
    _credentials_accepted()
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
    from api.server import uvicorn_options

    uvicorn.run("api.app:app_factory", factory=True, host=h, port=p, workers=w, log_level="warning",
                timeout_graceful_shutdown=10, **uvicorn_options(s.api))


def _credentials_accepted() -> None:
    """Refuse to serve with a password Neo4j refuses (CredentialsRefused: the one-line advice of
    graphrec.cli.common.refused_credentials): every answer would be degraded, and only /readyz
    would say why. A Neo4j that does not answer is no reason to wait: the API serves degraded
    and reconnects by itself."""
    from graphrec.core.errors import CredentialsRefused

    try:
        with _store() as store:
            store.read("recs/latest_ts")
    except CredentialsRefused:
        raise
    except GraphrecError:
        pass


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


# ---- the interaction journal -----------------------------------------------------------------
def _journal() -> Any:
    from graphrec.engine.journal import Journal

    return Journal(settings().var_dir / "journal")


@journal_app.command("dead-letters")
@friendly
def journal_dead_letters(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, as stored.")] = False) -> None:
    """The journal's dead letters (interactions the replay could never write), oldest first."""
    import json

    journal = _journal()
    entries = journal.dead_letters()
    if as_json:
        for e in entries:
            console.print_json(json.dumps(e, sort_keys=True))
        return
    table = Table("#", "when", "user", "item", "type", "key", "reason")
    for n, e in enumerate(entries, 1):
        row = e["row"] if isinstance(e["row"], dict) else {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])) if isinstance(e.get("at"), int | float) else "-"
        table.add_row(str(n), when, *(str(row.get(k, "-")) for k in ("user", "item", "type", "key")),
                      str(e.get("reason", ""))[:120])
    console.print(table)
    console.print(f"{len(entries)} dead letters in {journal.dead_path}")


@journal_app.command("requeue")
@friendly
def journal_requeue(reason: Annotated[str | None, typer.Option(help="Only entries whose reason contains this text.")] = None,
                    item: Annotated[str | None, typer.Option(help="Only entries for this item id.")] = None,
                    all_: Annotated[bool, typer.Option("--all", help="Every entry (when no filter is given).")] = False) -> None:
    """Put dead letters back in the journal once their cause is fixed (the item created, say): the
    API's replay (or `graphrec journal replay`) writes them; the old dead-letter file is kept."""
    if reason is None and item is None and not all_:
        raise GraphrecError("say which dead letters to requeue: --reason TEXT, --item ID or --all")

    def matches(e: dict[str, Any]) -> bool:
        return ((reason is None or reason in str(e.get("reason", "")))
                and (item is None or e["row"].get("item") == item))

    n, kept = _journal().requeue(matches)
    if not n:
        console.print("no dead letter matched: nothing requeued")
        return
    console.print(f"requeued {n} interactions; the dead-letter file before this is kept as {kept}")


@journal_app.command("replay")
@friendly
def journal_replay() -> None:
    """Write the journal's pending interactions to Neo4j now (the API does it by itself every few
    seconds; this is for when no API runs)."""
    from graphrec.core.records import RowLimits
    from graphrec.engine.journal import write_rows_sync

    s, j = settings(), _journal()
    before, dead = j.pending(), j.dead_lettered()
    with _store() as store:
        n = j.replay(lambda rows: write_rows_sync(store, rows, RowLimits.from_settings(s.loader)),
                     max_attempts=s.engine.journal_max_attempts)
    console.print(f"replayed {n} journal lines ({before:,} bytes were pending); "
                  f"{j.dead_lettered() - dead} dead-lettered")
