"""Pick the vector engine: from the settings (what the app does) or from explicit arguments.

=========  ==========  ==============================================================
backend    url         engine
=========  ==========  ==============================================================
any        set         qdrant-client against that server or cluster
edge       None        Qdrant Edge shards under ``path`` (default ``<var_dir>/vectors``)
qdrant     None        qdrant-client local mode under ``path`` (tests, tiny data)
=========  ==========  ==============================================================
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from graphrec.core.errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from graphrec.core.config import Settings
    from graphrec.core.vectors.base import VectorIndex


def open_vector_index(settings: Settings | None = None, /, *, backend: Literal["edge", "qdrant"] | None = None,
                      path: str | os.PathLike[str] | None = None, url: str | None = None, api_key: str | None = None,
                      hnsw_ef: int | None = None, shards: int | None = None, replicas: int | None = None,
                      quantization: Literal["none", "scalar"] | None = None, read_only: bool = False,
                      **engine_options: Any) -> VectorIndex:
    """Open the configured vector index.

    Values come from ``settings.qdrant`` (and ``settings.var_dir`` for the default paths) when
    given; every keyword argument that is not None overrides them. Without settings, ``backend``
    defaults to ``"edge"`` and ``path`` is required for the embedded engines.

    Args:
        settings: graphrec settings, or None.
        backend: ``"edge"`` (embedded Qdrant Edge) or ``"qdrant"`` (qdrant-client).
        path: Edge root directory, or qdrant-client local-mode directory (``":memory:"`` allowed).
        url, api_key: a Qdrant server or cluster (backend ``"qdrant"``).
        hnsw_ef: search-time beam width.
        shards, replicas: collection layout on a server/cluster. quantization: int8 copies (both engines).
        read_only: Edge only: refuse writes (API processes).
        engine_options: passed to the engine class (``m``, ``ef_construct``, ``timeout``, …).

    Raises:
        ConfigError: an unknown backend, or no path for an embedded engine without settings.
        VectorStoreUnavailable: the engine cannot be opened.
    """
    q = settings.qdrant if settings is not None else None
    backend = backend or (q.backend if q else "edge")
    url = url if url is not None else (q.url if q else None)
    if api_key is None and q is not None and q.api_key is not None:
        api_key = q.api_key.get_secret_value()
    hnsw_ef = hnsw_ef if hnsw_ef is not None else (q.hnsw_ef if q else 256)
    if url and backend == "edge":
        # docs/scaling.md: setting GRAPHREC_QDRANT_URL alone moves graphrec to the server.
        log.info("qdrant.url is set: using the Qdrant server at %s instead of the embedded engine", url)
        backend = "qdrant"
    quantization = quantization or (q.quantization if q else "none")
    if q is not None:
        for key, value in (("m", q.hnsw_m), ("ef_construct", q.hnsw_ef_construct), ("payload_m", q.hnsw_payload_m)):
            engine_options.setdefault(key, value)
    if backend == "edge":
        if path is None and settings is None:
            raise ConfigError("open_vector_index: path is required for the edge backend without settings")
        from graphrec.core.vectors.edge import EdgeIndex

        root = Path(path) if path is not None else Path(settings.var_dir) / "vectors"  # type: ignore[union-attr]
        return EdgeIndex(root, hnsw_ef=hnsw_ef, read_only=read_only, quantization=quantization, **engine_options)
    if backend != "qdrant":
        raise ConfigError(f"unknown vector backend {backend!r} (edge or qdrant)")
    from graphrec.core.vectors.qdrant_server import QdrantIndex

    layout: dict[str, Any] = {"shards": shards if shards is not None else (q.shards if q else 1),
                              "replicas": replicas if replicas is not None else (q.replicas if q else 1),
                              "quantization": quantization}
    if url:
        return QdrantIndex(url=url, api_key=api_key, hnsw_ef=hnsw_ef, **layout, **engine_options)
    if path is None and settings is None:
        raise ConfigError("open_vector_index: give url (server) or path (local mode) for the qdrant backend")
    local = str(path) if path is not None else str(Path(settings.var_dir) / "qdrant-local")  # type: ignore[union-attr]
    return QdrantIndex(path=local, hnsw_ef=hnsw_ef, **layout, **engine_options)
