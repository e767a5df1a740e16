"""Errors a newcomer causes say what to do in one line (no stack trace)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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
