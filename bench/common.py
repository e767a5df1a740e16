"""Shared helpers for benchmarks: a scratch Neo4j, machine facts, JSON reports."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphrec.core.config import Settings


def machine() -> dict[str, Any]:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``xs``; NaN when empty."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (an API and its workers), MB."""
    import psutil

    try:
        p = psutil.Process(pid)
        return round(sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20, 1)
    except psutil.Error:
        return float("nan")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (benchmarks run without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: Path, dpi: int = 120) -> None:
    """Lay out, write and close a benchmark's figure, and say where it is."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    print(f"plot: {out}")


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), **report}
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"report: {out}")


def tree_cpu_s(pid: int | None, children: bool = True) -> float:
    """User + system CPU seconds of a process and (unless ``children`` is false) its children."""
    import psutil

    if not pid:
        return float("nan")
    try:
        p = psutil.Process(pid)
        return sum(sum(x.cpu_times()[:2]) for x in [p, *(p.children(recursive=True) if children else [])])
    except psutil.Error:
        return float("nan")


@contextmanager
def scratch_neo4j(settings: Settings, name: str = "bench", bolt_port: int = 7688, http_port: int = 7475,
                  heap: str = "4g", pagecache: str = "4g") -> Iterator[Settings]:
    """A fresh, empty Neo4j under ``var/<name>`` on its own ports, stopped afterwards.

    Benchmarks never touch the demo database."""
    from graphrec.core.neo4j_server import Neo4jServer

    s = settings.model_copy(update={
        "var_dir": settings.var_dir / name,
        "neo4j": settings.neo4j.model_copy(update={"uri": None, "password": None, "bolt_port": bolt_port,
                                                    "http_port": http_port, "heap": heap, "pagecache": pagecache}),
    })
    server = Neo4jServer(s)
    server.stop()
    shutil.rmtree(server.home / "data", ignore_errors=True)
    server.start()
    try:
        yield s
    finally:
        server.stop()
