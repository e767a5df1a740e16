"""Offline jobs: the GNN and what else is computed away from requests, from a snapshot of the graph.

- :mod:`graphrec.core.export` (the domain) streams a :class:`~graphrec.core.snapshot.Snapshot`
  out of Neo4j; :mod:`gnn.split` makes the evaluation protocols' train / validation / test splits;
- :mod:`gnn.features` builds item input features from content; :mod:`gnn.walks` computes
  random-walk importance neighbourhoods; :mod:`gnn.nn` holds the layers, :mod:`gnn.model` the
  PinSage model, :mod:`gnn.train` its training loop, :mod:`gnn.lightgcn` LightGCN;
- :mod:`gnn.metrics`, :mod:`gnn.baselines`, :mod:`gnn.evaluate` compare them with strong baselines;
- :mod:`gnn.ranking` trains the DCN-v2 ranker on the served pipeline replayed offline;
- :mod:`gnn.neighbours` materialises item neighbour lists in the graph;
- :mod:`gnn.lifecycle` runs export → train → evaluate → register → publish; :mod:`gnn.schedule`
  runs it (and the ranker's retraining) on a cron.
"""
