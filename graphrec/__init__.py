"""graphrec: a graph-centric recommendation service.

Data flows one way: ``loaders/`` write the graph of record (Neo4j), ``gnn/`` learns embeddings
from a snapshot and publishes them to the vector index, ``graphrec/`` retrieves, ranks and
filters at request time, and ``api/`` translates GraphQL into calls on the core.
"""

__version__ = "0.1.0"
