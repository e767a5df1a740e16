"""The dashboard's numbers (api/dashboard.py) from a Prometheus exposition, and its read scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.dashboard import from_exposition, histogram_quantile

EXPOSITION = """\
# TYPE graphrec_request_seconds histogram
graphrec_request_seconds_bucket{operation="recommendations",le="0.01"} 50.0
graphrec_request_seconds_bucket{operation="recommendations",le="0.02"} 90.0
graphrec_request_seconds_bucket{operation="recommendations",le="0.05"} 100.0
graphrec_request_seconds_bucket{operation="recommendations",le="+Inf"} 100.0
graphrec_request_seconds_count{operation="recommendations"} 100.0
graphrec_request_seconds_sum{operation="recommendations"} 1.2
# TYPE graphrec_candidates_total gauge
graphrec_candidates_total{source="ann"} 300.0
graphrec_candidates_total{source="popular"} 100.0
# TYPE graphrec_cache_hit_ratio gauge
graphrec_cache_hit_ratio{cache="results",pid="1"} 0.2
graphrec_cache_hit_ratio{cache="results",pid="2"} 0.4
# TYPE graphrec_journal_pending_bytes gauge
graphrec_journal_pending_bytes 512.0
# TYPE graphrec_degraded_answers_total counter
graphrec_degraded_answers_total{operation="recommendations",reason="neo4j"} 3.0
graphrec_degraded_answers_total{operation="similarItems",reason="neo4j"} 1.0
graphrec_degraded_answers_total{operation="recommendations",reason="stale"} 1.0
# TYPE graphrec_degraded_responses_total counter
graphrec_degraded_responses_total{operation="recommendations",reason="neo4j"} 2.0
graphrec_degraded_responses_total{operation="recommendations",reason="neo4j,stale"} 1.0
graphrec_degraded_responses_total{operation="similarItems",reason="neo4j"} 1.0
"""


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    b = [(0.01, 50.0), (0.02, 90.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, b) == pytest.approx(0.01)
    assert histogram_quantile(0.7, b) == pytest.approx(0.015)  # rank 70: halfway through (0.01, 0.02]
    assert histogram_quantile(0.99, b) == pytest.approx(0.047)
    assert histogram_quantile(0.99, [(0.01, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(0.01, 1.0), (float("inf"), 10.0)]) == 0.01  # beyond the last bound


def test_from_exposition() -> None:
    d = from_exposition(EXPOSITION)
    assert d["latency_ms"]["recommendations"] == {"count": 100.0, "p50": 10.0, "p95": 35.0, "p99": 47.0}
    assert d["candidates"]["ann"] == {"count": 300.0, "share": 0.75}
    assert d["cache_hit_ratio"]["results"] == pytest.approx(0.3)
    assert d["journal_pending_bytes"] == 512.0
    # Degraded answers are counted once each (graphrec_degraded_responses_total): the answer
    # degraded by "neo4j" and "stale" is one answer, not two (the per-reason counter says 5).
    assert d["degraded"] == {"neo4j": 3.0, "neo4j,stale": 1.0} and d["degraded_total"] == 4.0


def test_a_degraded_answer_is_counted_once_with_its_reasons() -> None:
    from api import metrics as M
    from api.app import _observe
    from graphrec.core.recs.types import RecResult

    def once(reason: str) -> float:
        return M.REGISTRY.get_sample_value("graphrec_degraded_responses_total",
                                           {"operation": "rerank", "reason": reason}) or 0.0

    before = once("neo4j,stale"), once("vectors")
    _observe("rerank", RecResult([], True, None, "r1", ("neo4j", "stale"), {}))
    _observe("rerank", RecResult([], True, None, "r2", ("vectors",), {}))
    _observe("rerank", RecResult([], False, None, "r3", (), {}))
    assert (once("neo4j,stale") - before[0], once("vectors") - before[1]) == (1.0, 1.0)


@pytest.mark.integration
@pytest.mark.e2e
def test_dashboard_json_needs_the_read_scope(api: Any) -> None:
    assert httpx.get(api.url + "/dashboard.json").status_code == 401
    assert httpx.get(api.url + "/dashboard.json", headers={"Authorization": f"Bearer {api.revoked_key}"}).status_code == 401
    r = httpx.get(api.url + "/dashboard.json", headers={"Authorization": f"Bearer {api.read_key}"})
    assert r.status_code == 200 and "latency_ms" in r.json() and r.json()["models"] == []


@pytest.mark.integration
@pytest.mark.e2e
def test_readyz_says_which_model_serves_and_how_training_goes(api: Any) -> None:
    from graphrec.core.progress import StatusWriter

    with StatusWriter(api.settings.var_dir, every_s=3600):
        r = httpx.get(api.url + "/readyz").json()
    assert r["model_version"] is None  # no model yet: the Cypher paths, content and popularity answer
    assert r["training"]["state"] == "running" and r["training"]["pid"] == __import__("os").getpid()
