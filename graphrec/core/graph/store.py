"""Thin, typed access to Neo4j: queries by name from the Cypher library, errors as our own.

Every call names its database and its routing (READ or WRITE), so the same code runs against a
single server, a cluster (``neo4j://``) or Aura (``neo4j+s://``). Driver exceptions never leave
this module: they become :class:`GraphStoreUnavailable` (retryable: the server is down or the
connection dropped) or :class:`QueryError` (the query was refused).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import neo4j
from neo4j import AsyncGraphDatabase, GraphDatabase, RoutingControl
from neo4j import exceptions as nx

from graphrec.core import cypher
from graphrec.core.config import Neo4jSettings, Settings
from graphrec.core.errors import (
    CredentialsRefused,
    GraphStoreError,
    GraphStoreUnavailable,
    QueryError,
)
from graphrec.core.graph.credentials import neo4j_password

Row = dict[str, Any]
#: One library statement of a write transaction: (query name, identifiers for its {{placeholders}}, parameters).
Statement = tuple[str, dict[str, str] | None, dict[str, Any]]


class _Batch(list):  # type: ignore[type-arg]
    """A large list parameter whose ``repr`` is short. The driver formats every RUN message for
    its debug log (``repr`` of all parameters) before checking the log level: for a loader's
    batch, a noticeable share of the loader's CPU. Packed like any list."""

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def _quiet(params: dict[str, Any]) -> dict[str, Any]:
    return {k: _Batch(v) if type(v) is list and len(v) > 64 else v for k, v in params.items()}


def resolve_password(settings: Settings) -> str:
    """The Neo4j password: configured, or the one graphrec generated for its local server."""
    if settings.neo4j.password is not None:
        return settings.neo4j.password.get_secret_value()
    if settings.neo4j.managed:
        return neo4j_password(settings, create=False)
    raise GraphStoreError("GRAPHREC_NEO4J_PASSWORD is required for an external Neo4j server")


def _translated(name: str, exc: BaseException) -> Exception | None:
    """graphrec's error for a driver exception, or None when it is not the driver's."""
    if isinstance(exc, nx.ResultFailedError) and isinstance(exc.__cause__, Exception):
        # A result read after its statement failed (e.g. a retried transaction function whose
        # statement met a constraint): the statement's own failure is the cause, and it decides.
        return _translated(name, exc.__cause__)
    if isinstance(exc, nx.ServiceUnavailable | nx.SessionExpired | nx.SessionError):
        return GraphStoreUnavailable(f"Neo4j unavailable during {name}: {type(exc).__name__}")
    if isinstance(exc, nx.AuthError):
        return CredentialsRefused("Neo4j refused the credentials")
    if isinstance(exc, nx.TransientError):
        return GraphStoreUnavailable(f"transient Neo4j error during {name}: {exc.code}")
    if isinstance(exc, nx.ConstraintError):
        return QueryError(f"{name}: constraint violated: {exc.message}")
    if isinstance(exc, nx.Neo4jError):
        return QueryError(f"{name}: {exc.code}: {exc.message}")
    if isinstance(exc, nx.DriverError):
        return GraphStoreUnavailable(f"Neo4j driver error during {name}: {type(exc).__name__}")
    if isinstance(exc, OSError):
        return GraphStoreUnavailable(f"Neo4j connection failed during {name}: {exc}")
    return None


@contextlib.contextmanager
def translate_errors(name: str) -> Iterator[None]:
    """Turn driver exceptions into graphrec's. Messages never include credentials."""
    try:
        yield
    except Exception as exc:
        err = _translated(name, exc)
        if err is None:
            raise
        raise err from exc


def _driver_kwargs(cfg: Neo4jSettings) -> dict[str, Any]:
    return {
        "max_connection_pool_size": cfg.max_connection_pool_size,
        "connection_timeout": cfg.connection_timeout_s,
        "connection_acquisition_timeout": cfg.connection_timeout_s * 2,
        "max_transaction_retry_time": 5.0,
        "notifications_min_severity": "OFF",
    }


def _query(name: str, identifiers: dict[str, str] | None, timeout: float) -> neo4j.Query:
    q = cypher.load(name)
    return neo4j.Query(q.render(**(identifiers or {})), timeout=timeout)  # type: ignore[arg-type]


def _rendered(statements: list[Statement]) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """The statements' query texts with their (quiet) parameters, and a name for errors."""
    return ([(cypher.load(n).render(**(ids or {})), _quiet(p)) for n, ids, p in statements],
            ",".join(sorted({n for n, _, _ in statements})))


