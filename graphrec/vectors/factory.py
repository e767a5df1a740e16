"""Pick the vector engine from the settings."""

from __future__ import annotations

from typing import Any

from graphrec.config import Settings


def open_vector_index(settings: Settings, read_only: bool = False) -> Any:
    """``qdrant.url`` set → qdrant-client against that server/cluster; else the ``backend``:
    ``edge`` (Qdrant Edge shards under ``var/vectors``) or ``qdrant`` (qdrant-client local mode)."""
    q = settings.qdrant
    if q.url:
        from graphrec.vectors.qdrant_server import QdrantIndex

        return QdrantIndex(url=q.url, api_key=q.api_key.get_secret_value() if q.api_key else None,
                           hnsw_ef=q.hnsw_ef, shards=q.shards, replicas=q.replicas, quantization=q.quantization)
    if q.backend == "qdrant":
        from graphrec.vectors.qdrant_server import QdrantIndex

        return QdrantIndex(path=str(settings.var_dir / "qdrant-local"), hnsw_ef=q.hnsw_ef)
    from graphrec.vectors.edge import EdgeIndex

    return EdgeIndex(settings.var_dir / "vectors", hnsw_ef=q.hnsw_ef, read_only=read_only)
