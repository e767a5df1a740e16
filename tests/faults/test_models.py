"""Faults around the model: the vector index unavailable at start (answers degrade, then recover
by themselves), the alias pointing at a missing collection or the index directory gone while the
API runs (the live model's open collection still answers), and a retraining that crashes
half-way (the live model and alias untouched, the lock released, the next scheduled run goes
ahead).

One small GNN is trained for the module; ``tests/integration/test_lifecycle.py`` already checks
that an exception half-way through ``run_pipeline`` leaves the live model and alias as they were;
here the crash goes through the scheduler, once as an exception and once as a SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphrec.core.config import Settings
from graphrec.core.gnn_config import GNNConfig
from tests.faults.conftest import close_stack, make_stack
from tests.faults.harness import RECOMMEND, ROOT, ApiProcess, Reply, Stack, gql, run, wait_for
from tests.injection import crash_after_training

SMALL = GNNConfig(dim=16, hidden=32, epochs=2, patience=2, batch_users=64, walks_per_item=20, neighbors=5,
                  easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(5, 50), examples_per_user=1)


@pytest.fixture(scope="module")
def trained(fault_neo4j: Settings) -> Iterator[Stack]:
    """The stack with a live GNN version published to the Edge index under ``var/vectors``."""
    from gnn.lifecycle import run_pipeline

    st = make_stack(fault_neo4j, "models")
    st.settings = st.settings.model_copy(update={
        "gnn": SMALL,
        # Any new version passes the gate: the next scheduled run is promoted, deterministically.
        "training": st.settings.training.model_copy(update={"tolerance": 1.0, "refit_full": False}),
    })
    out = run_pipeline(st.settings, progress=False, evaluate_pipeline=False)
    assert out["status"] == "promoted"
    try:
        yield st
    finally:
        close_stack(st)


def _ask(api: ApiProcess, key: str, user: str) -> dict[str, Any]:
    async def go() -> Reply:
        async with httpx.AsyncClient(timeout=15) as client:
            return await gql(client, api.url, key, RECOMMEND, {"u": user})

    r = run(go())
    assert r.ok, r.body
    return r.body["data"]["recommendations"]


def _ready(api: ApiProcess) -> dict[str, Any]:
    return httpx.get(f"{api.url}/readyz", timeout=10).json()


def _degraded_by_vectors(api: ApiProcess, key: str, users: range) -> None:
    """Users never asked for before (no cached answer): every answer degraded by the vector index
    alone, and still full (the live model's vectors searched exactly, in memory)."""
    for n in users:
        rec = _ask(api, key, f"u{n}")
        assert rec["degraded"] and rec["degradedReasons"] == ["vectors"], rec
        assert len(rec["items"]) == 5 and all(x["item"]["title"] for x in rec["items"])


def _recovered(api: ApiProcess, key: str, user: str) -> None:
    """Whole answers again with no restart (a degraded answer is never cached, so one user does)."""
    wait_for(lambda: not _ask(api, key, user)["degraded"], 30, "answers without the vectors reason")
    assert _ready(api)["vectors"] is True


def test_vector_index_unavailable_or_collection_missing_then_recovers(trained: Stack) -> None:
    root = trained.var / "vectors"
    away = trained.var / "vectors.away"
    aliases = json.loads((root / "aliases.json").read_text())
    alias = trained.settings.qdrant.alias
    live = aliases[alias]

    # 1. Unavailable when the API starts (its path is not a directory: a volume not mounted).
    root.rename(away)
    root.write_text("not a directory\n")
    api = trained.api()
    assert _ready(api)["vectors"] is False
    _degraded_by_vectors(api, trained.key, range(0, 5))
    root.unlink()
    away.rename(root)
    _recovered(api, trained.key, "u5")

    # 2. The alias moved to a collection that is not there: the engine searches the collection the
    #    live model was published to (the registry's record), so answers stay whole.
    (root / "aliases.json").write_text(json.dumps({**aliases, alias: "graphrec_items_gone"}))
    try:
        for n in range(10, 15):
            rec = _ask(api, trained.key, f"u{n}")
            assert not rec["degraded"] and len(rec["items"]) == 5, rec
    finally:
        (root / "aliases.json").write_text(json.dumps(aliases))

    # 3. The index directory goes away while the API runs, then returns: the collection the live
    #    model searches is open (warmed before it served) and keeps answering; readiness says the
    #    index storage is unreachable (nothing new could be opened) until it is back.
    root.rename(away)
    try:
        assert _ready(api)["vectors"] is False
        for n in range(20, 25):
            rec = _ask(api, trained.key, f"u{n}")
            assert not rec["degraded"] and len(rec["items"]) == 5, rec
    finally:
        away.rename(root)
    wait_for(lambda: _ready(api)["vectors"] is True, 30, "the index to be reachable again")
    assert json.loads((root / "aliases.json").read_text())[alias] == live


def _live_and_alias(st: Stack) -> tuple[str, str | None, list[str]]:
    from graphrec.core.registry import Registry
    from graphrec.core.vectors.edge import EdgeIndex

    with st.store() as store:
        live = Registry(store, st.var / "models").live("gnn")
    vec = EdgeIndex(st.var / "vectors", read_only=True)
    try:
        return live.id, vec.get_alias(st.settings.qdrant.alias), vec.list_collections()
    finally:
        vec.close()


def _lock_is_free(var: Path) -> bool:
    from gnn.schedule import retrain_lock
    from graphrec.core.errors import LockHeld

    try:
        with retrain_lock(var):
            return True
    except LockHeld:
        return False


def _new_data(st: Stack, n: int) -> None:
    from graphrec.testing import on_engine

    async def record(e: Any) -> None:
        for k in range(n):
            await e.record_interaction({"user_id": f"u{k}", "item_id": f"i{k + 1}", "type": "PURCHASE",
                                        "ts": 1.75e9 + k, "key": f"new-data-{k}"})

    on_engine(st.settings, record)


def test_retraining_crash_releases_the_lock_and_the_next_scheduled_run_proceeds(trained: Stack) -> None:
    from gnn.lifecycle import run_pipeline
    from gnn.schedule import tick

    before = _live_and_alias(trained)
    _new_data(trained, 20)  # so that a scheduled run has something to learn (it skips otherwise)
    s = trained.settings
    log = trained.var / "logs" / "schedule.jsonl"

    # 1. A scheduled run that raises half-way (after training, before publishing).
    with pytest.MonkeyPatch.context() as mp:
        crash_after_training(mp)
        entry = tick(s, partial(run_pipeline, progress=False, evaluate_pipeline=False))
    assert entry["status"] == "failed" and "injected failure" in entry["reason"]
    assert _live_and_alias(trained) == before and _lock_is_free(s.var_dir)

    # 2. A scheduled run killed (SIGKILL) while it trains, holding the lock.
    env = trained.env(GRAPHREC_GNN_DIM="16", GRAPHREC_GNN_HIDDEN="32", GRAPHREC_GNN_EPOCHS="200",
                      GRAPHREC_GNN_PATIENCE="200", GRAPHREC_GNN_BATCH_USERS="64", GRAPHREC_GNN_WALKS_PER_ITEM="20",
                      GRAPHREC_GNN_NEIGHBORS="5", GRAPHREC_GNN_EASY_NEGATIVES="8", GRAPHREC_GNN_HARD_NEGATIVES_MAX="2",
                      GRAPHREC_GNN_HARD_NEGATIVE_RANKS="[5, 50]", GRAPHREC_GNN_EXAMPLES_PER_USER="1")
    with open(trained.var / "schedule.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "schedule", "--once"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    models = trained.var / "models"
    old = set(os.listdir(models))
    try:
        wait_for(lambda: proc.poll() is not None or any((models / d / "checkpoints" / "best.pt").exists()
                                                        for d in os.listdir(models) if d not in old),
                 120, "the scheduled run to be training")
        assert proc.poll() is None, (trained.var / "schedule.log").read_text()[-2000:]
        assert not _lock_is_free(s.var_dir)  # it holds the lock while it trains
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert _live_and_alias(trained) == before
    assert _lock_is_free(s.var_dir)  # the kernel dropped the dead run's lock

    # 3. The next scheduled run proceeds: trains on the new data, publishes, promotes.
    t0 = time.monotonic()
    entry = tick(s, partial(run_pipeline, progress=False, evaluate_pipeline=False))
    assert entry["status"] == "promoted", entry
    live, alias, collections = _live_and_alias(trained)
    assert live == entry["version"] != before[0] and alias != before[1] and before[1] in collections
    assert _lock_is_free(s.var_dir)
    statuses = [json.loads(line)["status"] for line in log.read_text().splitlines()]
    assert statuses == ["failed", "promoted"], statuses  # the killed run had no chance to log
    print(f"next scheduled run: {time.monotonic() - t0:.1f}s")