class GraphStore:
    """Synchronous store, for the CLI, loaders, export and tests."""

    def __init__(self, cfg: Neo4jSettings, password: str) -> None:
        self.cfg = cfg
        self.database = cfg.database
        self.driver = GraphDatabase.driver(cfg.effective_uri, auth=(cfg.user, password), **_driver_kwargs(cfg))

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphStore:
        return cls(settings.neo4j, resolve_password(settings))

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.driver.close()

    def ping(self) -> bool:
        try:
            self.run_text("RETURN 1 AS ok", routing=RoutingControl.READ)
            return True
        except GraphStoreError:
            return False

    def read(self, name: str, identifiers: dict[str, str] | None = None, **params: Any) -> list[Row]:
        """Run a read query from the library on a reader (replica on a cluster)."""
        return self._run(name, identifiers, params, RoutingControl.READ)

    def write(self, name: str, identifiers: dict[str, str] | None = None, **params: Any) -> list[Row]:
        """Run a write query from the library in one transaction on the leader."""
        return self._run(name, identifiers, params, RoutingControl.WRITE)

    def _run(self, name: str, identifiers: dict[str, str] | None, params: dict[str, Any], routing: RoutingControl) -> list[Row]:
        query = _query(name, identifiers, self.cfg.query_timeout_s)
        with translate_errors(name):
            records, _, _ = self.driver.execute_query(
                query, _quiet(params), database_=self.database, routing_=routing
            )
        return [r.data() for r in records]

    def write_many(self, statements: list[Statement]) -> list[dict[str, int]]:
        """Run several library queries in ONE write transaction (all or nothing).

        Returns each statement's update counters (``relationships_created``, ``nodes_created``, ...).
        The transaction function is retried by the driver on transient errors, so every
        statement must be idempotent (ours are: MERGE on keys).
        """
        rendered, name = _rendered(statements)

        @neo4j.unit_of_work(timeout=max(self.cfg.query_timeout_s, 300.0))
        def work(tx: neo4j.ManagedTransaction) -> list[dict[str, int]]:
            out = []
            for query, params in rendered:
                counters = tx.run(query, params).consume().counters
                out.append({key: getattr(counters, key) for key in
                            ("nodes_created", "relationships_created", "properties_set", "relationships_deleted")})
            return out

        with translate_errors(name), self.driver.session(database=self.database, default_access_mode=neo4j.WRITE_ACCESS) as session:
            return session.execute_write(work)

    def run_text(self, text: str, routing: RoutingControl = RoutingControl.READ, **params: Any) -> list[Row]:
        """Run a fixed statement that is not a library query (``EXPLAIN``, schema DDL, ``RETURN 1``).

        Only graphrec's own constant strings reach here, never user input.
        """
        with translate_errors("statement"):
            records, _, _ = self.driver.execute_query(
                neo4j.Query(text, timeout=self.cfg.query_timeout_s),  # type: ignore[arg-type]
                params, database_=self.database, routing_=routing,
            )
        return [r.data() for r in records]

    def counts(self) -> dict[str, int]:
        rows = self.read("stats/counts")
        return {r["name"]: r["count"] for r in rows}


