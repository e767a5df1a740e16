"""The code base stays clean under the project's ruff rules (pyproject.toml): the suite fails on
a new lint error rather than leaving it to whoever runs ``make lint`` next."""

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
