"""The code base stays clean under the project's ruff rules and mypy (pyproject.toml; the scope of
``make lint``): the suite fails on a new error rather than leaving it to whoever runs the linters next."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff is not None, "ruff is not installed (make setup installs the dev extras)"
    res = subprocess.run([ruff, "check", "--output-format", "concise", "graphrec", "gnn", "api", "loaders", "bench", "tests"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    assert mypy is not None, "mypy is not installed (make setup installs the dev extras)"
    res = subprocess.run([mypy, "graphrec", "loaders"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
