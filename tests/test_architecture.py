"""The import contract (.importlinter) holds, and it would catch an import that points up a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("graphrec", "gnn", "loaders", "api", "bench", "cypher")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    cmd = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(ROOT / ".importlinter"), "--no-cache"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_layers_point_one_way() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "line", "expected"), [
    # the domain reaching up into the serving engine
    ("graphrec/core/errors.py", "import graphrec.engine.catalog", "graphrec.core is not allowed to import graphrec.engine"),
    # a training job reaching sideways into serving
    ("gnn/evaluate.py", "import graphrec.engine.catalog", "gnn is not allowed to import graphrec.engine"),
    # the API reaching past the engine into a training job or a loader (the layers alone allow it:
    # the forbidden contract "api" does not)
    ("api/schema.py", "import gnn.split", "api is not allowed to import gnn"),
    ("api/auth.py", "import loaders.writer", "api is not allowed to import loaders"),
])
def test_a_planted_upward_import_breaks_the_contract(tmp_path: Path, module: str, line: str, expected: str) -> None:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "reports"))
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # planted\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert expected in out.stdout, out.stdout
