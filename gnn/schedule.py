"""``graphrec schedule``: retrain on a cron expression, one run at a time, only when there is new data.

Each tick runs export → train → evaluate → publish (:func:`gnn.lifecycle.run_pipeline`) under
an exclusive ``flock`` on ``var/locks/retrain.lock``: the kernel releases it when the process
dies, so a crashed run never blocks the next one, and two schedulers (or a scheduler and a
manual ``graphrec train``) never retrain at once. Every run, skipped or not, is one JSON line in
``var/logs/schedule.jsonl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from croniter import croniter

from graphrec.core.config import Settings
from graphrec.core.errors import ConfigError, LockHeld


@contextlib.contextmanager
def retrain_lock(var_dir: Path) -> Iterator[None]:
    """Exclusive, non-blocking, crash-safe lock for one retraining at a time."""
    path = var_dir / "locks" / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise LockHeld(f"a retraining is already running ({holder or 'unknown holder'})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


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
