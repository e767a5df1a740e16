"""A historical dataset meets live traffic: the demo summary's collaborative scores stay readable
after one live interaction moved the graph's clock to today (they used to print 0.00)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphrec.core.config import Settings
from graphrec.testing import tiny_graph, wipe

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_demo_summary_scores_survive_a_live_write(neo4j_settings: Settings, tmp_path: Path) -> None:
    from graphrec.core.graph.store import GraphStore, resolve_password
    from graphrec.core.records import InteractionRow, InteractionType
    from loaders.writer import GraphWriter, Source

    with GraphStore.from_settings(neo4j_settings) as store:
        wipe(store)
        tiny_graph(store)  # interactions at t = 1000..1800 s
        now = time.time()  # two live events (one alone would not move the clock: an outlier)
        GraphWriter(store, batch_size=10, on_error="stop", progress=False).interactions(
            [(InteractionRow(user_id="erin", item_id=item, type=InteractionType.parse("CLICK"), ts=now - k),
              Source("live", k + 1)) for k, item in enumerate(("up", "toy"))])
        assert store.read("recs/latest_ts")[0]["ts"] > time.time() - 60  # the clock is today
    n = neo4j_settings.neo4j
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(tmp_path / "var"), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port), "GRAPHREC_NEO4J_PASSWORD": resolve_password(neo4j_settings),
                "COLUMNS": "200"})
    out = subprocess.run([sys.executable, "-m", "graphrec.cli", "demo-summary", "--user-id", "alice"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "Alien" in line and "│" in line)
    score = float(re.findall(r"│\s*([0-9.]+)\s*│", row)[-1])
    assert score >= 0.5, row  # bob's PURCHASE and dave's rating of Alien, within days of alice's ratings
