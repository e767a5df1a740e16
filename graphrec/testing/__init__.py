"""Helpers for graphrec's tests (and for anyone testing code built on graphrec).

- :func:`isolated_settings`: settings for an isolated Neo4j under ``var/test`` on its own ports;
- :func:`own_neo4j`: a small Neo4j of a test's own (free ports), for tests that stop or restart it;
- :func:`wipe`: empty a test database;
- :func:`tiny_graph`: a small hand-checkable catalogue written through the real loaders;
- :func:`on_engine`: run an engine call (a read, an upsert) from synchronous test code.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from graphrec.core.config import Settings, load_settings

if TYPE_CHECKING:
    from graphrec.engine.engine import Engine

T = TypeVar("T")


def isolated_settings(var_dir: Path | None = None, ports: tuple[int, int] | None = None) -> Settings:
    """Settings for the test server: ``var/test`` (or ``$GRAPHREC_TEST_VAR_DIR``), Bolt 17687,
    HTTP 17474, a small heap. Isolated from the demo database (``var/neo4j``, 7687/7474).

    ``ports`` (Bolt, HTTP) pins a server of its own, e.g. free ports for a fault-injection test
    that stops and kills its Neo4j while the session's server serves the other tests."""
    base = load_settings()
    var = var_dir or Path(os.environ.get("GRAPHREC_TEST_VAR_DIR", str(base.var_dir / "test")))
    bolt = int(os.environ.get("GRAPHREC_TEST_BOLT_PORT", "17687"))
    http = int(os.environ.get("GRAPHREC_TEST_HTTP_PORT", "17474"))
    if ports is not None:
        bolt, http = ports
    elif (running := _running_ports(var)) is not None:
        bolt, http = running  # the session's server from an earlier run, on the ports it was given
    elif _taken_by_another(bolt, http):
        from graphrec.testing.server import free_port

        bolt, http = free_port(), free_port()
    return base.model_copy(update={
        "var_dir": var,
        "neo4j": base.neo4j.model_copy(update={
            "uri": None, "password": None, "bolt_port": bolt, "http_port": http, "heap": "1g", "pagecache": "512m",
            "warm_connections": 4,  # engines are created by the dozen in the suite
        }),
        # No start-up warm-up (engines are created by the dozen; the session's Neo4j is warm): a
        # test about the warm-up turns it on (warm_up_s), and then commits 50, not 1,000, times.
        "engine": base.engine.model_copy(update={"warm_up_s": 0.0, "warm_up_commits": 50}),
    })


@contextmanager
def own_neo4j(home: Path, api_port: int | None = None) -> Iterator[Settings]:
    """A small Neo4j (512 MB heap) under ``home`` on free ports, running, with the settings to reach
    it (password included); stopped at the end. Not the session's server: tests that stop, kill
    or restart their Neo4j (fault injection, bulk imports) use one of these. ``api_port``: the API
    port its Browser fetches graphrec's guide and style sheet from (api.port)."""
    from pydantic import SecretStr

    from graphrec.core.neo4j_server import Neo4jServer
    from graphrec.testing.server import free_port

    s = isolated_settings(var_dir=home, ports=(free_port(), free_port()))
    s = s.model_copy(update={"neo4j": s.neo4j.model_copy(update={"heap": "512m", "pagecache": "256m"})})
    if api_port is not None:
        s = s.model_copy(update={"api": s.api.model_copy(update={"port": api_port})})
    server = Neo4jServer(s)
    server.stop()  # a leftover from an interrupted run would hold the store files
    server.start()
    try:
        yield s.model_copy(update={"neo4j": s.neo4j.model_copy(update={"password": SecretStr(server.password())})})
    finally:
        server.stop()


def _running_ports(var: Path) -> tuple[int, int] | None:
    """The (Bolt, HTTP) ports of the test server living in ``var`` when it is running (from the
    configuration it was started with: free ports, when the defaults were taken by another
    checkout's server), else None."""
    import re

    home = var / "neo4j"
    try:
        pid = int((home / "run" / "neo4j.pid").read_text().strip())
        os.kill(pid, 0)
        conf = (home / "conf" / "neo4j.conf").read_text()
    except (OSError, ValueError):
        return None
    found = {k: int(v) for k, v in re.findall(r"^server\.(bolt|http)\.listen_address=.*:(\d+)\s*$", conf, re.M)}
    return (found["bolt"], found["http"]) if {"bolt", "http"} <= found.keys() else None


