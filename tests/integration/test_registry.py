"""The model registry in Neo4j: register, promote with a tolerance gate, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.core.errors import ModelError, NotFound
from graphrec.core.registry import Registry, decide, new_version_id

pytestmark = pytest.mark.integration


def test_decide_gate() -> None:
    live = {"ndcg@10": 0.20, "recall@100": 0.50}
    assert decide({"ndcg@10": 0.197, "recall@100": 0.50}, live, 0.02).promote
    d = decide({"ndcg@10": 0.18, "recall@100": 0.55}, live, 0.02)
    assert not d.promote and "ndcg@10" in d.reason
    assert decide({"ndcg@10": 0.1, "recall@100": 0.1}, live, 0.02, force=True).promote
    assert decide({"ndcg@10": 0.1, "recall@100": 0.1}, None, 0.02).promote
    assert not decide({"ndcg@10": 0.3}, live, 0.02).promote  # a gating metric is missing


def test_register_promote_rollback(store, tmp_path: Path) -> None:  # noqa: ANN001
    reg = Registry(store, tmp_path)
    ids = [new_version_id("gnn", now=1_700_000_000 + k) for k in range(3)]
    for k, vid in enumerate(ids):
        v = reg.register("gnn", vid, seed=42, config={"dim": 64}, metrics={"ndcg@10": 0.2 + k / 100, "recall@100": 0.5},
                         snapshot={"interactions": 100 + k}, training_seconds=12.5, collection=f"items_{k}")
        assert v.status == "candidate" and v.metrics["ndcg@10"] == pytest.approx(0.2 + k / 100) and v.seed == 42
    assert reg.live("gnn") is None
    with pytest.raises(ModelError):
        reg.rollback_target("gnn")
    assert reg.promote(ids[0]) is None
    assert reg.promote(ids[1]) == ids[0]
    assert reg.live("gnn").id == ids[1] and reg.get(ids[0]).status == "retired"
    assert reg.rollback_target("gnn").id == ids[0]
    assert reg.rollback("gnn") == (ids[0], ids[1])
    assert reg.live("gnn").id == ids[0] and reg.get(ids[1]).status == "rolled_back"
    reg.set_status(ids[2], "rejected", "ndcg@10 regressed")
    assert reg.get(ids[2]).status_reason == "ndcg@10 regressed"
    assert [v.id for v in reg.list("gnn")] == ids[::-1]
    # Queryable from Neo4j Browser with flat metric properties.
    row = store.run_text("MATCH (m:ModelVersion {id: $id}) RETURN m.metric_ndcg_at_10 AS n", id=ids[0])
    assert row[0]["n"] == pytest.approx(0.2)
    with pytest.raises(NotFound):
        reg.get("nope")
