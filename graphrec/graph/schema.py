"""``graphrec schema apply``: constraints and indexes, applied idempotently, version recorded."""

from __future__ import annotations

import time

from neo4j import RoutingControl

from graphrec import cypher
from graphrec.graph.store import GraphStore

#: The schema version this code expects; ``cypher/schema/v<N>.cypher`` for N up to it are applied in order.
SCHEMA_VERSION = 2


def statements(version: int) -> list[str]:
    """The DDL statements of ``cypher/schema/v<version>.cypher``."""
    text = cypher.load(f"schema/v{version}").text
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return [s.strip() for s in body.split(";") if s.strip()]


def current_version(store: GraphStore) -> int | None:
    rows = store.read("schema/get_version")
    return int(rows[0]["version"]) if rows and rows[0]["version"] is not None else None


def apply(store: GraphStore) -> int:
    """Apply every schema version up to :data:`SCHEMA_VERSION`; safe to run any number of times."""
    for v in range(1, SCHEMA_VERSION + 1):
        for stmt in statements(v):
            store.run_text(stmt, routing=RoutingControl.WRITE)
    store.run_text("CALL db.awaitIndexes(300)", routing=RoutingControl.READ)
    store.write("schema/set_version", version=SCHEMA_VERSION, applied_at=time.time())
    return SCHEMA_VERSION