def _taken_by_another(*ports: int) -> bool:
    """One of ``ports`` answers (and the test server in our var is not running: another one)."""
    import socket

    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
    return False


def wipe(store: Any) -> None:
    """Delete every node and relationship (keeps the schema)."""
    # CALL ... IN TRANSACTIONS needs an auto-commit transaction (session.run).
    with store.driver.session(database=store.database) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


class TinyItem(TypedDict):
    id: str
    title: str
    year: int
    categories: list[str]
    tags: list[str]


TINY_ITEMS: list[TinyItem] = [
    {"id": "heat", "title": "Heat", "year": 1995, "categories": ["Action", "Thriller"], "tags": ["heist", "la"]},
    {"id": "ronin", "title": "Ronin", "year": 1998, "categories": ["Action", "Thriller"], "tags": ["heist", "paris"]},
    {"id": "toy", "title": "Toy Story", "year": 1995, "categories": ["Animation", "Children"], "tags": ["toys"]},
    {"id": "up", "title": "Up", "year": 2009, "categories": ["Animation", "Children"], "tags": ["balloons"]},
    {"id": "alien", "title": "Alien", "year": 1979, "categories": ["Horror", "SciFi"], "tags": ["space"]},
    {"id": "new", "title": "Brand New", "year": 2024, "categories": ["Action"], "tags": ["heist"]},
]
# (user, item, type, ts, value)
TINY_INTERACTIONS: list[tuple[str, str, str, float, float | None]] = [
    ("alice", "heat", "RATE", 1000.0, 5.0), ("alice", "ronin", "RATE", 1100.0, 4.0),
    ("bob", "heat", "RATE", 1200.0, 5.0), ("bob", "ronin", "CLICK", 1300.0, None), ("bob", "alien", "PURCHASE", 1400.0, None),
    ("carol", "toy", "VIEW", 1500.0, None), ("carol", "up", "PURCHASE", 1600.0, None),
    ("dave", "heat", "CLICK", 1700.0, None), ("dave", "alien", "RATE", 1800.0, 4.0),
]


def tiny_graph(store: Any) -> None:
    """Write the tiny catalogue above through the real loaders."""
    from graphrec.core.records import InteractionRow, InteractionType, ItemRow, UserRow
    from loaders.writer import GraphWriter, Source

    w = GraphWriter(store, batch_size=100, on_error="stop", progress=False)
    users = sorted({u for u, *_ in TINY_INTERACTIONS})
    w.users((UserRow(id=u), Source("tiny", n)) for n, u in enumerate(users, 1))
    w.items((ItemRow(**it, created_at=500.0 if it["id"] != "new" else 1900.0), Source("tiny", n))
            for n, it in enumerate(TINY_ITEMS, 1))
    w.interactions((InteractionRow(user_id=u, item_id=i, type=InteractionType.parse(t), ts=ts, value=v, session_id=f"{u}-s1"),
                    Source("tiny", n)) for n, (u, i, t, ts, v) in enumerate(TINY_INTERACTIONS, 1))


def on_engine(settings: Settings, fn: Callable[[Engine], Awaitable[T]]) -> T:
    """``await fn(engine)`` on an engine of its own (no warm-up, no background tasks, closed
    after), from synchronous code: e.g. ``on_engine(s, lambda e: e.repo.get_item("1"))``. Its
    request budget is wide (30 s): a write goes to Neo4j, not to the journal, however cold the
    connection."""
    import asyncio

    from graphrec.core.graph.store import AsyncGraphStore
    from graphrec.engine.engine import Engine

    async def go() -> T:
        wide = settings.model_copy(update={"engine": settings.engine.model_copy(update={"request_budget_ms": 30_000.0})})
        e = Engine(wide, AsyncGraphStore.from_settings(wide))
        try:
            return await fn(e)
        finally:
            await e.close()

    return asyncio.run(go())


def count_reads(engine: Engine) -> list[str]:
    """From now on, the name of every query ``engine`` reads is appended to the returned list."""
    reads: list[str] = []
    real = engine.store.read

    def counting(name: str, *a: Any, **kw: Any) -> Any:
        reads.append(name)
        return real(name, *a, **kw)

    engine.store.read = counting  # type: ignore[method-assign]
    return reads
