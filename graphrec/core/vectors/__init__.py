"""The vector index behind one small protocol, one module per engine.

- :mod:`graphrec.core.vectors.base`: the :class:`VectorIndex` protocol, :class:`VectorFilter`, :class:`Hit`;
- :mod:`graphrec.core.vectors.edge`: Qdrant Edge, the Qdrant engine in-process (the default on one machine);
- :mod:`graphrec.core.vectors.qdrant_server`: qdrant-client, for a Qdrant server or cluster (and its
  local mode, which tests use);
- :func:`graphrec.core.vectors.factory.open_vector_index` picks one from the settings or arguments.
"""

from graphrec.core.vectors.base import PAYLOAD_ID, Hit, VectorFilter, VectorIndex, point_id
from graphrec.core.vectors.factory import open_vector_index

__all__ = ["PAYLOAD_ID", "Hit", "VectorFilter", "VectorIndex", "open_vector_index", "point_id"]
