"""From the real Neo4j through training to a published collection: promote, gate, roll back,
skip without new data, and a crash half-way that leaves the live model and alias untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from gnn.config import GNNConfig
from gnn.lifecycle import rollback, run_pipeline
from graphrec.config import Settings
from graphrec.errors import ModelError
from graphrec.graph.store import resolve_password
from graphrec.registry import Registry
from graphrec.vectors.edge import EdgeIndex
from loaders.synthetic import SyntheticCatalog, SyntheticSpec
from loaders.writer import GraphWriter

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = GNNConfig(dim=16, hidden=32, epochs=3, patience=3, batch_users=64, walks_per_item=20, neighbors=5,
                  easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(5, 50), examples_per_user=1)


def _settings(neo4j_settings: Settings, tmp_path: Path) -> Settings:
    return neo4j_settings.model_copy(update={
        "var_dir": tmp_path, "gnn": SMALL,
        "neo4j": neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))}),
    })


def test_train_publish_promote_gate_rollback(store, neo4j_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    cat = SyntheticCatalog(SyntheticSpec(users=150, items=120, interactions=4000, categories=6, seed=5))
    w = GraphWriter(store, batch_size=2000, progress=False)
    w.users(cat.users())
    w.items(cat.items())
    w.interactions(cat.interactions())
    s = _settings(neo4j_settings, tmp_path)
    vec = EdgeIndex(tmp_path / "vectors")
    first = run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=False)
    assert first["status"] == "promoted" and first["metrics"]["ndcg@10"] > 0
    assert "EASE" in first["table"] and "GNN (PinSage)" in first["table"]
    art = Path(first["artifacts"])
    for f in ("item_embeddings.npy", "item_ids.json", "user_params.json", "model.pt", "evaluation.json",
              "learning_curve.png", "versions.png", "checkpoints/best.pt"):
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
    with pytest.raises(RuntimeError):
        run_pipeline(s, force=True, vectors=vec, progress=False, evaluate_pipeline=False, fail_at="after_train")
    assert reg.live("gnn").id == first["version"] and vec.get_alias(s.qdrant.alias) == alias
    # A second version, forced: promoted; then rolled back to the first.
    second = run_pipeline(s, force=True, vectors=vec, progress=False, evaluate_pipeline=False)
    assert second["status"] == "promoted" and vec.get_alias(s.qdrant.alias) != alias
    assert rollback(s, vectors=vec) == (first["version"], second["version"])
    assert vec.get_alias(s.qdrant.alias) == alias and reg.live("gnn").id == first["version"]
    # The gate: with new data and an impossible tolerance (must double the metrics), a new
    # version is rejected, its collection dropped, the live one kept.
    from graphrec.graph.repository import Repository

    Repository(store).record_interaction({"user_id": "u1", "item_id": "i3", "type": "PURCHASE", "ts": 1.8e9})
    strict = s.model_copy(update={"training": s.training.model_copy(update={"tolerance": -1.0})})
    before = set(vec.list_collections())
    third = run_pipeline(strict, vectors=vec, progress=False, evaluate_pipeline=False)
    assert third["status"] == "rejected" and "regresses" in third["reason"]
    assert reg.get(third["version"]).status == "rejected" and set(vec.list_collections()) == before
    assert reg.live("gnn").id == first["version"] and vec.get_alias(s.qdrant.alias) == alias
    vec.close()


def test_lightgcn_is_evaluated_beside_the_gnn_and_can_be_served(store, neo4j_settings: Settings,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    cat = SyntheticCatalog(SyntheticSpec(users=150, items=120, interactions=4000, categories=6, seed=5))
    w = GraphWriter(store, batch_size=2000, progress=False)
    w.users(cat.users())
    w.items(cat.items())
    w.interactions(cat.interactions())
    base = _settings(neo4j_settings, tmp_path)
    lg = SMALL.lightgcn.model_copy(update={"epochs": 10, "eval_every": 2})
    s = base.model_copy(update={"gnn": SMALL.model_copy(update={"model": "lightgcn", "lightgcn": lg})})
    vec = EdgeIndex(tmp_path / "vectors")
    out = run_pipeline(s, vectors=vec, progress=False, evaluate_pipeline=False)
    assert out["served_model"] == "lightgcn" and out["status"] == "promoted"
    for row in ("GNN (PinSage)", "LightGCN", "LightGCN (pooled, served)", "EASE"):
        assert row in out["table"], row
    art = Path(out["artifacts"])
    emb = np.load(art / "item_embeddings.npy")
    assert emb.shape[1] == SMALL.dim and np.isfinite(emb).all()
    assert set(out["stages"]) >= {"export_s", "fit_s", "eval_fit_s", "lightgcn_s", "refit_s", "publish_s"}
    # The gate's metrics are the served model's row.
    import json

    rows = json.loads((art / "evaluation.json").read_text())["results"]
    assert out["metrics"]["ndcg@10"] == pytest.approx(rows["LightGCN (pooled, served)"]["ndcg@10"])
    # LightGCN off: gnn.model = lightgcn is a configuration error, with a clear message.
    off = base.model_copy(update={"gnn": SMALL.model_copy(update={
        "model": "lightgcn", "lightgcn": lg.model_copy(update={"enabled": False})})})
    with pytest.raises(ModelError, match="lightgcn.enabled"):
        run_pipeline(off, vectors=vec, progress=False, evaluate_pipeline=False, force=True)
