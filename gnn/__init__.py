"""PinSage-style GNN: reads a snapshot of the graph, learns item and user embeddings, publishes them.

- :mod:`graphrec.core.export` streams a :class:`~graphrec.core.snapshot.Snapshot` out of Neo4j;
- :mod:`gnn.split` makes the temporal train / validation / test split;
- :mod:`gnn.features` builds item input features from content;
- :mod:`gnn.walks` computes random-walk importance neighbourhoods;
- :mod:`gnn.nn` holds the layers, :mod:`gnn.model` the model, :mod:`gnn.train` the training loop;
- :mod:`gnn.metrics`, :mod:`gnn.baselines`, :mod:`gnn.evaluate` compare it with strong baselines;
- :mod:`gnn.lifecycle` runs export → train → evaluate → register → publish; :mod:`gnn.schedule` on a cron.
"""
