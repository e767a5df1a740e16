"""Scheduled retraining: cron parsing, one run at a time, crash-safe lock, every run logged."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gnn.schedule import next_run, retrain_lock, tick
from graphrec.core.config import Settings
from graphrec.core.errors import ConfigError, LockHeld


def _settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path)


def test_next_run_follows_cron() -> None:
    t = datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(next_run("0 3 * * *", t), UTC) == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    with pytest.raises(ConfigError):
        next_run("every day", t)


def test_lock_is_exclusive(tmp_path: Path) -> None:
    with retrain_lock(tmp_path), pytest.raises(LockHeld, match="already running"), retrain_lock(tmp_path):
        pass
    with retrain_lock(tmp_path):  # released after the first holder left
        pass


def _hold_lock_forever(var_dir: str, ready: object) -> None:
    with retrain_lock(Path(var_dir)):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(60)


def test_lock_survives_a_crash(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_lock_forever, args=(str(tmp_path), ready))
    p.start()
    assert ready.wait(10)
    with pytest.raises(LockHeld), retrain_lock(tmp_path):
        pass
    os.kill(p.pid, signal.SIGKILL)  # the holder crashes mid-run
    p.join(10)
    with retrain_lock(tmp_path):  # the kernel released its lock: the next run proceeds
        pass


def test_tick_logs_success_failure_and_overlap(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert tick(s, lambda settings, scheduled: {"status": "skipped", "reason": "no new data"})["status"] == "skipped"

    def boom(settings: Settings, scheduled: bool) -> dict:
        raise RuntimeError("training crashed half-way")

    assert tick(s, boom)["status"] == "failed"
    with retrain_lock(tmp_path):
        assert "already running" in tick(s, lambda settings, scheduled: {"status": "ok"})["reason"]
    assert tick(s, lambda settings, scheduled: {"status": "promoted", "version": "v1"})["status"] == "promoted"
    lines = [json.loads(x) for x in (tmp_path / "logs" / "schedule.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["skipped", "failed", "skipped", "promoted"]
    assert "crashed half-way" in lines[1]["reason"]
