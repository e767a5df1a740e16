"""Loaders: everything that enters the graph of record comes through here.

- :mod:`graphrec.core.records` validates rows (users, items, interactions) at the boundary;
- :mod:`loaders.writer` writes validated rows to Neo4j in batches, one transaction per batch;
- :mod:`loaders.files` reads CSV and JSON Lines, reporting bad rows with file, line and reason;
- :mod:`loaders.movielens` fetches MovieLens-100K from the ``recbole`` wheel and loads it;
- :mod:`loaders.synthetic` generates a seeded synthetic catalogue and its interactions.
"""
