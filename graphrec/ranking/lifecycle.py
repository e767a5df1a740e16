"""``graphrec train-ranker``: train the DCN-v2 ranker on the live GNN's candidates, evaluate it next
to fusion and embedding-similarity ranking on the test split, register it, and enable it only if it
beats ranking by embedding similarity alone (NDCG@10 and Recall@100).

Caveat: the GNN's evaluation embeddings were refit on train + validation, so the candidates the
ranker learns from (labels from the validation window) come from embeddings that saw that window,
which flatters its training data; the test split is untouched by both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnn.export import export_snapshot
from gnn.split import train_val_test
from graphrec.config import Settings
from graphrec.engine.model import LiveModel
from graphrec.errors import ModelError
from graphrec.graph.store import GraphStore
from graphrec.ranking.offline import World, embedding_scorer, evaluate, fusion_scorer, targets
from graphrec.ranking.train import dataset, fit
from graphrec.registry import Registry, new_version_id


def train_ranker(settings: Settings, progress: bool = True, negatives: int = 50) -> dict[str, Any]:
    t0 = time.perf_counter()
    with GraphStore.from_settings(settings) as store:
        reg = Registry(store, settings.var_dir / "models")
        live = reg.live("gnn")
        if live is None or not live.artifact_dir:
            raise ModelError("train the GNN first (graphrec train): the ranker learns on its candidates")
        art = Path(live.artifact_dir)
        snap = export_snapshot(store, progress=progress)
        ids = json.loads((art / "item_ids.json").read_text())
        if ids != snap.item_ids:
            raise ModelError("the catalogue changed since the live GNN was trained: retrain it first")
        params = json.loads((art / ("eval_user_params.json" if (art / "eval_user_params.json").exists() else "user_params.json")).read_text())
        emb = np.load(art / "eval_item_embeddings.npy")
        model = LiveModel(live.id, ids, emb / np.maximum(1e-12, np.linalg.norm(emb, axis=1, keepdims=True)), params)
        tr, va, te = train_val_test(snap)
        x, y = dataset(World.build(snap, tr, model), targets(snap, va), negatives, np.random.default_rng(settings.seed),
                       progress=progress)
        ranker = fit(x, y, settings.seed, progress=progress)
        world = World.build(snap, tr | va, model)
        truth = targets(snap, te)
        rows = {"pipeline (fusion + MMR)": evaluate(world, truth, fusion_scorer(world)),
                "pipeline (GNN similarity)": evaluate(world, truth, embedding_scorer(world)),
                "pipeline (DCN-v2 ranker)": evaluate(world, truth, ranker.scorer(world))}
        r, e = rows["pipeline (DCN-v2 ranker)"], rows["pipeline (GNN similarity)"]
        enabled = r["ndcg@10"] > e["ndcg@10"] and r["recall@100"] >= e["recall@100"]
        version = new_version_id("ranker")
        out = reg.artifact_dir(version)
        ranker.save(out)
        meta = json.loads((out / "ranker.json").read_text())
        meta["enabled"] = enabled
        (out / "ranker.json").write_text(json.dumps(meta))
        (out / "evaluation.json").write_text(json.dumps({"gnn": live.id, "results": rows, "enabled": enabled,
                                                         "training_examples": int(len(y)), "positives": int(y.sum())}, indent=2))
        reg.register("ranker", version, seed=settings.seed, config={"negatives": negatives, "features": meta["features"]},
                     metrics={k: float(v) for k, v in r.items()}, snapshot=snap.stats(), training_seconds=ranker.seconds,
                     extra={"enabled": enabled, "gnn_version": live.id})
        reg.promote(version)
    return {"version": version, "enabled": enabled, "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
