"""Training progress in a file other processes read (graphrec.core.progress)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from tqdm import tqdm

from graphrec.core.progress import StatusWriter, describe, pid_path, read_status, running_pid


def test_status_follows_the_live_progress_bars(tmp_path: Path) -> None:
    w = StatusWriter(tmp_path, every_s=3600)  # sampled by hand below
    with w:
        with tqdm(range(80), desc="train GNN", unit="epoch", file=io.StringIO()) as bar:
            for _ in range(20):
                bar.update(1)
            st = w.sample()
        assert (st["stage"], st["epoch"], st["epochs"], st["fit"]) == ("train GNN", 20, 80, 1)
        assert st["eta_s"] is not None and st["eta_s"] >= 0
        with tqdm(total=5, desc="train GNN", file=io.StringIO()):
            assert w.sample()["fit"] == 2  # the refit is the second fit
        assert "fit 2, epoch 0/5" in describe(w.sample())
        assert read_status(tmp_path)["state"] == "running"  # written on entry, by this live process
    assert read_status(tmp_path)["state"] == "done"


def test_a_dead_writer_reads_as_interrupted_and_a_live_pid_as_running(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train-status.json").write_text('{"state": "running", "pid": 999999999, "stage": "train GNN"}')
    assert read_status(tmp_path)["state"] == "interrupted"
    assert describe(None) == "training: never run here"
    pid_path(tmp_path).write_text(f"{os.getpid()}\n")
    assert running_pid(tmp_path) == os.getpid()
    pid_path(tmp_path).write_text("999999999\n")
    assert running_pid(tmp_path) is None
