"""The graph of record: the Neo4j store, its schema and the typed repository over it."""

from graphrec.core.graph.store import AsyncGraphStore, GraphStore

__all__ = ["GraphStore", "AsyncGraphStore"]
