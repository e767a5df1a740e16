"""``graphrec schedule``: retrain on a cron expression, one run at a time, only when there is new data.

Each tick runs export → train → evaluate → publish (:func:`gnn.lifecycle.run_pipeline`) under
an exclusive ``flock`` on ``var/locks/retrain.lock``: the kernel releases it when the process
dies, so a crashed run never blocks the next one, and two schedulers (or a scheduler and a
manual ``graphrec train``) never retrain at once. Every run, skipped or not, is one JSON line in
``var/logs/schedule.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from croniter import croniter

from gnn.lifecycle import run_pipeline
from gnn.ranking.lifecycle import train_ranker
from graphrec.core.config import Settings
from graphrec.core.errors import ConfigError, LockHeld
from graphrec.core.graph.store import GraphStore
from graphrec.core.locks import exclusive
from graphrec.core.registry import Registry


def retrain_lock(var_dir: Path) -> contextlib.AbstractContextManager[None]:
    """One retraining at a time (graphrec.core.locks: exclusive, non-blocking, crash-safe)."""
    return exclusive(var_dir, "retrain", lambda holder: f"a retraining is already running ({holder})")


def log_run(var_dir: Path, entry: dict[str, Any]) -> None:
    path = var_dir / "logs" / "schedule.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


def next_run(cron: str, after: float) -> float:
    if not croniter.is_valid(cron):
        raise ConfigError(f"training.cron {cron!r} is not a valid cron expression")
    return float(croniter(cron, datetime.fromtimestamp(after, UTC)).get_next(float))


def tick(settings: Settings, pipeline: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """One scheduled run: lock, run the pipeline (which skips when there is no new data), log."""
    started = time.time()
    entry: dict[str, Any] = {"started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")}
    try:
        with retrain_lock(settings.var_dir):
            result = pipeline(settings, scheduled=True)
        entry.update(result)
    except LockHeld as exc:
        entry.update({"status": "skipped", "reason": str(exc)})
    except Exception as exc:  # noqa: BLE001 - a failed run is logged, the scheduler goes on
        entry.update({"status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
    entry["seconds"] = round(time.time() - started, 1)
    log_run(settings.var_dir, entry)
    return entry


def run_forever(settings: Settings, pipeline: Callable[..., dict[str, Any]], cron: str | None = None,
                once: bool = False, on_tick: Callable[[dict[str, Any]], None] | None = None) -> None:
    cron = cron or settings.training.cron
    while True:
        if not once:
            wake = next_run(cron, time.time())
            while (left := wake - time.time()) > 0:
                time.sleep(min(left, 30.0))
        entry = tick(settings, pipeline)
        if on_tick:
            on_tick(entry)
        if once:
            return


def retrain_cycle(settings: Settings, scheduled: bool = True, progress: bool = False) -> dict[str, Any]:
    """One retraining of ``graphrec schedule``: the GNN pipeline, then, when it promoted a new GNN
    and a ranker is in use (the live ranker is enabled), a ranker trained on the new GNN."""
    out = run_pipeline(settings, scheduled=scheduled, progress=progress)
    if out.get("status") != "promoted":
        return out
    with GraphStore.from_settings(settings) as store:
        live_ranker = Registry(store, settings.var_dir / "models").live("ranker")
    in_use = live_ranker is not None and bool(live_ranker.extra.get("enabled"))
    if not in_use:
        out["ranker"] = "not retrained: no ranker in use"
        return out
    r = train_ranker(settings, progress=progress)
    out["ranker"] = {"version": r["version"], "enabled": r["enabled"], "reason": r["reason"]}
    return out
