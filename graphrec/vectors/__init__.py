"""The vector index behind one small protocol, one module per engine.

- :mod:`graphrec.vectors.edge`: Qdrant Edge, the Qdrant engine in-process (the default on one machine);
- :mod:`graphrec.vectors.qdrant_server`: qdrant-client, for a Qdrant server or cluster (and its
  local mode, which tests use);
- :func:`graphrec.vectors.factory.open_vector_index` picks one from the settings.
"""

from graphrec.vectors.base import Hit, VectorFilter, VectorIndex, point_id

__all__ = ["Hit", "VectorFilter", "VectorIndex", "point_id"]
