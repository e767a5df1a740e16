"""Run the real ASGI app on a free loopback port in a background thread (for HTTP and browser tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any, timeout: float = 60.0, port: int | None = None, **options: Any) -> Iterator[str]:
    """``options`` are passed to ``uvicorn.Config`` (``http=...`` for the protocol ``graphrec serve`` uses)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def serve_process(settings: Any, var_dir: Path, workers: int = 1, env: dict[str, str] | None = None,
                  timeout: float = 120.0) -> Iterator[tuple[str, int]]:
    """``graphrec serve`` as a real process (its own session) against the Neo4j of ``settings``,
    with anonymous reads on, the settings' start-up warm-up (the test settings have none), the
    state under ``var_dir`` and ``env`` (``GRAPHREC_*`` overrides) on top; yields (base URL, pid) once ``/readyz`` answers 200, and stops it at the end."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from graphrec.core.graph.store import resolve_password

    n = settings.neo4j
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHREC_", "PROMETHEUS_"))}
    full.update({"GRAPHREC_VAR_DIR": str(var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                 "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port), "GRAPHREC_NEO4J_PASSWORD": resolve_password(settings),
                 "GRAPHREC_API_ANONYMOUS_READ": "true", "GRAPHREC_ENGINE_WARM_UP_S": str(settings.engine.warm_up_s),
                 "GRAPHREC_ENGINE_WARM_UP_COMMITS": str(settings.engine.warm_up_commits), **(env or {})})
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = var_dir / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers", str(workers)],
                                env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, log_path.read_text()[-2000:]
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the API did not become ready: " + log_path.read_text()[-2000:]
                time.sleep(0.3)
            yield url, proc.pid
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
