"""The domain: records and their validation, settings, errors, the graph store, the vector
index, the snapshot export, the model registry, and the recommendation logic (``recs``) that
serving and the offline replay share. It imports nothing above it (see docs/architecture.md)."""
