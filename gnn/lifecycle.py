"""One retraining: export → train → evaluate → register → publish → promote (or reject).

1. **export** a snapshot from Neo4j; skip (when scheduled) if nothing changed since the live version;
2. **train** on the temporal train split, early-stopped on validation; then, like every baseline,
   refit on train + validation for the chosen number of epochs;
3. **evaluate** the GNN and every baseline in the same run on the test split (and the full
   request pipeline replayed offline), write the table and the plots;
4. **refit** on all interactions for the best number of epochs (what is served);
5. **register** the version (config, seed, snapshot statistics, metrics, training time) in the
   graph, artifacts under ``var/models/<id>/``;
6. **publish** item embeddings with payload into a NEW vector collection, fully built and indexed;
7. **promote** when the gate passes: switch the alias (atomic; readers never see a half-built
   collection), then mark the version live; otherwise mark it rejected and drop its collection.
   Old collections beyond ``training.keep_collections`` are deleted; the previous one stays for
   rollback.

A crash anywhere before step 7 leaves the live model and the alias untouched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn.config import GNNConfig
from gnn.data import Snapshot
from gnn.evaluate import (
    baselines,
    format_table,
    gnn_metrics,
    plot_learning_curve,
    plot_version_history,
    write_report,
)
from gnn.export import export_snapshot
from gnn.features import build_features
from gnn.lightgcn import train_lightgcn
from gnn.split import train_val_test
from gnn.train import _validate_emb, train
from graphrec.config import Settings
from graphrec.errors import ModelError
from graphrec.graph.store import GraphStore
from graphrec.registry import Registry, decide, new_version_id


def gnn_config(settings: Settings) -> GNNConfig:
    return settings.gnn


def has_new_data(snap: Snapshot, live_snapshot: dict[str, Any]) -> bool:
    stats = snap.stats()
    return not (stats["interactions"] == live_snapshot.get("interactions")
                and stats["items"] == live_snapshot.get("items")
                and stats["max_ts"] <= float(live_snapshot.get("max_ts", -1)))


def payloads(snap: Snapshot, counts: np.ndarray) -> list[dict[str, Any]]:
    return [{"categories": list(it.categories), "tags": list(it.tags), "available": bool(it.available),
             "popularity": float(np.log1p(counts[k])), "year": it.year} for k, it in enumerate(snap.items)]


def eval_sample(snap: Snapshot, va: np.ndarray, te: np.ndarray, max_users: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test interactions of at most ``max_users`` users (a seeded sample, the same
    users for both); unchanged when ``max_users`` is 0 or there are no more users than that.

    Only the evaluated interactions shrink: training still sees the same train split, and the
    interactions left out stay history (they are neither trained on nor tested)."""
    users = np.unique(snap.user[va | te])
    if max_users <= 0 or len(users) <= max_users:
        return va, te
    keep = np.zeros(snap.num_users, dtype=bool)
    keep[np.random.default_rng(seed).choice(users, max_users, replace=False)] = True
    return va & keep[snap.user], te & keep[snap.user]


def publish(vectors: Any, collection: str, snap: Snapshot, emb: np.ndarray, batch: int = 2048) -> None:
    """Write every item's embedding with its payload into a new collection and build its index."""
    counts = np.bincount(snap.item, minlength=snap.num_items)
    pl = payloads(snap, counts)
    vectors.create_collection(collection, emb.shape[1])
    for s in range(0, snap.num_items, batch):
        vectors.upsert(collection, snap.item_ids[s:s + batch], emb[s:s + batch], pl[s:s + batch])
    vectors.finalize(collection)


