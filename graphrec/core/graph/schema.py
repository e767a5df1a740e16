"""``graphrec schema apply``: constraints and indexes, applied idempotently, version recorded."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from neo4j import RoutingControl

from graphrec.core import cypher
from graphrec.core.graph.store import GraphStore

#: The schema version this code expects; ``cypher/schema/v<N>.cypher`` for N up to it are applied in order.
SCHEMA_VERSION = 3


def statements(version: int) -> list[str]:
    """The DDL statements of ``cypher/schema/v<version>.cypher``."""
    text = cypher.load(f"schema/v{version}").text
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return [s.strip() for s in body.split(";") if s.strip()]


def current_version(store: GraphStore) -> int | None:
    rows = store.read("schema/get_version")
    return int(rows[0]["version"]) if rows and rows[0]["version"] is not None else None


def apply(store: GraphStore, workers: int = 1) -> int:
    """Apply every schema version up to :data:`SCHEMA_VERSION`; safe to run any number of times.

    ``workers`` > 1 creates a version's constraints and indexes side by side (each is built by a
    scan of its label or relationship type; after a bulk import they are all built over a full
    graph, and side by side they take about as long as the longest rather than the sum)."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="graphrec-schema") as pool:
        for v in range(1, SCHEMA_VERSION + 1):  # versions in order, a version's statements side by side
            list(pool.map(lambda stmt: store.run_text(stmt, routing=RoutingControl.WRITE), statements(v)))
    store.run_text("CALL db.awaitIndexes(300)", routing=RoutingControl.READ)
    store.write("schema/set_version", version=SCHEMA_VERSION, applied_at=time.time())
    return SCHEMA_VERSION
