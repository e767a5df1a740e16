"""The operator's dashboard (``/dashboard``, read scope): what it shows is computed from the
Prometheus exposition that ``/metrics`` serves (the same collectors, every worker's samples in
multiprocess mode), plus the model registry. ``/dashboard.json`` is what the page polls.

Latency percentiles are read from the ``graphrec_request_seconds`` histogram buckets the way
Prometheus' ``histogram_quantile`` does: linear interpolation inside the bucket that holds the
rank, so they are bucket-accurate (a p99 between 0.05 and 0.075 s is reported within that bucket).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``q`` of a histogram given as cumulative ``(upper bound, count)`` pairs, +Inf included."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the last finite bucket: its bound, as Prometheus does
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def from_exposition(text: str) -> dict[str, Any]:
    """The dashboard's live numbers from a Prometheus text exposition (what /metrics serves)."""
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    candidates: dict[str, float] = defaultdict(float)
    caches: dict[str, list[float]] = defaultdict(list)
    degraded: dict[str, float] = defaultdict(float)
    journal = 0.0
    shed = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "graphrec_requests_total":
                requests[labels["operation"]] += value
            elif name == "graphrec_errors_total":
                errors[labels["code"]] += value
            elif name == "graphrec_request_seconds_bucket":
                buckets[labels["operation"]][float(labels["le"])] += value
            elif name == "graphrec_candidates_total":
                candidates[labels["source"]] += value
            elif name == "graphrec_cache_hit_ratio":
                caches[labels["cache"]].append(value)
            elif name == "graphrec_degraded_responses_total":  # once per answer, by its reasons
                degraded[labels["reason"]] += value
            elif name == "graphrec_journal_pending_bytes":
                journal = max(journal, value)
            elif name == "graphrec_requests_shed_total":
                shed += value
    latency = {}
    for op, b in sorted(buckets.items()):
        pairs = list(b.items())
        latency[op] = {"count": max(c for _, c in pairs),
                       **{f"p{int(q * 100)}": _ms(histogram_quantile(q, pairs)) for q in (0.5, 0.95, 0.99)}}
    total_candidates = sum(candidates.values())
    return {
        "requests": dict(sorted(requests.items())),
        "requests_total": sum(requests.values()),
        "errors": dict(sorted(errors.items())),
        "shed": shed,
        "latency_ms": latency,
        "candidates": {k: {"count": v, "share": (v / total_candidates) if total_candidates else 0.0}
                       for k, v in sorted(candidates.items(), key=lambda kv: -kv[1])},
        # several workers: the mean of their ratios (each worker has its own caches)
        "cache_hit_ratio": {k: sum(v) / len(v) for k, v in sorted(caches.items())},
        "degraded": dict(sorted(degraded.items())),
        "degraded_total": sum(degraded.values()),
        "journal_pending_bytes": journal,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


async def models(engine: Any, first: int = 10) -> list[dict[str, Any]]:
    """The newest model versions with their metrics; ``live`` marks the one this worker serves."""
    serving = getattr(getattr(engine, "model", None), "version", None)
    out = []
    for v in await engine.model_versions(first):
        out.append({
            "id": v.id, "status": v.status, "live": v.id == serving or (serving is None and v.status == "live"),
            "created_at": v.created_at, "promoted_at": v.promoted_at, "training_seconds": v.training_seconds,
            "metrics": {k: v.metrics[k] for k in ("ndcg@10", "recall@10", "recall@100", "hitrate@10", "coverage@10") if k in v.metrics},
            "curve": bool(v.artifact_dir) and _has_curve(v.artifact_dir),
        })
    return out


def _has_curve(artifact_dir: str) -> bool:
    from pathlib import Path

    return (Path(artifact_dir) / "learning_curve.png").is_file()


async def snapshot(engine: Any, exposition: str) -> dict[str, Any]:
    data = from_exposition(exposition)
    try:
        data["models"] = await models(engine) if engine is not None else []
    except Exception:  # noqa: BLE001 - Neo4j down: the live numbers still show
        data["models"] = None
    data["at"] = time.time()
    return data


__all__ = ["from_exposition", "histogram_quantile", "models", "snapshot"]
