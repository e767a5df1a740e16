"""The model registry: every trained version, durably in Neo4j, artifacts on disk.

A version is a ``(:ModelVersion)`` node (queryable from Neo4j Browser:
``MATCH (m:ModelVersion) RETURN m ORDER BY m.created_at DESC``) holding its id, kind, status,
seed, config, data-snapshot statistics, metrics and training time, plus the path of its
artifacts (``var/models/<id>/``) and the vector collection it was published to.

Statuses: ``candidate`` → ``live`` (promoted) → ``retired`` (replaced) or ``rolled_back``;
``rejected`` when it regressed beyond the tolerance; ``failed`` when its pipeline crashed.
Promotion and rollback change statuses in one transaction; switching the vector alias is the
caller's step (see :mod:`gnn.lifecycle`) and happens first, so a crash in between leaves the
old version serving.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.core.errors import ModelError, NotFound
from graphrec.core.graph.store import GraphStore

#: The metrics promotion compares (higher is better).
GATING_METRICS = ("ndcg@10", "recall@100")


@dataclass(frozen=True)
class ModelVersion:
    id: str
    kind: str
    status: str
    created_at: float
    seed: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    training_seconds: float | None = None
    artifact_dir: str | None = None
    collection: str | None = None
    previous: str | None = None
    promoted_at: float | None = None
    status_reason: str | None = None
    #: The promotion gate's comparison on one split (GNN versions): ``protocol``, ``candidate``
    #: and ``live`` metrics measured in the same run, ``live_version``.
    gate: dict[str, Any] = field(default_factory=dict)
    #: Other properties (e.g. a ranker's ``enabled``, ``gnn_version``, ``baseline_json``).
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_props(cls, m: dict[str, Any]) -> ModelVersion:
        known = {"id", "kind", "status", "created_at", "seed", "metrics_json", "snapshot_json", "config_json",
                 "training_seconds", "artifact_dir", "collection", "previous", "promoted_at", "status_reason", "gate_json"}
        return cls(
            id=m["id"], kind=m["kind"], status=m["status"], created_at=m.get("created_at", 0.0), seed=m.get("seed"),
            metrics=json.loads(m.get("metrics_json") or "{}"), snapshot=json.loads(m.get("snapshot_json") or "{}"),
            config=json.loads(m.get("config_json") or "{}"), training_seconds=m.get("training_seconds"),
            artifact_dir=m.get("artifact_dir"), collection=m.get("collection"), previous=m.get("previous"),
            promoted_at=m.get("promoted_at"), status_reason=m.get("status_reason"),
            gate=json.loads(m.get("gate_json") or "{}"),
            extra={k: v for k, v in m.items() if k not in known and not k.startswith("metric_")},
        )


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def new_version_id(kind: str, now: float | None = None) -> str:
    t = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{kind}-{t}-{secrets.token_hex(2)}"


def decide(candidate: dict[str, float], live: dict[str, float] | None, tolerance: float, force: bool = False) -> Decision:
    """Promote unless a gating metric fell more than ``tolerance`` (relative) below the live one."""
    if force:
        return Decision(True, "forced")
    if not live:
        return Decision(True, "no live version")
    for name in GATING_METRICS:
        if name not in candidate:
            return Decision(False, f"candidate has no {name}")
        if name in live and candidate[name] < live[name] * (1.0 - tolerance):
            return Decision(False, f"{name} {candidate[name]:.4f} regresses beyond {tolerance:.0%} "
                                   f"of the live {live[name]:.4f}")
    return Decision(True, "within tolerance")


class Registry:
    def __init__(self, store: GraphStore, models_dir: Path) -> None:
        self.store = store
        self.models_dir = models_dir

    def artifact_dir(self, version_id: str) -> Path:
        return self.models_dir / version_id

    def register(self, kind: str, version_id: str, *, seed: int, config: dict[str, Any], metrics: dict[str, float],
                 snapshot: dict[str, Any], training_seconds: float, collection: str | None = None,
                 extra: dict[str, Any] | None = None) -> ModelVersion:
        props: dict[str, Any] = {
            "created_at": time.time(), "seed": seed, "config_json": json.dumps(config, sort_keys=True, default=str),
            "metrics_json": json.dumps(metrics, sort_keys=True), "snapshot_json": json.dumps(snapshot, sort_keys=True),
            "training_seconds": float(training_seconds), "artifact_dir": str(self.artifact_dir(version_id)),
            "collection": collection, **(extra or {}),
        }
        # Flat copies of the headline metrics, for Neo4j Browser and ORDER BY.
        for name, value in metrics.items():
            props["metric_" + name.replace("@", "_at_")] = float(value)
        self.store.write("registry/create", id=version_id, kind=kind, props=props)
        return self.get(version_id)

    def get(self, version_id: str) -> ModelVersion:
        rows = self.store.read("registry/get", id=version_id)
        if not rows:
            raise NotFound("model version", version_id)
        return ModelVersion.from_props(rows[0]["m"])

    def live(self, kind: str) -> ModelVersion | None:
        rows = self.store.read("registry/live", kind=kind)
        return ModelVersion.from_props(rows[0]["m"]) if rows else None

    def list(self, kind: str, limit: int = 20) -> list[ModelVersion]:
        return [ModelVersion.from_props(r["m"]) for r in self.store.read("registry/list", kind=kind, limit=int(limit))]

    def promote(self, version_id: str) -> str | None:
        """Mark ``version_id`` live (the caller switched the serving alias first); returns the previous id."""
        rows = self.store.write("registry/promote", id=version_id, now=time.time())
        if not rows:
            raise NotFound("model version", version_id)
        return rows[0]["previous"]

    def set_status(self, version_id: str, status: str, reason: str) -> None:
        self.store.write("registry/set_status", id=version_id, status=status, reason=reason, now=time.time())

    def rollback_target(self, kind: str) -> ModelVersion:
        live = self.live(kind)
        if live is None:
            raise ModelError(f"no live {kind} version to roll back")
        if not live.previous:
            raise ModelError(f"live {kind} version {live.id} has no previous version to return to")
        return self.get(live.previous)

    def rollback(self, kind: str) -> tuple[str, str]:
        """Statuses only (the caller switched the alias back first): returns (live again, rolled back)."""
        rows = self.store.write("registry/rollback", kind=kind, now=time.time())
        if not rows:
            raise ModelError(f"no live {kind} version with a previous version")
        return rows[0]["id"], rows[0]["from"]
