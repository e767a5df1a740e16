"""``graphrec train-ranker``: train the DCN-v2 ranker on the live GNN's candidates, evaluate it next
to what the engine serves without it and to embedding-similarity ranking on the test split,
register it, and enable it only if it beats what the engine serves without it (the live
version's hybrid + MMR, or fusion + MMR for a version without a hybrid) on the same replay
(NDCG@10 higher and Recall@100 not lower). Both rows are recorded with the version (``metrics``
and ``baseline_json``; the row keeps its name ``SERVED_WITHOUT_ROW`` either way), with the GNN
version it was trained on (the engine uses it only with that one).

After ``graphrec schedule`` promotes a GNN, :func:`gnn.schedule.retrain_cycle` trains a new ranker on it when a
ranker is in use (the live ranker is enabled), so that the service does not go without one
until someone runs ``train-ranker`` by hand.

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

from gnn.ranking.offline import World, embedding_scorer, evaluate, fusion_scorer, targets
from gnn.ranking.train import dataset, fit
from gnn.split import train_val_test
from graphrec.core.config import Settings
from graphrec.core.errors import ModelError
from graphrec.core.export import export_snapshot
from graphrec.core.graph.store import GraphStore
from graphrec.core.recs.hybrid import HybridScorer
from graphrec.core.recs.model import LiveModel
from graphrec.core.registry import Registry, new_version_id

RANKER_ROW = "pipeline (DCN-v2 ranker + MMR)"
SERVED_WITHOUT_ROW = "pipeline (fusion + MMR: served without the ranker)"


def gate(rows: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Enable the ranker only if it beats the pipeline served without it on the same replay:
    NDCG@10 higher and Recall@100 not lower."""
    r, b = rows[RANKER_ROW], rows[SERVED_WITHOUT_ROW]
    if r["ndcg@10"] > b["ndcg@10"] and r["recall@100"] >= b["recall@100"]:
        return True, (f"beats the pipeline served without it: NDCG@10 {r['ndcg@10']:.4f} > {b['ndcg@10']:.4f}, "
                      f"Recall@100 {r['recall@100']:.4f} >= {b['recall@100']:.4f}")
    return False, (f"does not beat the pipeline served without it: NDCG@10 {r['ndcg@10']:.4f} vs {b['ndcg@10']:.4f}, "
                   f"Recall@100 {r['recall@100']:.4f} vs {b['recall@100']:.4f}")


def ranker_on_split(settings: Settings, negatives: int = 50, progress: bool = False) -> Any:
    """For gnn.evaluate's pipeline family: a ranker trained on a split as ``train_ranker`` trains
    one (candidates from the split's train, labels from its validation), scoring the replay."""

    def make(snap: Any, split: Any, model: LiveModel, world: World) -> Any:
        x, y = dataset(World.build(snap, split.train, model, engine=settings.engine,
                                   type_weights=settings.interactions.score_weights), targets(snap, split.val), negatives,
                       np.random.default_rng(settings.seed), progress=progress)
        return fit(x, y, settings.seed, progress=progress).scorer(world)

    return make



def replay_model(version: str, art: Path) -> LiveModel:
    """The live GNN version as the ranker's replay scores with it: its evaluation embeddings, user
    recipe and hybrid (``eval_*``: fit on its gate split's train + validation, never its test),
    so that the replay has the engine's ``hybrid`` source and, without the ranker, ranks with the
    hybrid as the engine does. A version without a hybrid ranks by fusion, as the engine does."""
    ids = json.loads((art / "item_ids.json").read_text())
    params = json.loads((art / ("eval_user_params.json" if (art / "eval_user_params.json").exists() else "user_params.json")).read_text())
    emb = np.load(art / "eval_item_embeddings.npy")
    return LiveModel(version, ids, emb / np.maximum(1e-12, np.linalg.norm(emb, axis=1, keepdims=True)), params,
                     hybrid=HybridScorer.load(art / "eval_hybrid"))


def train_ranker(settings: Settings, progress: bool = True, negatives: int = 50) -> dict[str, Any]:
    t0 = time.perf_counter()
    with GraphStore.from_settings(settings) as store:
        reg = Registry(store, settings.var_dir / "models")
        live = reg.live("gnn")
        if live is None or not live.artifact_dir:
            raise ModelError("train the GNN first (graphrec train): the ranker learns on its candidates")
        snap = export_snapshot(store, progress=progress)
        model = replay_model(live.id, Path(live.artifact_dir))
        if model.item_ids != snap.item_ids:
            raise ModelError("the catalogue changed since the live GNN was trained: retrain it first")
        tr, va, te = train_val_test(snap)
        x, y = dataset(World.build(snap, tr, model, engine=settings.engine,
                                    type_weights=settings.interactions.score_weights), targets(snap, va), negatives,
                       np.random.default_rng(settings.seed), progress=progress)
        ranker = fit(x, y, settings.seed, progress=progress)
        world = World.build(snap, tr | va, model, engine=settings.engine,
                            type_weights=settings.interactions.score_weights)
        truth = targets(snap, te)
        # One replay, three rankings of the same candidates: what is served without a ranker, the
        # ranker, and embedding similarity alone (for reference).
        rows = {SERVED_WITHOUT_ROW: evaluate(world, truth, fusion_scorer(world)),
                RANKER_ROW: evaluate(world, truth, ranker.scorer(world)),
                "pipeline (GNN similarity + MMR)": evaluate(world, truth, embedding_scorer(world))}
        enabled, reason = gate(rows)
        version = new_version_id("ranker")
        out = reg.artifact_dir(version)
        ranker.save(out)
        meta = json.loads((out / "ranker.json").read_text())
        meta.update(enabled=enabled, gnn_version=live.id)
        (out / "ranker.json").write_text(json.dumps(meta))
        # What the served-without row ranked with: the engine's ranking without a ranker.
        served_without = "hybrid" if model.hybrid is not None else "fusion"
        (out / "evaluation.json").write_text(json.dumps({"gnn": live.id, "results": rows, "enabled": enabled, "reason": reason,
                                                         "served_without": served_without,
                                                         "training_examples": int(len(y)), "positives": int(y.sum())}, indent=2))
        reg.register("ranker", version, seed=settings.seed, config={"negatives": negatives, "features": meta["features"]},
                     metrics={k: float(v) for k, v in rows[RANKER_ROW].items()}, snapshot=snap.stats(),
                     training_seconds=ranker.seconds,
                     extra={"enabled": enabled, "gnn_version": live.id, "gate_reason": reason,
                            "baseline_json": json.dumps({"row": SERVED_WITHOUT_ROW, "metrics": rows[SERVED_WITHOUT_ROW]})})
        reg.promote(version)
    return {"version": version, "enabled": enabled, "reason": reason, "rows": rows, "served_without": served_without,
            "seconds": round(time.perf_counter() - t0, 1)}