class AsyncGraphStore:
    """Asynchronous store for the request path (the engine runs candidate sources concurrently)."""

    def __init__(self, cfg: Neo4jSettings, password: str) -> None:
        self.cfg = cfg
        self.database = cfg.database
        self.driver = AsyncGraphDatabase.driver(cfg.effective_uri, auth=(cfg.user, password), **_driver_kwargs(cfg))

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncGraphStore:
        return cls(settings.neo4j, resolve_password(settings))

    async def close(self) -> None:
        await self.driver.close()

    async def read(self, name: str, identifiers: dict[str, str] | None = None, timeout: float | None = None,
                   plain: bool = False, once: bool = False, **params: Any) -> list[Row]:
        """Run a read query. ``plain=True`` for queries that return only maps, lists and scalars
        (no nodes, relationships or paths): rows skip the driver's recursive ``Record.data()``
        conversion, which the hot path's reads (user state, items, neighbour lists) would pay on
        every request. ``once=True``: one auto-commit transaction, not retried (see :meth:`_once`)."""
        if once:
            return await self._once(name, identifiers, params, timeout, plain)
        return await self._run(name, identifiers, params, RoutingControl.READ, timeout, plain)

    async def _once(self, name: str, identifiers: dict[str, str] | None, params: dict[str, Any],
                    timeout: float | None, plain: bool) -> list[Row]:
        """A read as one auto-commit transaction on a read session: one round trip (RUN and PULL)
        where ``execute_query``'s managed transaction takes two (BEGIN, RUN and PULL, then COMMIT),
        at about two thirds of the driver's CPU. Not retried: for the request path's reads, which
        their budget bounds anyway (a failure degrades the answer). It waits for the same
        bookmarks as ``execute_query`` (the driver's), so it sees what this driver wrote."""
        query = _query(name, identifiers, timeout or self.cfg.query_timeout_s)
        with translate_errors(name):
            async with self.driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS,
                                           bookmark_manager=self.driver.execute_query_bookmark_manager) as session:
                result = await session.run(query, params)
                keys = result.keys()
                if plain:
                    return [dict(zip(keys, v, strict=True)) for v in await result.values()]
                return [r.data() async for r in result]

    async def write(self, name: str, identifiers: dict[str, str] | None = None, timeout: float | None = None, **params: Any) -> list[Row]:
        return await self._run(name, identifiers, params, RoutingControl.WRITE, timeout)

    async def _run(self, name: str, identifiers: dict[str, str] | None, params: dict[str, Any], routing: RoutingControl,
                   timeout: float | None, plain: bool = False) -> list[Row]:
        query = _query(name, identifiers, timeout or self.cfg.query_timeout_s)
        with translate_errors(name):
            records, _, keys = await self.driver.execute_query(
                query, params, database_=self.database, routing_=routing
            )
        if plain:
            return [dict(zip(keys, r, strict=True)) for r in records]
        return [r.data() for r in records]

    async def write_many(self, statements: list[Statement]) -> list[dict[str, int]]:
        """Several library queries in ONE write transaction; each statement's counters."""
        rendered, name = _rendered(statements)

        @neo4j.unit_of_work(timeout=self.cfg.query_timeout_s)
        async def work(tx: neo4j.AsyncManagedTransaction) -> list[dict[str, int]]:
            out = []
            for text, params in rendered:
                counters = (await (await tx.run(text, params)).consume()).counters
                out.append({key: getattr(counters, key) for key in
                            ("nodes_created", "relationships_created", "properties_set", "relationships_deleted")})
            return out

        with translate_errors(name):
            async with self.driver.session(database=self.database, default_access_mode=neo4j.WRITE_ACCESS) as session:
                return await session.execute_write(work)

    async def rehearse(self, statements: list[Statement]) -> None:
        """Run library statements in one write transaction and roll it back: Neo4j plans and
        caches them (and runs their operators once) without changing the graph. The API does this
        at start with the write path's statements, so that the first real write after a Neo4j
        start does not wait for their planning."""
        rendered, name = _rendered(statements)
        with translate_errors(name):
            async with self.driver.session(database=self.database, default_access_mode=neo4j.WRITE_ACCESS) as session:
                tx = await session.begin_transaction(timeout=self.cfg.query_timeout_s)
                try:
                    for text, params in rendered:
                        await (await tx.run(text, params)).consume()
                finally:
                    await tx.rollback()

    async def fill_pool(self, n: int, timeout: float = 30.0) -> None:
        """Open ``n`` connections at once, for reads and for writes (on a cluster they go to
        different members), and leave them in the driver's pool. The driver opens connections
        only on demand, and opening one costs more than a request's query: when the request rate
        steps up, every request that finds the pool busy opens its own, all at once, and the
        burst waits for them. A filled pool takes that cost at start instead."""
        n = min(n, self.cfg.max_connection_pool_size)
        with translate_errors("fill_pool"):
            for mode in (neo4j.READ_ACCESS, neo4j.WRITE_ACCESS):
                await self._hold_at_once(mode, n, timeout)

    async def _hold_at_once(self, mode: str, n: int, timeout: float) -> None:
        """``n`` transactions open at the same time (each holds a connection until all are open)."""
        opened = 0
        everyone = asyncio.Event()

        async def hold() -> None:
            nonlocal opened
            try:
                async with self.driver.session(database=self.database, default_access_mode=mode) as session:
                    tx = await session.begin_transaction(timeout=timeout)  # holds its connection until rolled back
                    try:
                        await (await tx.run("RETURN 1")).consume()
                        opened += 1
                        if opened == n:
                            everyone.set()
                        await asyncio.wait_for(everyone.wait(), timeout)
                    finally:
                        await tx.rollback()
            except BaseException:
                everyone.set()  # one failed: the others stop waiting for it
                raise

        await asyncio.gather(*(hold() for _ in range(n)))

    async def ping(self) -> bool:
        try:
            with translate_errors("ping"):
                await self.driver.execute_query("RETURN 1", database_=self.database, routing_=RoutingControl.READ)
            return True
        except GraphStoreError:
            return False
