"""Training progress that other processes can read: ``<var_dir>/run/train-status.json``.

``graphrec train`` runs a :class:`StatusWriter` beside the pipeline: once a second it reads the
progress bars the pipeline already draws (tqdm's live instances: export, "train GNN" epochs,
baselines, publishing) and writes the stage, the epoch, the fit number and the current fit's ETA
to the status file (atomically). ``graphrec status`` and the API's ``/readyz`` read it
(:func:`read_status`). The pipeline fits the GNN up to three times (on the training split with
early stopping, refit for the test, refit on everything for serving): ``fit`` counts them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any


def status_path(var_dir: Path) -> Path:
    return var_dir / "run" / "train-status.json"


def pid_path(var_dir: Path) -> Path:
    return var_dir / "run" / "train.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (a finished child not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running_pid(var_dir: Path) -> int | None:
    """The pid of a background ``graphrec train`` still running, else None."""
    try:
        pid = int(pid_path(var_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_status(var_dir: Path) -> dict[str, Any] | None:
    """The last written status, with ``state`` "running" turned "interrupted" when its writer is gone."""
    try:
        data: dict[str, Any] = json.loads(status_path(var_dir).read_text())
    except (OSError, ValueError):
        return None
    if data.get("state") == "running" and not _alive(int(data.get("pid", 0)) or -1):
        data["state"] = "interrupted"
    return data


class StatusWriter:
    """Writes the training status file once a second from the live progress bars (see module doc)."""

    def __init__(self, var_dir: Path, every_s: float = 1.0) -> None:
        self.path = status_path(var_dir)
        self.every_s = every_s
        self.started_at = time.time()
        self.fits = 0
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="train-status", daemon=True)
        self.status: dict[str, Any] = {"state": "running", "stage": "starting", "pid": os.getpid(),
                                       "started_at": self.started_at}

    def __enter__(self) -> StatusWriter:
        _write(self.path, self.status | {"updated_at": time.time()})
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.finish("failed" if exc_type else "done", str(exc)[:300] if exc else None)

    def finish(self, state: str, result: str | None) -> None:
        self.status.update(state=state, result=result, finished_at=time.time(), eta_s=0.0 if state == "done" else None)
        _write(self.path, self.status | {"updated_at": time.time()})

    def sample(self) -> dict[str, Any]:
        """Read the live progress bars into the status (called every second)."""
        from tqdm import tqdm

        bars = [b for b in list(getattr(tqdm, "_instances", ())) if not getattr(b, "disable", False)]
        if bars:
            bar = bars[-1]  # the innermost, most recently opened
            desc = (bar.desc or "").rstrip(": ")
            if desc == "train GNN" and id(bar) not in self._seen:
                self._seen.add(id(bar))
                self.fits += 1
            n, total = int(bar.n), bar.total
            rate = bar.format_dict.get("rate") or (n / bar.format_dict["elapsed"] if bar.format_dict.get("elapsed") else None)
            eta = (total - n) / rate if (rate and total) else None
            self.status.update(stage=desc or "working", done=n, total=total, unit=bar.unit,
                               eta_s=round(eta, 1) if eta is not None else None)
            if desc == "train GNN":
                self.status.update(epoch=n, epochs=total, fit=self.fits)
        self.status["elapsed_s"] = round(time.time() - self.started_at, 1)
        return self.status

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                _write(self.path, self.sample() | {"updated_at": time.time()})
            except Exception:  # noqa: BLE001 - progress reporting never stops training
                pass


def describe(st: dict[str, Any] | None) -> str:
    """One line for people: stage, epoch, fit, ETA."""
    if not st:
        return "training: never run here"
    state = st.get("state")
    if state != "running":
        return f"training: {state}" + (f" ({st['result']})" if st.get("result") else "")
    line = f"training: {st.get('stage', '?')}"
    if st.get("stage") == "train GNN":
        line += f", fit {st.get('fit', 1)}, epoch {st.get('epoch', 0)}/{st.get('epochs', '?')}"
    elif st.get("total"):
        line += f", {st.get('done', 0)}/{st['total']} {st.get('unit', '')}".rstrip()
    if st.get("eta_s") is not None:
        line += f", this step ~{int(st['eta_s'] // 60)} min {int(st['eta_s'] % 60)} s left"
    return line + f" (running {int(st.get('elapsed_s', 0) // 60)} min)"


__all__ = ["StatusWriter", "describe", "pid_path", "read_status", "running_pid", "status_path"]