def save_artifacts(d: Path, snap: Snapshot, serve_emb: np.ndarray, eval_emb: np.ndarray, model: torch.nn.Module,
                   cfg: GNNConfig, params: dict[str, Any], history: list[dict[str, float]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "item_embeddings.npy", serve_emb.astype(np.float32))
    np.save(d / "eval_item_embeddings.npy", eval_emb.astype(np.float32))
    (d / "item_ids.json").write_text(json.dumps(snap.item_ids))
    (d / "user_params.json").write_text(json.dumps(params))
    (d / "config.json").write_text(cfg.model_dump_json(indent=2))
    (d / "history.json").write_text(json.dumps(history, indent=2))
    torch.save(model.state_dict(), d / "model.pt")


def run_pipeline(settings: Settings, scheduled: bool = False, force: bool = False, vectors: Any | None = None,
                 progress: bool = True, evaluate_pipeline: bool = True, fail_at: str | None = None) -> dict[str, Any]:
    """Run once; returns a summary (``status``: skipped, promoted, rejected)."""
    cfg = gnn_config(settings)
    t_all = time.perf_counter()
    models_dir = settings.var_dir / "models"
    with GraphStore.from_settings(settings) as store:
        registry = Registry(store, models_dir)
        live = registry.live("gnn")
        snap = export_snapshot(store, progress=progress)
        stages: dict[str, float] = {}  # wall seconds of each step, in the summary
        lap = _Lap(stages, t_all)
        lap("export_s")
        if snap.num_interactions == 0:
            raise ModelError("the graph has no interactions to learn from")
        if live and not force and not has_new_data(snap, live.snapshot):
            return {"status": "skipped", "reason": f"no new data since the live version {live.id}", "live": live.id}
        version = new_version_id("gnn")
        art = registry.artifact_dir(version)
        tr, va, te = train_val_test(snap, val_fraction=cfg.validation_fraction)
        va, te = eval_sample(snap, va, te, settings.training.max_eval_users, settings.seed)
        res = train(snap, tr, va, cfg, seed=settings.seed, checkpoint_dir=art / "checkpoints", progress=progress)
        lap("fit_s")
        if fail_at == "after_train":  # fault injection for tests: a retraining that crashes half-way
            raise RuntimeError("injected failure after training")
        hist = tr | va
        # Like every baseline (tuned on validation, refit on train + validation, then tested), the
        # GNN is refit on train + validation for the epochs validation chose before the test.
        evalfit = train(snap, hist, None, cfg.model_copy(update={"epochs": max(1, res.best_epoch)}), seed=settings.seed,
                        progress=progress, prior_weight=res.user_params["prior_weight"])
        eval_emb, eval_params = evalfit.item_emb, evalfit.user_params
        lap("eval_fit_s")
        rows: dict[str, dict[str, float]] = {"GNN (PinSage)": gnn_metrics(eval_emb, snap, hist, te, eval_params)}
        rows["GNN (PinSage)"]["train_seconds"] = round(res.seconds, 1)
        if settings.training.baselines:
            rows.update(baselines(snap, tr, va, te, settings.seed, progress))
        lap("baselines_s")
        lgcn = lightgcn_rows(snap, tr, va, te, cfg, settings.seed, progress) if cfg.lightgcn.enabled else None
        if lgcn is not None:
            rows.update(lgcn["rows"])
        served = served_model(cfg, res, lgcn, snap, tr, va)
        lap("lightgcn_s")
        if served == "lightgcn" and lgcn is not None:  # the pipeline is replayed with what is served
            eval_emb, eval_params = lgcn["eval_fit"].item_emb, lgcn["params"]
        if evaluate_pipeline:
            rows.update(pipeline_rows(snap, hist, te, eval_emb, eval_params, version))
        lap("pipeline_eval_s")
        # Refit on everything for serving, for the number of epochs validation chose.
        serve_emb, serve_model, serve_params = res.item_emb, res.model, res.user_params
        if served == "lightgcn" and lgcn is not None:
            serve_emb, serve_model, serve_params = lgcn["fit"].item_emb, lgcn["fit"].model, lgcn["params"]
            if settings.training.refit_full:
                every = np.ones(snap.num_interactions, dtype=bool)
                refit_l = train_lightgcn(snap, every, None, cfg.lightgcn, seed=settings.seed, dim=cfg.dim, threads=cfg.threads,
                                         progress=progress, epochs=max(1, lgcn["fit"].best_epoch),
                                         alpha=lgcn["fit"].alpha, features=build_features(snap, every, cfg))
                serve_emb, serve_model = refit_l.item_emb, refit_l.model
        elif settings.training.refit_full:
            every = np.ones(snap.num_interactions, dtype=bool)
            refit = train(snap, every, None, cfg.model_copy(update={"epochs": max(1, res.best_epoch)}),
                          seed=settings.seed, progress=progress, prior_weight=res.user_params["prior_weight"])
            serve_emb, serve_model, serve_params = refit.item_emb, refit.model, refit.user_params
        lap("refit_s")
        save_artifacts(art, snap, serve_emb, eval_emb, serve_model, cfg, serve_params, res.history)
        (art / "eval_user_params.json").write_text(json.dumps(eval_params))
        plot_learning_curve(res.history, art / "learning_curve.png")
        served_row = "LightGCN (pooled, served)" if served == "lightgcn" else "GNN (PinSage)"
        metrics = {k: float(v) for k, v in rows[served_row].items() if k in ("ndcg@10", "recall@10", "recall@100",
                                                                             "hitrate@10", "coverage@10")}
        report = write_report(art, rows, {"version": version, "seed": settings.seed, "snapshot": snap.stats(),
                                          "best_epoch": res.best_epoch, "served_model": served})
        collection = f"items_{version.replace('-', '_')}"
        registry.register("gnn", version, seed=settings.seed, config=cfg.model_dump(), metrics=metrics,
                          snapshot=snap.stats(), training_seconds=res.seconds, collection=collection,
                          extra={"best_epoch": res.best_epoch, "report": str(report)})
        try:
            own_vectors = vectors is None
            if vectors is None:
                from graphrec.vectors.factory import open_vector_index

                vectors = open_vector_index(settings)
            try:
                publish(vectors, collection, snap, serve_emb)
                d = decide(metrics, live.metrics if live else None, settings.training.tolerance, force)
                if d.promote:
                    vectors.set_alias(settings.qdrant.alias, collection)
                    previous = registry.promote(version)
                    _prune(vectors, registry, settings, keep={collection, (live.collection or "") if live else ""})
                    status = "promoted"
                else:
                    registry.set_status(version, "rejected", d.reason)
                    vectors.delete_collection(collection)
                    previous, status = None, "rejected"
            finally:
                if own_vectors:
                    vectors.close()
        except Exception as exc:
            registry.set_status(version, "failed", f"{type(exc).__name__}: {exc}")
            raise
        lap("publish_s")  # artifacts, report, register, publish, promote
        versions = [{"id": v.id, "metrics": v.metrics, "status": v.status} for v in reversed(registry.list("gnn", 50))]
        plot_version_history(versions, art / "versions.png")
    return {"status": status, "version": version, "previous": previous, "reason": d.reason, "metrics": metrics,
            "table": format_table(rows), "report": str(report), "train_seconds": round(res.seconds, 1),
            "seconds": round(time.perf_counter() - t_all, 1), "artifacts": str(art),
            "stages": {k: round(v, 1) for k, v in stages.items()}, "threads": res.extra["timings"].get("threads"),
            "served_model": served, "best_epoch": res.best_epoch}


class _Lap:
    """``lap(name)`` records the seconds since the previous lap under ``name``."""

    def __init__(self, into: dict[str, float], start: float) -> None:
        self.into, self.last = into, start

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = now - self.last
        self.last = now


def lightgcn_rows(snap: Snapshot, tr: np.ndarray, va: np.ndarray, te: np.ndarray, cfg: GNNConfig, seed: int,
                  progress: bool) -> dict[str, Any]:
    """LightGCN on the same split as the GNN: early-stopped and layer-weighted on validation, refit
    on train + validation for the chosen epochs, tested; two rows: its own user vectors, and user
    vectors pooled from history as the engine serves them (what ``gnn.model = lightgcn`` serves)."""
    from gnn.metrics import interaction_matrix, ranking_metrics
    from gnn.user import user_params

    hist = tr | va
    fit = train_lightgcn(snap, tr, va, cfg.lightgcn, seed=seed, dim=cfg.dim, threads=cfg.threads, progress=progress,
                         features=build_features(snap, tr, cfg))
    eval_fit = train_lightgcn(snap, hist, None, cfg.lightgcn, seed=seed, dim=cfg.dim, threads=cfg.threads, progress=progress,
                              epochs=max(1, fit.best_epoch), alpha=fit.alpha, features=build_features(snap, hist, cfg))
    m_hist = interaction_matrix(snap.user[hist], snap.item[hist], snap.num_users, snap.num_items)
    m_te = interaction_matrix(snap.user[te], snap.item[te], snap.num_users, snap.num_items)
    own = ranking_metrics(lambda u: eval_fit.user_emb[u] @ eval_fit.item_emb.T, m_hist, m_te)
    own["train_seconds"] = round(fit.seconds, 1)
    params = user_params(cfg)
    pooled = gnn_metrics(eval_fit.item_emb, snap, hist, te, params)
    # Validation of the served recipe (pooled user vectors), for gnn.model = "auto".
    val_pooled = _validate_emb(fit.item_emb, snap, tr, va, params)
    return {"rows": {"LightGCN": own, "LightGCN (pooled, served)": pooled}, "fit": fit, "eval_fit": eval_fit,
            "params": params, "val": val_pooled["ndcg@10"] + val_pooled["recall@100"]}


def served_model(cfg: GNNConfig, res: Any, lgcn: dict[str, Any] | None, snap: Snapshot, tr: np.ndarray,
                 va: np.ndarray) -> str:
    """``gnn.model``, or for ``auto`` the model whose served recipe (pooled user vectors) scores
    higher NDCG@10 + Recall@100 on validation. ``lightgcn`` needs ``gnn.lightgcn.enabled``."""
    if cfg.model == "pinsage" or lgcn is None:
        if cfg.model == "lightgcn":
            raise ModelError("gnn.model = 'lightgcn' needs gnn.lightgcn.enabled = true")
        return "pinsage"
    if cfg.model == "lightgcn":
        return "lightgcn"
    val = _validate_emb(res.item_emb, snap, tr, va, res.user_params)
    return "lightgcn" if lgcn["val"] > val["ndcg@10"] + val["recall@100"] else "pinsage"


def pipeline_rows(snap: Snapshot, hist: np.ndarray, te: np.ndarray, item_emb: np.ndarray, params: dict[str, Any],
                  version: str) -> dict[str, dict[str, float]]:
    """The engine's request pipeline replayed offline on the same split (see graphrec.ranking.offline)."""
    from graphrec.engine.model import LiveModel
    from graphrec.ranking.offline import World, embedding_scorer, evaluate, fusion_scorer, targets

    model = LiveModel(version, list(snap.item_ids), item_emb / np.maximum(1e-12, np.linalg.norm(item_emb, axis=1, keepdims=True)), params)
    world = World.build(snap, hist, model)
    truth = targets(snap, te)
    return {"pipeline (fusion + MMR)": evaluate(world, truth, fusion_scorer(world)),
            "pipeline (GNN similarity)": evaluate(world, truth, embedding_scorer(world))}


def _prune(vectors: Any, registry: Registry, settings: Settings, keep: set[str]) -> None:
    """Delete published collections beyond ``keep_collections`` (never the live or previous one)."""
    ours = sorted(c for c in vectors.list_collections() if c.startswith("items_gnn_"))
    for c in ours[: max(0, len(ours) - settings.training.keep_collections)]:
        if c not in keep:
            vectors.delete_collection(c)


def rollback(settings: Settings, vectors: Any | None = None) -> tuple[str, str]:
    """Switch the alias back to the previous version's collection, then mark it live."""
    with GraphStore.from_settings(settings) as store:
        registry = Registry(store, settings.var_dir / "models")
        target = registry.rollback_target("gnn")
        own = vectors is None
        if vectors is None:
            from graphrec.vectors.factory import open_vector_index

            vectors = open_vector_index(settings)
        try:
            if not target.collection or target.collection not in vectors.list_collections():
                raise ModelError(f"the previous version {target.id} has no collection left to roll back to")
            vectors.set_alias(settings.qdrant.alias, target.collection)
        finally:
            if own:
                vectors.close()
        return registry.rollback("gnn")
