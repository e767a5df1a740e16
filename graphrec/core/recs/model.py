"""The live model as the engine holds it: item embeddings in memory and the user-vector recipe.

Artifacts of a version (written by :mod:`gnn.lifecycle`) under ``<artifact_dir>``:
``item_embeddings.npy`` (float32, L2-normalised rows), ``item_ids.json`` (row → item id) and
``user_params.json`` (the recipe of :mod:`graphrec.core.recs.user_vector`, the one training used).
The engine polls the registry and swaps in a new :class:`LiveModel` when the live version changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.core.recs.hybrid import HybridScorer
from graphrec.core.recs.user_vector import Embeddings


@dataclass
class LiveModel(Embeddings):
    #: The vector collection published from these embeddings (the registry's record); searches
    #: go there rather than through the alias, so query and index vectors are always one model's.
    collection: str | None = None
    #: The version's hybrid scorer (graphrec.core.recs.hybrid; None when it was fit without one):
    #: when present the engine ranks candidates with it.
    hybrid: HybridScorer | None = None

    @classmethod
    def load(cls, version: str, artifact_dir: str | Path, collection: str | None = None,
             default_params: dict[str, Any] | None = None) -> LiveModel:
        """A published version; ``default_params``: the recipe when it was saved without one."""
        d = Path(artifact_dir)
        emb = np.load(d / "item_embeddings.npy").astype(np.float32)
        ids = json.loads((d / "item_ids.json").read_text())
        params_path = d / "user_params.json"
        params = json.loads(params_path.read_text()) if params_path.exists() else dict(default_params or {})
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return cls(version=version, item_ids=ids, emb=emb / norms, user_params=params, collection=collection,
                   hybrid=HybridScorer.load(d))

    def hybrid_scores(self, recent: list[dict[str, Any]], vec: np.ndarray | None,
                      sims: np.ndarray | None = None, now: float | None = None,
                      consumed: Mapping[str, AbstractSet[str]] | None = None) -> np.ndarray | None:
        """The hybrid scores of every item for a user (their recent history, their vector; ``sims``:
        ``emb @ vec`` when the caller has it; ``now``: the request's clock; ``consumed``: every item
        they interacted with and its interaction types), or None without a hybrid scorer."""
        if self.hybrid is None:
            return None
        return self.hybrid.scores(recent, self.index, vec, self.emb, sims, now, consumed)
