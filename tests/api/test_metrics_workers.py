"""`/metrics` with several workers: whichever worker answers the scrape, the counts are those of
all of them (`graphrec serve --workers 2` turns on prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from graphrec.config import Settings
from graphrec.testing import tiny_graph, wipe
from graphrec.testing.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
QUERY = "query($u: ID!) { recommendations(userId: $u, first: 3) { items { item { id } } } }"


def _count(text: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(
        r'^graphrec_requests_total\{[^}]*operation="recommendations"[^}]*\} (\S+)$', text, re.M))


def test_metrics_add_up_every_worker(neo4j_settings: Settings, tmp_path: Path) -> None:
    from graphrec.graph.store import GraphStore, resolve_password

    with GraphStore.from_settings(neo4j_settings) as store:
        wipe(store)
        tiny_graph(store)
    n = neo4j_settings.neo4j
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHREC_", "PROMETHEUS_"))}
    env.update({"GRAPHREC_VAR_DIR": str(tmp_path / "var"), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port),
                "GRAPHREC_NEO4J_PASSWORD": resolve_password(neo4j_settings),
                "GRAPHREC_API_ANONYMOUS_READ": "true", "GRAPHREC_API_RATE_LIMIT_PER_S": "100000",
                "GRAPHREC_API_RATE_LIMIT_BURST": "100000", "GRAPHREC_ENGINE_REQUEST_BUDGET_MS": "3000",
                "GRAPHREC_ENGINE_SOURCE_BUDGET_MS": "2000"})
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.3)
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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
