"""The graph of record: the Neo4j store and its schema (the typed reads and writes of the request
path are graphrec.engine.repository and graphrec.engine.writes)."""

from graphrec.core.graph.store import AsyncGraphStore, GraphStore

__all__ = ["GraphStore", "AsyncGraphStore"]
