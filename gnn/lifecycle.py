"""One retraining: export → train → evaluate → register → publish → promote (or reject).

1. **export** a snapshot from Neo4j; skip (when scheduled) if nothing changed since the live version;
2. **train** on the gate protocol's train split (``training.gate_protocol``, user-temporal by
   default), early-stopped on its validation;
3. **evaluate** under every protocol of ``training.protocols`` (gnn.evaluate): the GNN refit on
   each split's train + validation for the chosen epochs, the served pipeline replayed offline and
   every baseline, in the same run on the same splits; the live version is scored on the gate
   split too, in this run; write the tables and the plots;
4. **refit** on all interactions for the best number of epochs (what is served);
5. **register** the version (config, seed, snapshot statistics, metrics, training time) in the
   graph, artifacts under ``var/models/<id>/``;
6. **publish** item embeddings with payload into a NEW vector collection, fully built and indexed;
7. **promote** when the gate passes (the candidate against the live version on the same split,
   both rows stored with the candidate as ``gate_json``): switch the alias (atomic; readers never see a half-built
   collection), then mark the version live; otherwise mark it rejected and drop its collection.
   Old collections beyond ``training.keep_collections`` are deleted; the previous one stays for
   rollback.

A crash anywhere before step 7 leaves the live model and the alias untouched.

One module over 400 lines: the steps above share one run's snapshot, splits, registry and vector
index, and :func:`run_pipeline` calls them in that order; beside it are the other operations on
model versions, which share its registry and vector-index handling (:func:`evaluate_version`
scores a stored version again, :func:`rollback` switches back to the previous one).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn import itemitem
from gnn.evaluate import (
    FAMILIES,
    HYBRID_ROW,
    METRICS,
    EvalContext,
    Split,
    aggregate,
    eval_sample,  # noqa: F401 - re-exported (tests, callers of gnn.lifecycle)
    evaluate_splits,
    format_tables,
    gnn_metrics,
    hybrid_enabled,
    make_split,
    plot_learning_curve,
    plot_version_history,
    score_rows,
    served_choice,
    served_embeddings,
    write_report,
)
from gnn.features import build_features
from gnn.fits import FitPool, cpu_seconds, fit_workers, follow_up_fits, prefill
from gnn.lightgcn import train_lightgcn
from gnn.split import relevant
from gnn.train import _validate_emb, train
from gnn.user import user_params
from graphrec.core.config import Settings
from graphrec.core.errors import ModelError
from graphrec.core.export import export_snapshot
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.graph.store import GraphStore
from graphrec.core.recs.hybrid import HybridScorer
from graphrec.core.registry import Registry, decide, new_version_id
from graphrec.core.snapshot import Snapshot

log = logging.getLogger(__name__)


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


def live_on_split(snap: Snapshot, split: Split, live: Any, seed: int, vector_weights: Mapping[str, float],
                  progress: bool = False) -> tuple[dict[str, float], str]:
    """The live version's metrics on the candidate's split, in this run: its evaluation embeddings
    (fit on its own train + validation, never on its test, nor on this split's test when the data
    only grew since) and user-vector recipe, scored with this split's history and test; items it
    does not know get no vector (as when it serves). Without those artifacts, its config is refit
    on this split's history for its recorded number of epochs (``vector_weights``: the
    ``[interactions] vector_weights`` setting, as training's). A version served with a hybrid
    (gnn.itemitem) is scored with the hybrid it was evaluated with (``eval_hybrid/``: fit on its
    gate split's train + validation), re-indexed to this catalogue. Returns (metrics, how)."""
    art = Path(live.artifact_dir or "")
    if (art / "eval_item_embeddings.npy").exists() and (art / "item_ids.json").exists():
        emb_live = np.load(art / "eval_item_embeddings.npy")
        ids = json.loads((art / "item_ids.json").read_text())
        params_file = art / ("eval_user_params.json" if (art / "eval_user_params.json").exists() else "user_params.json")
        params = json.loads(params_file.read_text())
        pos = {iid: k for k, iid in enumerate(ids)}
        emb = np.zeros((snap.num_items, emb_live.shape[1]), dtype=np.float32)
        for k, iid in enumerate(snap.item_ids):
            j = pos.get(iid)
            if j is not None:
                emb[k] = emb_live[j]
        hybrid = HybridScorer.load(art / "eval_hybrid")
        if hybrid is not None:  # what it ranked with: its hybrid, fit on its own train + validation
            live_hybrid = remap_hybrid(hybrid, ids, snap.item_ids)
            v = itemitem.views(snap, split.hist, (float(live_hybrid.params["position_half"]),), emb, params)
            return (score_rows(snap, split, itemitem.score_fn(v, live_hybrid, itemitem.graph_clock(snap, split.hist))),
                    "its evaluation embeddings and hybrid scored on this split")
        return gnn_metrics(emb, snap, split.hist, split.test, params), "its evaluation embeddings scored on this split"
    cfg = GNNConfig(**live.config) if live.config else GNNConfig()
    epochs = int(live.extra.get("best_epoch") or cfg.epochs)
    fit = train(snap, split.hist, None, cfg.model_copy(update={"epochs": max(1, epochs)}), seed=live.seed or seed,
                progress=progress, vector_weights=vector_weights)
    return gnn_metrics(fit.item_emb, snap, split.hist, split.test, fit.user_params), "its config refit on this split"


def remap_hybrid(h: HybridScorer, ids: list[str], item_ids: list[str]) -> HybridScorer:
    """A hybrid model fit on catalogue ``ids`` re-indexed to ``item_ids`` (items it did not know:
    no item-item weights, the lowest trend, fresh and stage scores)."""
    pos = {iid: k for k, iid in enumerate(ids)}
    new = np.array([k for k, iid in enumerate(item_ids) if iid in pos], dtype=np.int64)
    old = np.array([pos[item_ids[k]] for k in new], dtype=np.int64)
    n = len(item_ids)
    ease, trans = np.zeros((n, n), np.float32), np.zeros((n, n), np.float32)
    ease[np.ix_(new, new)] = h.ease[np.ix_(old, old)]
    trans[np.ix_(new, new)] = h.trans[np.ix_(old, old)]
    trend = np.full(n, float(h.trend.min()) if len(h.trend) else 0.0, np.float32)
    trend[new] = h.trend[old]
    fresh = None
    if h.fresh is not None:
        fresh = np.full(n, float(h.fresh.min()) if len(h.fresh) else 0.0, np.float32)
        fresh[new] = h.fresh[old]
    stage = None
    if h.stage is not None:
        stage = np.repeat(h.stage.min(axis=1, keepdims=True) if h.stage.size else np.zeros((len(h.stage), 1)), n,
                          axis=1).astype(np.float32)
        stage[:, new] = h.stage[:, old]
    nxt = None
    if h.next is not None:  # the next network: no input weights, no output weights, the lowest bias
        w1 = np.zeros((n, h.next["w1"].shape[1]), np.float32)
        w1[new] = h.next["w1"][old]
        w2 = np.zeros((h.next["w2"].shape[0], n), np.float32)
        w2[:, new] = h.next["w2"][:, old]
        b2 = np.full(n, float(h.next["b2"].min()) if n else 0.0, np.float32)
        b2[new] = h.next["b2"][old]
        nxt = {"w1": w1, "b1": h.next["b1"], "w2": w2, "b2": b2}
    return HybridScorer(ease, trans, trend, dict(h.weights), dict(h.params), stage, dict(h.cold_weights),
                        dict(h.return_weights), nxt, fresh)


def run_pipeline(settings: Settings, scheduled: bool = False, force: bool = False, vectors: Any | None = None,
                 progress: bool = True, evaluate_pipeline: bool = True) -> dict[str, Any]:
    """Run once; returns a summary (``status``: skipped, promoted, rejected)."""
    cfg = gnn_config(settings)
    tcfg = settings.training
    t_all, c_all = time.perf_counter(), cpu_seconds()
    models_dir = settings.var_dir / "models"
    with GraphStore.from_settings(settings) as store, ExitStack() as stack:
        registry = Registry(store, models_dir)
        live = registry.live("gnn")
        snap = export_snapshot(store, progress=progress)
        if snap.num_interactions == 0:
            raise ModelError("the graph has no interactions to learn from")
        if live and not force and not has_new_data(snap, live.snapshot):
            return {"status": "skipped", "reason": f"no new data since the live version {live.id}", "live": live.id}
        # As many fit workers as the cores and, with the snapshot in memory, the free memory allow.
        workers, why = fit_workers(tcfg.fit_workers)
        log.info("fit workers: %d (%s)", workers, why)
        if progress:
            print(f"fit workers: {workers} ({why})", file=sys.stderr, flush=True)
        pool = stack.enter_context(FitPool(workers))
        version = new_version_id("gnn")
        art = registry.artifact_dir(version)
        gate_protocol = tcfg.gate_protocol
        protocols = list(dict.fromkeys([gate_protocol, *tcfg.protocols]))
        splits: dict[str, Split] = {p: make_split(snap, p, tcfg.global_cut, cfg.validation_fraction,
                                                  tcfg.max_eval_users, settings.seed) for p in protocols}
        gsplit = splits[gate_protocol]
        # Early stopping on the gate protocol's validation chooses the epochs (and the trend prior)
        # for every fit that follows: the evaluation fits of each protocol and the serving refit.
        stages: dict[str, float] = {"export_s": time.perf_counter() - t_all}  # wall seconds per step
        cpu: dict[str, float] = {"export_s": cpu_seconds() - c_all}  # CPU seconds per step, the workers' included
        t_fit, c0 = time.perf_counter(), cpu_seconds()
        vw = settings.interactions.vector_weights
        # The early-stopped fits (GNN here, LightGCN in a worker) side by side, then every fit
        # the evaluation and serving need, each independent of the others (gnn.fits): the GNN's
        # as soon as its early stopping ends when it is served whatever LightGCN scores, and the
        # baselines' evaluation here meanwhile (it needs no fit).
        fcfg = cfg.model_copy(update={"threads": 1}) if pool.parallel else cfg
        lg_job = None
        if cfg.lightgcn.enabled:
            # LightGCN's epochs and layer weights are chosen on the same validation as the GNN's.
            lg_job = pool.submit((train_lightgcn, (snap, gsplit.train, relevant(snap, gsplit.val), cfg.lightgcn),
                                  {"seed": settings.seed, "dim": cfg.dim, "threads": fcfg.threads,
                                   "progress": progress and not pool.parallel,
                                   "features": build_features(snap, gsplit.train, cfg)}))
        res = train(snap, gsplit.train, relevant(snap, gsplit.val), fcfg, seed=settings.seed,
                    checkpoint_dir=art / "checkpoints", progress=progress, vector_weights=vw)
        ctx = EvalContext(cfg, settings.seed, progress, epochs=max(1, res.best_epoch),
                          prior_weight=res.user_params["prior_weight"], engine=settings.engine, version=version,
                          baselines=tcfg.baselines, gate_protocol=gate_protocol, interactions=settings.interactions)
        families = {k: f for k, f in FAMILIES.items() if evaluate_pipeline or k != "pipeline"}
        # The fits whose interactions hold the gate's train go on from the early-stopped models.
        start: dict[str, Any] = res.model.state_dict()
        pending: dict[str, Any] = {}
        base: dict[str, dict[str, dict[str, float]]] | None = None
        if cfg.model == "pinsage":  # served whatever LightGCN does: the GNN's fits need not wait for it
            ctx.train_fit[gate_protocol] = (res.item_emb, res.user_params)
            pending = pool.start(follow_up_fits(snap, splits, ctx, fcfg, tcfg.refit_full, progress and not pool.parallel,
                                                start=start, models=("gnn",)))
            base = _baselines_beside_workers(snap, splits, ctx, families, pool)  # meanwhile, here
        lgcn = lg_job.result() if lg_job is not None else None
        if lgcn is not None:
            ctx.lgcn_epochs, ctx.lgcn_alpha = max(1, lgcn.best_epoch), lgcn.alpha
        stages["fit_s"] = time.perf_counter() - t_fit
        cpu["fit_s"] = cpu_seconds() - c0
        t0, c0 = time.perf_counter(), cpu_seconds()
        ctx.served = served_model(cfg, res, lgcn, snap, gsplit, vw)
        served_row = "LightGCN (pooled, served)" if ctx.served == "lightgcn" else "GNN (PinSage)"
        # The served model fit on the gate split's train: the hybrid's choices on its validation
        # (and on the other protocols' validation, each with the served model fit on its train).
        ctx.train_fit[gate_protocol] = ((lgcn.item_emb, user_params(cfg, vw)) if ctx.served == "lightgcn" and lgcn is not None
                                        else (res.item_emb, res.user_params))
        if hybrid_enabled(snap, ctx):
            served_row = HYBRID_ROW
        pending.update(pool.start(follow_up_fits(
            snap, splits, ctx, fcfg, tcfg.refit_full, progress and not pool.parallel, start=start,
            lgcn_start=lgcn.model.embedding.weight.detach() if lgcn is not None else None,
            models=("lightgcn",) if base is not None else ("gnn", "lightgcn"))))
        if base is None:
            base = _baselines_beside_workers(snap, splits, ctx, families, pool)
        fitted = {k: f.result() for k, f in pending.items()}
        pool.close()
        prefill(ctx, splits, fitted, user_params(cfg, vw))
        stages["fits_s"] = time.perf_counter() - t0
        cpu["fits_s"] = cpu_seconds() - c0
        t0, c0 = time.perf_counter(), cpu_seconds()
        done = base
        families["baselines"] = lambda snap, split, ctx: done[split.protocol]  # computed while the fits ran
        tables = evaluate_splits(snap, splits, ctx, families)
        stages["evaluate_s"] = time.perf_counter() - t0
        cpu["evaluate_s"] = cpu_seconds() - c0
        tables[gate_protocol]["GNN (PinSage)"]["train_seconds"] = round(res.seconds, 1)
        eval_emb, eval_params = served_embeddings(snap, gsplit, ctx)
        metrics = {k: float(v) for k, v in tables[gate_protocol][served_row].items() if k in METRICS}
        # The gate compares the candidate with the live version on the same split, in this run.
        live_metrics: dict[str, float] | None = None
        gate: dict[str, Any] = {"protocol": gate_protocol, "candidate": metrics, "candidate_version": version,
                                "served_model": ctx.served}
        if live:
            live_row, how = live_on_split(snap, gsplit, live, settings.seed, vw, progress)
            live_metrics = {k: float(v) for k, v in live_row.items() if k in METRICS}
            tables[gate_protocol][f"live GNN {live.id} (same split)"] = live_row
            gate.update(live=live_metrics, live_version=live.id, live_how=how, live_stored=live.metrics)
        # The served hybrid's choices: made again on the newest window when it is refit on everything.
        served_ch = ctx.hybrid_choice
        if hybrid_enabled(snap, ctx) and tcfg.refit_full:
            t0, c0 = time.perf_counter(), cpu_seconds()
            served_ch = served_choice(snap, ctx)
            stages["serve_choice_s"], cpu["serve_choice_s"] = time.perf_counter() - t0, cpu_seconds() - c0
        # Serve the refit on everything (fit above for the number of epochs validation chose).
        t0, c0 = time.perf_counter(), cpu_seconds()
        serve_emb, serve_model, serve_params = res.item_emb, res.model, res.user_params
        if ctx.served == "lightgcn" and lgcn is not None:
            serve_emb, serve_model, serve_params = lgcn.item_emb, lgcn.model, user_params(cfg, vw)
            if "refit" in fitted:
                serve_emb, serve_model = fitted["refit"].item_emb, fitted["refit"].model
        elif "refit" in fitted:
            refit = fitted["refit"]
            serve_emb, serve_model, serve_params = refit.item_emb, refit.model, refit.user_params
        every = np.ones(snap.num_interactions, dtype=bool)
        hybrid = None
        if hybrid_enabled(snap, ctx):  # fit on what the embeddings were, with the served choices
            assert served_ch is not None  # made by the evaluation's hybrid family
            hybrid = itemitem.fit(snap, every if tcfg.refit_full else gsplit.hist, served_ch.params,
                                  served_ch.weights, served_ch.cold_weights, served_ch.return_weights)
        stages["refit_s"] = time.perf_counter() - t0
        cpu["refit_s"] = cpu_seconds() - c0
        t_publish, c0 = time.perf_counter(), cpu_seconds()
        save_artifacts(art, snap, serve_emb, eval_emb, serve_model, cfg, serve_params, res.history)
        (art / "eval_user_params.json").write_text(json.dumps(eval_params))
        if hybrid is not None:
            hybrid.save(art)
            # Fit on the gate split's train + validation: how a later candidate's gate scores it.
            ctx.hybrid_fitted[gate_protocol].save(art / "eval_hybrid")
        plot_learning_curve(res.history, art / "learning_curve.png")
        report = write_report(art, tables, {"version": version, "seed": settings.seed, "snapshot": snap.stats(),
                                            "best_epoch": res.best_epoch, "gate_protocol": gate_protocol, "gate": gate,
                                            "served_model": ctx.served},
                              {p: sp.meta for p, sp in splits.items()})
        collection = f"items_{version.replace('-', '_')}"
        d = decide(metrics, live_metrics, tcfg.tolerance, force)
        gate["decision"] = d.reason
        registry.register("gnn", version, seed=settings.seed, config=cfg.model_dump(), metrics=metrics,
                          snapshot=snap.stats(), training_seconds=res.seconds, collection=collection,
                          extra={"best_epoch": res.best_epoch, "report": str(report), "served_model": ctx.served,
                                 "hybrid_json": json.dumps(served_ch.as_dict() if served_ch else None, default=str),
                                 "hybrid_eval_json": json.dumps(ctx.hybrid_choice.as_dict() if ctx.hybrid_choice
                                                                else None, default=str),
                                 "gate_json": json.dumps(gate, sort_keys=True, default=str)})
        try:
            own_vectors = vectors is None
            if vectors is None:
                from graphrec.core.vectors.factory import open_vector_index

                vectors = open_vector_index(settings)
            try:
                publish(vectors, collection, snap, serve_emb)
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
        versions = [{"id": v.id, "metrics": v.metrics, "status": v.status} for v in reversed(registry.list("gnn", 50))]
        plot_version_history(versions, art / "versions.png")
        stages["publish_s"] = time.perf_counter() - t_publish  # artifacts, report, register, publish, promote
        cpu["publish_s"] = cpu_seconds() - c0
    return {"status": status, "version": version, "previous": previous, "reason": d.reason, "metrics": metrics,
            "gate": gate, "tables": tables, "table": format_tables(tables, {p: sp.meta for p, sp in splits.items()}),
            "report": str(report), "train_seconds": round(res.seconds, 1),
            "seconds": round(time.perf_counter() - t_all, 1), "artifacts": str(art),
            "stages": {k: round(v, 1) for k, v in stages.items()}, "cpu_stages": {k: round(v, 1) for k, v in cpu.items()},
            "threads": res.extra["timings"].get("threads"), "fit_workers": {"workers": workers, "why": why},
            "served_model": ctx.served, "best_epoch": res.best_epoch}


def _baselines_beside_workers(snap: Snapshot, splits: dict[str, Split], ctx: EvalContext, families: dict[str, Any],
                              pool: FitPool) -> dict[str, dict[str, dict[str, float]]]:
    """The baselines' rows per protocol, computed while the fits run in ``pool``'s workers: one
    BLAS / OpenMP thread here then (the workers hold the cores; a second thread would spin-wait
    for a descheduled peer, see gnn.threads)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1 if pool.parallel else None):
        return evaluate_splits(snap, splits, ctx, {"baselines": families["baselines"]})


def served_model(cfg: GNNConfig, res: Any, lgcn: Any | None, snap: Snapshot, split: Split,
                 vector_weights: Mapping[str, float]) -> str:
    """``gnn.model``, or for ``auto`` the model whose served recipe (user vectors pooled from
    history, ``vector_weights``: the ``[interactions]`` setting) scores the higher NDCG@10 +
    Recall@100 on the split's validation. ``lightgcn`` and ``auto`` need ``gnn.lightgcn.enabled``."""
    if cfg.model == "pinsage":
        return "pinsage"
    if lgcn is None:
        raise ModelError(f"gnn.model = {cfg.model!r} needs gnn.lightgcn.enabled = true")
    if cfg.model == "lightgcn":
        return "lightgcn"
    val = relevant(snap, split.val)
    gnn_val = _validate_emb(res.item_emb, snap, split.train, val, res.user_params)
    lgcn_val = _validate_emb(lgcn.item_emb, snap, split.train, val, user_params(cfg, vector_weights))
    return ("lightgcn" if lgcn_val["ndcg@10"] + lgcn_val["recall@100"] > gnn_val["ndcg@10"] + gnn_val["recall@100"]
            else "pinsage")


def evaluate_version(settings: Settings, version_id: str | None, protocols: list[str], cut: float | None = None,
                     progress: bool = True, seeds: int = 1) -> dict[str, Any]:
    """``graphrec evaluate --protocol ...``: a fresh evaluation of a version on the current graph.

    For each protocol, in one run: the version's GNN config refit on the split's history for its
    recorded epochs (its served embeddings saw the test), the pipeline as the engine serves it
    with that GNN (with the DCN-v2 ranker, retrained on the split, when the live ranker is enabled
    and was trained on this version; else fusion + MMR) and the four baselines. With ``seeds`` > 1
    every model is refit with each of that many seeds (from the version's) on the same splits and
    the tables give mean ± spread (half the range) over seeds."""
    tcfg = settings.training
    with GraphStore.from_settings(settings) as store:
        registry = Registry(store, settings.var_dir / "models")
        v = registry.get(version_id) if version_id else registry.live("gnn")
        if v is None:
            raise ModelError("no live model yet: run `graphrec train` first")
        ranker = registry.live("ranker")
        snap = export_snapshot(store, progress=progress)
    cfg = GNNConfig(**v.config) if v.config else settings.gnn
    art = Path(v.artifact_dir or "")
    params_file = art / "eval_user_params.json"
    prior = json.loads(params_file.read_text()).get("prior_weight") if params_file.exists() else None
    served_ranker = None
    if ranker is not None and ranker.extra.get("enabled") and ranker.extra.get("gnn_version") == v.id:
        from gnn.ranking.lifecycle import ranker_on_split

        served_ranker = ranker_on_split(settings, progress=progress)
    first = v.seed if v.seed is not None else settings.seed
    per_seed: list[dict[str, dict[str, dict[str, float]]]] = []
    t0 = time.perf_counter()
    for seed in range(first, first + max(1, seeds)):
        ctx = EvalContext(cfg, seed, progress, epochs=max(1, int(v.extra.get("best_epoch") or cfg.epochs)),
                          prior_weight=prior, engine=settings.engine, version=v.id, baselines=tcfg.baselines,
                          ranker=served_ranker, served=str(v.extra.get("served_model") or "pinsage"),
                          interactions=settings.interactions)
        splits = {p: make_split(snap, p, cut if cut is not None else tcfg.global_cut, cfg.validation_fraction,
                                tcfg.max_eval_users, first) for p in protocols}
        # The hybrid is chosen as training chooses it: on the validation of every configured protocol.
        ctx.choice_splits = {p: splits.get(p) or make_split(snap, p, cut if cut is not None else tcfg.global_cut,
                                                            cfg.validation_fraction, tcfg.max_eval_users, first)
                             for p in dict.fromkeys([*tcfg.protocols, *protocols])}
        per_seed.append(evaluate_splits(snap, splits, ctx))
    tables, spread = aggregate(per_seed) if len(per_seed) > 1 else (per_seed[0], None)
    meta = {p: sp.meta for p, sp in splits.items()}
    out = settings.var_dir / "reports"
    report = write_report(out, tables, {"version": v.id, "seeds": list(range(first, first + max(1, seeds))),
                                        "snapshot": snap.stats(), "epochs": ctx.epochs,
                                        "ranker": ranker.id if (ranker is not None and served_ranker) else None,
                                        "seconds": round(time.perf_counter() - t0, 1), "spread": spread,
                                        "per_seed": per_seed if len(per_seed) > 1 else None}, meta)
    return {"version": v, "tables": tables, "spread": spread, "meta": meta,
            "table": format_tables(tables, meta, spread), "report": str(report)}


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
            from graphrec.core.vectors.factory import open_vector_index

            vectors = open_vector_index(settings)
        try:
            if not target.collection or target.collection not in vectors.list_collections():
                raise ModelError(f"the previous version {target.id} has no collection left to roll back to")
            vectors.set_alias(settings.qdrant.alias, target.collection)
        finally:
            if own:
                vectors.close()
        return registry.rollback("gnn")
