"""Helpers of the fault-injection tests (fixtures in ``conftest.py``): API processes, a GraphQL
client that records what it saw, and the :class:`Stack` under test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from graphrec.core.config import Settings
from graphrec.testing.server import free_port

ROOT = Path(__file__).resolve().parents[2]
FAULTS_VAR = ROOT / "var" / "test-faults"

RECOMMEND = ("query($u: ID!) { recommendations(userId: $u, first: 5) "
             "{ degraded degradedReasons items { item { id title } } } }")
RECORD = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { key created stored } }"


def wait_for(pred: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``pred`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {got!r})")
        time.sleep(every)


class ApiProcess:
    """One API process (uvicorn, one worker) on a free port, configured by environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ApiProcess:
        cmd = [sys.executable, "-m", "uvicorn", "api.app:app_factory", "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the API exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, "the API to answer /healthz", every=0.25)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@dataclass
class Reply:
    """One GraphQL call as the client saw it."""

    sent: float  # monotonic, when the request was sent
    t: float  # monotonic, when the answer (or the failure) arrived
    status: int  # HTTP status; 0: no HTTP answer (connection refused or reset, timeout)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.body.get("errors") and self.body.get("data") is not None


async def gql(client: httpx.AsyncClient, url: str, key: str, query: str, variables: dict[str, Any]) -> Reply:
    sent = time.monotonic()
    try:
        r = await client.post(f"{url}/graphql", json={"query": query, "variables": variables},
                              headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return Reply(sent, time.monotonic(), 0)
    try:
        body = r.json()
    except ValueError:
        body = {}
    return Reply(sent, time.monotonic(), r.status_code, body)


def interaction(n: int, users: int = 200, items: int = 150, prefix: str = "burst") -> dict[str, Any]:
    """The n-th interaction of a burst: a fixed user, item and key, so it can be found afterwards."""
    return {"userId": f"u{n % users}", "itemId": f"i{(n * 7) % items}", "type": "CLICK",
            "timestamp": str(1_720_000_000 + n), "key": f"{prefix}-{n}"}


@dataclass
class Stack:
    """The faults Neo4j (running, loaded) and a fresh var dir for this test's API processes."""

    settings: Settings  # var_dir: this test's dir; neo4j: the faults server, password set
    server: Any  # Neo4jServer of the faults Neo4j
    key: str  # an API key with read and write scopes
    var: Path
    apis: list[ApiProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        n = self.settings.neo4j
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
        env.update({
            "GRAPHREC_VAR_DIR": str(self.var),
            "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port), "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port),
            "GRAPHREC_NEO4J_PASSWORD": n.password.get_secret_value() if n.password else "",
            "GRAPHREC_NEO4J_CONNECTION_TIMEOUT_S": "2",
            # Budgets wide enough that a busy 2-core machine is not mistaken for a failing store,
            # and a breaker that probes a recovered store again after 1 s.
            "GRAPHREC_ENGINE_REQUEST_BUDGET_MS": "2000", "GRAPHREC_ENGINE_SOURCE_BUDGET_MS": "1500",
            "GRAPHREC_ENGINE_BREAKER_RESET_S": "1", "GRAPHREC_ENGINE_EXPLORE_EPSILON": "0",
            # The test settings' start-up warm-up (none: no test here is about it).
            "GRAPHREC_ENGINE_WARM_UP_S": str(self.settings.engine.warm_up_s),
            "GRAPHREC_API_RATE_LIMIT_PER_S": "100000", "GRAPHREC_API_RATE_LIMIT_BURST": "100000",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        })
        env.update(extra)
        return env

    def api(self, **env: str) -> ApiProcess:
        p = ApiProcess(self.env(**env), self.var / f"api-{len(self.apis)}.log")
        self.apis.append(p)
        return p.start()

    def store(self) -> Any:
        from graphrec.core.graph.store import GraphStore

        return GraphStore.from_settings(self.settings)

    def keys_found(self, prefix: str) -> list[str]:
        """Interaction keys starting with ``prefix`` in Neo4j, one entry per relationship."""
        with self.store() as st:
            rows = st.run_text("MATCH ()-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->() "
                               "WHERE r.key STARTS WITH $prefix RETURN r.key AS key", prefix=prefix)
        return [r["key"] for r in rows]

    def neo4j_up(self) -> None:
        if self.server.pid() is None:
            self.server.start()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
