"""Errors a newcomer causes say what to do in one line (no stack trace)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_serve_on_a_port_in_use_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
        env["GRAPHREC_VAR_DIR"] = str(tmp_path)
        out = subprocess.run([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    said = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1
    assert f"port {port} is in use" in said and "--port" in said and "Traceback" not in said


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(tmp_path), "COLUMNS": "500", **extra})
    return env


def _said(out: subprocess.CompletedProcess[str]) -> str:
    return " ".join((out.stdout + out.stderr).split())


def test_neo4j_start_without_java_says_what_to_do(tmp_path: Path) -> None:
    """Java absent (not on PATH, no JAVA_HOME): one line naming the Java needed and how to get it."""
    from graphrec.testing.server import free_port

    empty = tmp_path / "bin"
    empty.mkdir()
    env = _env(tmp_path / "var", PATH=str(empty), GRAPHREC_NEO4J_BOLT_PORT=str(free_port()),
               GRAPHREC_NEO4J_HTTP_PORT=str(free_port()))
    env.pop("JAVA_HOME", None)
    out = subprocess.run([sys.executable, "-m", "graphrec.cli", "neo4j", "start"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    said = _said(out)
    assert out.returncode == 1 and "Traceback" not in said, said
    assert "Java 17 or newer is needed" in said and "set JAVA_HOME, or install it: apt-get install openjdk-17-jre-headless" in said


@pytest.mark.integration
def test_a_wrong_password_in_the_environment_says_what_to_do(neo4j_settings: Settings, tmp_path: Path) -> None:
    """GRAPHREC_NEO4J_PASSWORD that the running server refuses: `graphrec stats` and `graphrec
    serve` (which used to start and answer degraded) stop with one line naming where the
    password came from and what to do."""
    from graphrec.testing.server import free_port

    n = neo4j_settings.neo4j
    env = _env(neo4j_settings.var_dir, GRAPHREC_NEO4J_BOLT_PORT=str(n.bolt_port), GRAPHREC_NEO4J_HTTP_PORT=str(n.http_port),
               GRAPHREC_NEO4J_PASSWORD="not-the-password")
    for cmd in (["stats"], ["serve", "--port", str(free_port())]):
        out = subprocess.run([sys.executable, "-m", "graphrec.cli", *cmd], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        said = _said(out)
        assert out.returncode == 1 and "Traceback" not in said, (cmd, said)
        assert "refused user 'neo4j' with the password from GRAPHREC_NEO4J_PASSWORD" in said, (cmd, said)
        assert "unset it to use the password graphrec generated" in said, (cmd, said)


def test_a_second_make_demo_while_the_first_loads_says_what_to_do(tmp_path: Path) -> None:
    """The steps of `make demo` that write the graph (load movielens, refresh-neighbours) run one
    at a time: a second demo started while the first is at one of them stops with one line (the
    port check covers a first demo that already serves: test above)."""
    import fcntl

    env = _env(tmp_path)
    for name, cmd in (("load-movielens", ["load", "movielens"]), ("refresh-neighbours", ["refresh-neighbours"])):
        lock = tmp_path / "locks" / f"{name}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as held:  # the first demo, at that step
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.write("pid 4242 since 20:00:00")
            held.flush()
            out = subprocess.run([sys.executable, "-m", "graphrec.cli", *cmd], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        said = _said(out)
        assert out.returncode == 1 and "Traceback" not in said, (cmd, said)
        assert f"`graphrec {' '.join(cmd)}` is already running (pid 4242 since 20:00:00; another `make demo`?)" in said, said
        assert "wait for it to finish, or stop it with Ctrl-C" in said
