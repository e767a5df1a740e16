"""From the real Neo4j through training to a published collection: promote, gate, roll back,
skip without new data, and a crash half-way that leaves the live model and alias untouched."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from gnn.evaluate import HYBRID_ROW
from gnn.lifecycle import rollback, run_pipeline
from graphrec.core.config import Settings
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.graph.store import resolve_password
from graphrec.core.registry import Registry
from graphrec.core.vectors.edge import EdgeIndex
from graphrec.testing import on_engine
from loaders.synthetic import SyntheticCatalog, SyntheticSpec
from loaders.writer import GraphWriter
from tests.injection import crash_after_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = GNNConfig(dim=16, hidden=32, epochs=3, patience=3, batch_users=64, walks_per_item=20, neighbors=5,
                  easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(5, 50), examples_per_user=1)


def _load_catalogue(store) -> None:  # noqa: ANN001
    """The small synthetic catalogue every test here trains on."""
    cat = SyntheticCatalog(SyntheticSpec(users=150, items=120, interactions=4000, categories=6, seed=5))
    w = GraphWriter(store, batch_size=2000, progress=False)
    w.users(cat.users())
    w.items(cat.items())
    w.interactions(cat.interactions())


def _settings(neo4j_settings: Settings, tmp_path: Path) -> Settings:
    return neo4j_settings.model_copy(update={
        "var_dir": tmp_path, "gnn": SMALL,
        "neo4j": neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))}),
    })


def test_train_publish_promote_gate_rollback(store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    _load_catalogue(store)
    s = _settings(neo4j_settings, tmp_path)
    vec = EdgeIndex(tmp_path / "vectors")
    first = run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=False)
    assert first["status"] == "promoted" and first["metrics"]["ndcg@10"] > 0
    assert "EASE" in first["table"] and "GNN (PinSage)" in first["table"] and HYBRID_ROW in first["table"]
    # The gate reads what the engine ranks with: the hybrid's row on the gate protocol.
    assert first["metrics"]["ndcg@10"] == pytest.approx(first["tables"][first["gate"]["protocol"]][HYBRID_ROW]["ndcg@10"])
    art = Path(first["artifacts"])
    for f in ("item_embeddings.npy", "item_ids.json", "user_params.json", "model.pt", "evaluation.json",
              "learning_curve.png", "versions.png", "checkpoints/best.pt", "hybrid.npz", "hybrid.json"):
        assert (art / f).exists(), f
    reg = Registry(store, tmp_path / "models")
    live = reg.live("gnn")
    in_graph = sum(v for k, v in store.counts().items() if k in ("RATED", "VIEWED", "CLICKED", "PURCHASED", "SKIPPED"))
    assert live.id == first["version"] and live.seed == s.seed and live.snapshot["interactions"] == in_graph
    alias = vec.get_alias(s.qdrant.alias)
    assert alias == live.collection and vec.count(alias) == 120
    # The published vectors answer a filtered search with payload.
    emb = np.load(art / "item_embeddings.npy")
    hits = vec.search(s.qdrant.alias, emb[0], 5, with_payload=True)
    assert hits and "categories" in hits[0].payload
    # No new data: a scheduled run skips.
    assert run_pipeline(s, scheduled=True, vectors=vec, progress=False, evaluate_pipeline=False)["status"] == "skipped"
    # A crash half-way: live model and alias untouched.
    with pytest.MonkeyPatch.context() as mp, pytest.raises(RuntimeError, match="injected failure"):
        crash_after_training(mp)
        run_pipeline(s, force=True, vectors=vec, progress=False, evaluate_pipeline=False)
    assert reg.live("gnn").id == first["version"] and vec.get_alias(s.qdrant.alias) == alias
    # A second version, forced: promoted; then rolled back to the first.
    second = run_pipeline(s, force=True, vectors=vec, progress=False, evaluate_pipeline=False)
    assert second["status"] == "promoted" and vec.get_alias(s.qdrant.alias) != alias
    # The live version is gated with what it ranked with: its own evaluation hybrid.
    assert second["gate"]["live_how"] == "its evaluation embeddings and hybrid scored on this split"
    assert rollback(s, vectors=vec) == (first["version"], second["version"])
    assert vec.get_alias(s.qdrant.alias) == alias and reg.live("gnn").id == first["version"]
    # The gate: with new data and an impossible tolerance (must double the metrics), a new
    # version is rejected, its collection dropped, the live one kept.
    on_engine(s, lambda e: e.record_interaction({"user_id": "u1", "item_id": "i3", "type": "PURCHASE", "ts": time.time() - 60}))  # newer than the catalogue, not in the future
    strict = s.model_copy(update={"training": s.training.model_copy(update={"tolerance": -1.0})})
    before = set(vec.list_collections())
    third = run_pipeline(strict, vectors=vec, progress=False, evaluate_pipeline=False)
    assert third["status"] == "rejected" and "regresses" in third["reason"]
    assert reg.get(third["version"]).status == "rejected" and set(vec.list_collections()) == before
    assert reg.live("gnn").id == first["version"] and vec.get_alias(s.qdrant.alias) == alias
    vec.close()


def test_gate_compares_candidate_and_live_on_the_same_split(store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    """A candidate worse than the live version on the same split is rejected even though its
    number beats the live version's stored one (an older snapshot's split); the registry keeps
    both rows of the comparison."""
    from neo4j import RoutingControl

    _load_catalogue(store)
    s = _settings(neo4j_settings, tmp_path)
    s = s.model_copy(update={"gnn": SMALL.model_copy(update={"epochs": 6, "patience": 6}),
                             "training": s.training.model_copy(update={"protocols": ["user-temporal"]})})
    vec = EdgeIndex(tmp_path / "vectors")
    first = run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=False)
    assert first["status"] == "promoted"
    reg = Registry(store, tmp_path / "models")
    # The live version's stored numbers are low (as if measured on a harder, older split).
    store.run_text("MATCH (m:ModelVersion {id: $id}) SET m.metrics_json = $m", RoutingControl.WRITE, id=first["version"],
                   m=json.dumps({"ndcg@10": 1e-4, "recall@100": 1e-4}))
    # New data, and a candidate that learns nothing (learning rate 0: its initial weights) and
    # serves its GNN alone (no hybrid; the live version is scored with its own hybrid).
    on_engine(s, lambda e: e.record_interaction({"user_id": "u1", "item_id": "i3", "type": "PURCHASE", "ts": time.time() - 60}))  # newer than the catalogue, not in the future
    bad = s.model_copy(update={"gnn": s.gnn.model_copy(update={
        "lr": 0.0, "hybrid": s.gnn.hybrid.model_copy(update={"enabled": False})})})
    second = run_pipeline(bad, vectors=vec, progress=False, evaluate_pipeline=False)
    assert second["status"] == "rejected" and reg.live("gnn").id == first["version"]
    gate = reg.get(second["version"]).gate
    assert gate["protocol"] == "user-temporal" and gate["live_version"] == first["version"]
    assert second["metrics"]["ndcg@10"] > 1e-4  # it beats the stored number ...
    assert gate["live"]["ndcg@10"] > second["metrics"]["ndcg@10"] * 1.1  # ... and loses on the same split
    assert gate["candidate"] == second["metrics"] and gate["live_stored"]["ndcg@10"] == 1e-4
    assert f"live GNN {first['version']} (same split)" in second["table"]
    vec.close()


def test_a_scheduled_retraining_retrains_the_ranker_in_use_on_the_promoted_gnn(store, neo4j_settings: Settings,  # noqa: ANN001
                                                                                tmp_path: Path) -> None:
    from neo4j import RoutingControl

    from gnn.ranking.lifecycle import train_ranker
    from gnn.schedule import retrain_cycle

    _load_catalogue(store)
    s = _settings(neo4j_settings, tmp_path)
    s = s.model_copy(update={"training": s.training.model_copy(update={"protocols": ["user-temporal"], "tolerance": 0.5})})
    first = retrain_cycle(s)
    assert first["status"] == "promoted" and first["ranker"] == "not retrained: no ranker in use"
    ranker = train_ranker(s, progress=False, negatives=10)
    # The live version has a hybrid (a small catalogue): without a ranker the engine ranks with
    # it, so the gate's served-without row does too.
    assert ranker["served_without"] == "hybrid"
    reg = Registry(store, tmp_path / "models")
    assert reg.live("ranker").extra["gnn_version"] == first["version"]
    # The ranker is in use (as if it had passed its gate); then new data and a scheduled run.
    store.run_text("MATCH (m:ModelVersion {id: $id}) SET m.enabled = true", RoutingControl.WRITE, id=ranker["version"])
    on_engine(s, lambda e: e.record_interaction({"user_id": "u1", "item_id": "i3", "type": "PURCHASE", "ts": time.time() - 60}))  # newer than the catalogue, not in the future
    second = retrain_cycle(s)
    assert second["status"] == "promoted"
    assert second["ranker"]["version"] != ranker["version"]
    live = reg.live("ranker")
    assert live.id == second["ranker"]["version"] and live.extra["gnn_version"] == second["version"]
    evaluation = json.loads((Path(live.artifact_dir) / "evaluation.json").read_text())
    assert {"pipeline (fusion + MMR: served without the ranker)", "pipeline (DCN-v2 ranker + MMR)"} <= set(evaluation["results"])


def test_lightgcn_is_evaluated_beside_the_gnn_and_can_be_served(store, neo4j_settings: Settings,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    from graphrec.core.errors import ModelError

    _load_catalogue(store)
    base = _settings(neo4j_settings, tmp_path)
    base = base.model_copy(update={"training": base.training.model_copy(update={"protocols": ["user-temporal", "global-time"]})})
    lg = SMALL.lightgcn.model_copy(update={"epochs": 10, "eval_every": 2})
    s = base.model_copy(update={"gnn": SMALL.model_copy(update={"model": "lightgcn", "lightgcn": lg})})
    vec = EdgeIndex(tmp_path / "vectors")
    out = run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=True)
    assert out["served_model"] == "lightgcn" and out["status"] == "promoted"
    for protocol in ("user-temporal", "global-time"):
        for row in ("GNN (PinSage)", "LightGCN", "LightGCN (pooled, served)", "EASE", HYBRID_ROW,
                    "EASE + MostPopular for new users", "pipeline (served: hybrid + MMR)"):
            assert row in out["tables"][protocol], (protocol, row)
    art = Path(out["artifacts"])
    emb = np.load(art / "item_embeddings.npy")
    assert emb.shape[1] == SMALL.dim and np.isfinite(emb).all()
    # fit_s: the early-stopped GNN and LightGCN side by side; fits_s: the fits after them (gnn.fits)
    assert set(out["stages"]) >= {"export_s", "fit_s", "fits_s", "evaluate_s", "refit_s", "publish_s"}
    # CPU seconds per stage beside the wall seconds, the fit workers' included
    assert set(out["cpu_stages"]) == set(out["stages"]) and out["cpu_stages"]["fits_s"] > 0
    # The tables' hybrid is chosen once, jointly on both protocols' validation; the served one again,
    # jointly on both protocols' test windows (gnn.evaluate.served_choice, a stage of its own): one
    # ratio pair per protocol in each record, the served recipe (stage prior, cold weights) in the artifacts.
    extra = Registry(store, tmp_path / "models").get(out["version"]).extra
    choice, evaluated = json.loads(extra["hybrid_json"]), json.loads(extra["hybrid_eval_json"])
    assert len(choice["ratios"]) == len(evaluated["ratios"]) == 2 and choice["value"] == pytest.approx(
        min(min(r.values()) for r in choice["ratios"]))
    assert out["stages"]["serve_choice_s"] > 0 and choice["ratios"] != evaluated["ratios"]
    saved = json.loads((art / "hybrid.json").read_text())
    assert saved["weights"] == choice["weights"] and saved["cold_weights"] == choice["cold_weights"]
    assert "stage_span" in saved["params"] and "stage" in np.load(art / "hybrid.npz").files
    # The gate's metrics are the served model's row on the gate protocol: the hybrid over LightGCN.
    gated = out["tables"][out["gate"]["protocol"]][HYBRID_ROW]
    assert out["metrics"]["ndcg@10"] == pytest.approx(gated["ndcg@10"]) and out["gate"]["served_model"] == "lightgcn"
    # LightGCN off: gnn.model = lightgcn is a configuration error, with a clear message.
    off = base.model_copy(update={"gnn": SMALL.model_copy(update={
        "model": "lightgcn", "lightgcn": lg.model_copy(update={"enabled": False})})})
    with pytest.raises(ModelError, match="lightgcn.enabled"):
        run_pipeline(off, vectors=vec, progress=False, evaluate_pipeline=False, force=True)
    vec.close()


def test_evaluate_over_seeds_shows_the_served_rows_mean_spread_and_ratios(store, neo4j_settings: Settings,  # noqa: ANN001
                                                                         tmp_path: Path) -> None:
    """``graphrec evaluate --protocol user-temporal --protocol global-time --seeds 2``: every model
    refit per seed on the same splits, the tables' cells are mean ± spread over the seeds (the
    mean is the seeds' average), the served hybrid and pipeline rows are given as multiples of
    EASE, and the hybrid is chosen on both protocols' validation in each seed's run."""
    from gnn.evaluate import REFERENCES
    from gnn.lifecycle import evaluate_version

    _load_catalogue(store)
    s = _settings(neo4j_settings, tmp_path)
    s = s.model_copy(update={"training": s.training.model_copy(update={"protocols": ["user-temporal", "global-time"]})})
    vec = EdgeIndex(tmp_path / "vectors")
    assert run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=False)["status"] == "promoted"
    vec.close()
    res = evaluate_version(s, None, ["user-temporal", "global-time"], 0.8, progress=False, seeds=2)
    report = json.loads(Path(res["report"]).read_text())
    assert len(report["seeds"]) == 2 and len(report["per_seed"]) == 2
    for protocol in ("user-temporal", "global-time"):
        rows = res["tables"][protocol]
        assert {HYBRID_ROW, "pipeline (served: hybrid + MMR)", *REFERENCES} <= set(rows)
        values = [run[protocol][HYBRID_ROW]["ndcg@10"] for run in report["per_seed"]]
        assert rows[HYBRID_ROW]["ndcg@10"] == pytest.approx(sum(values) / 2)
        assert res["spread"][protocol][HYBRID_ROW]["ndcg@10"] == pytest.approx((max(values) - min(values)) / 2)
        ratio = rows[HYBRID_ROW]["recall@100"] / rows["EASE"]["recall@100"]
        assert f"{HYBRID_ROW} / EASE: NDCG@10 x" in res["table"] and f"Recall@100 x{ratio:.3f}" in res["table"]
    assert " ± " in res["table"]
