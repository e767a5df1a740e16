"""What ships is self-contained: a wheel built from the checkout, installed into a fresh
virtualenv outside it, runs the CLI and loads queries, the Neo4j pom and the static pages from
its own package data."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib.resources as r, graphrec
from graphrec.core import cypher
from graphrec.core.neo4j_server import POM
from api.pages import static_file
qs = cypher.all_queries()
assert qs and cypher.load("recs/popular").params, "no queries"
assert POM.is_file() and b"neo4j-server" in POM.read_bytes(), "no pom"
assert static_file("similar-items.js"), "no static files"
print(graphrec.__file__, len(qs))
"""


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    # Built from a copy of what the sdist would hold, so the build leaves nothing in the checkout.
    src = tmp_path / "src"
    for name in ("graphrec", "gnn", "api", "loaders", "cypher"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(src)], check=True, timeout=600, cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    # A newcomer's install prints no wall of packaging warnings (namespace packages of query files
    # left out of `packages`, a license table).
    assert "Warning" not in build.stdout + build.stderr, build.stderr[-2000:]
    (wheel,) = dist.glob("graphrec-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", str(wheel)], check=True, timeout=600, cwd=tmp_path, env=env)
    # Then it borrows this environment's third-party packages (a .pth line adds them to its path
    # after its own; the .pth files there, such as the checkout's editable install, are not run).
    (sp,) = (venv / "lib").glob("python3*/site-packages")
    (sp / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env["GRAPHREC_VAR_DIR"] = str(tmp_path / "var")
    help_ = subprocess.run([str(venv / "bin" / "graphrec"), "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0, help_.stderr
    assert "neo4j" in help_.stdout and "bench" not in help_.stdout.split("Commands")[-1]
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    where, n = probe.stdout.split()
    assert Path(where).is_relative_to(venv) and int(n) > 50
