"""`/metrics` with several workers: whichever worker answers the scrape, the counts are those of
all of them (`graphrec serve --workers 2` turns on prometheus_client's multiprocess mode)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from graphrec.core.config import Settings
from graphrec.testing import tiny_graph, wipe
from graphrec.testing.server import serve_process

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
QUERY = "query($u: ID!) { recommendations(userId: $u, first: 3) { items { item { id } } } }"


def _count(text: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(
        r'^graphrec_requests_total\{[^}]*operation="recommendations"[^}]*\} (\S+)$', text, re.M))


def test_metrics_add_up_every_worker(neo4j_settings: Settings, tmp_path: Path) -> None:
    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(neo4j_settings) as store:
        wipe(store)
        tiny_graph(store)
    env = {"GRAPHREC_API_RATE_LIMIT_PER_S": "100000", "GRAPHREC_API_RATE_LIMIT_BURST": "100000",
           "GRAPHREC_ENGINE_REQUEST_BUDGET_MS": "3000", "GRAPHREC_ENGINE_SOURCE_BUDGET_MS": "2000"}
    with serve_process(neo4j_settings, tmp_path / "var", workers=2, env=env) as (url, _pid):
        users = ["alice", "bob", "carol", "dave"]
        sent = 0
        # New connections each time, so the kernel spreads them over both workers.
        for k in range(40):
            with httpx.Client(base_url=url, timeout=10) as c:
                r = c.post("/graphql", json={"query": QUERY, "variables": {"u": users[k % 4]}})
                assert r.status_code == 200 and not r.json().get("errors"), r.text
                sent += 1
        for _ in range(6):  # every scrape, whichever worker answers it, sees all 40
            with httpx.Client(base_url=url, timeout=10) as c:
                text = c.get("/metrics").text
            assert _count(text) == sent, text[:3000]
        assert 'graphrec_cache_hit_ratio{cache="results",pid=' in text  # per-worker gauge
