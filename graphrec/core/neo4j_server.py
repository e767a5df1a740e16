"""A local Neo4j Community server, resolved from Maven Central and run under ``var/``.

``graphrec/core/neo4j-pom.xml`` (package data) names the server jars (``org.neo4j:neo4j``, ``org.neo4j.app:neo4j-server``,
``org.neo4j.client:neo4j-browser``); Maven copies them into the cache directory outside the
repo, and the server runs as ``java -cp <jars> org.neo4j.server.CommunityEntryPoint``.

Layout under ``<var_dir>/neo4j``: ``conf/neo4j.conf`` (written on every start), ``data/``,
``logs/`` (``console.log`` is the JVM's output), ``run/neo4j.pid``, ``password`` (0600, only
when graphrec generated it). The server listens on loopback only, with authentication on and
usage reporting off.

When ``GRAPHREC_NEO4J_URI`` names another server, nothing here is used.

One module over 400 lines: the steps of one server's life share its paths, its process handling
and its error translation; split, each part would import the others.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from graphrec.core.config import Settings
from graphrec.core.errors import MissingToolError, ServerError
from graphrec.core.graph.credentials import neo4j_password, password_file
from graphrec.core.graph.store import GraphStore

#: The pom that resolves the Neo4j server jars from Maven Central (package data of graphrec.core).
POM = resources.files("graphrec.core") / "neo4j-pom.xml"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"  # 5.x
CALENDAR_ENTRY_POINT = "org.neo4j.server.Neo4jCommunity"  # calendar releases (2025.01 and later)
ADMIN_TOOL = "org.neo4j.cli.AdminTool"


def calendar_release(version: str) -> bool:
    """Calendar releases (2025.01 and later) follow the 5.x line: another main class, Java 21+."""
    return int(version.split(".", 1)[0]) >= 2025


def entry_point(version: str) -> str:
    """The server's main class: 5.x names it ``CommunityEntryPoint``, calendar releases ``Neo4jCommunity``."""
    return CALENDAR_ENTRY_POINT if calendar_release(version) else ENTRY_POINT


@dataclass
class Status:
    managed: bool
    uri: str
    running: bool
    pid: int | None
    bolt: bool
    browser_url: str | None

    def lines(self) -> list[str]:
        if not self.managed:
            return [f"external Neo4j at {self.uri} (not managed by graphrec)", f"bolt reachable: {self.bolt}"]
        return [
            f"local Neo4j: {'running' if self.running else 'stopped'}" + (f" (pid {self.pid})" if self.pid else ""),
            f"bolt: {self.uri} {'answering' if self.bolt else 'not answering'}",
            f"browser: {self.browser_url}",
        ]


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def required_java(version: str) -> int:
    """The oldest Java a Neo4j release runs on: 17 for 5.x, 21 for calendar releases."""
    return 21 if calendar_release(version) else 17


def find_java(version: str = "5.26") -> Path:
    """The ``java`` to run Neo4j ``version`` with, from ``JAVA_HOME`` or ``PATH``."""
    need = required_java(version)
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    which = shutil.which("java")
    if which:
        candidates.append(Path(which))
    seen = []
    for java in candidates:
        if java.is_file():
            out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
            m = re.search(r'version "(\d+)', out)
            if m and int(m.group(1)) >= need:
                return java
            seen.append(f"{java} is Java {m.group(1) if m else '?'}")
    raise MissingToolError(
        f"Java {need} or newer is needed to run Neo4j {version} and was not found"
        + (f" ({'; '.join(seen)})" if seen else "")
        + f" (set JAVA_HOME, or install it: apt-get install openjdk-{need}-jre-headless)"
    )


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingToolError(
            "Maven (mvn) is needed to resolve Neo4j from Maven Central and was not found "
            "(install it: apt-get install maven)"
        )
    return mvn


class Neo4jServer:
    """Provision, configure, start and stop the local server described by ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.neo4j
        self.home = (settings.var_dir / "neo4j").resolve()
        self.lib = (settings.cache_dir / f"neo4j-{self.cfg.version}" / "lib").resolve()

    # -- paths -----------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return password_file(self.settings)

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"

    @property
    def browser_url(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.http_port}/browser/"

    # -- password --------------------------------------------------------------------------
    def password(self, create: bool = True) -> str:
        """The configured password, else the generated one (created with mode 0600 by ``start``)."""
        return neo4j_password(self.settings, create)

    # -- provisioning ----------------------------------------------------------------------
    def provisioned(self) -> bool:
        return (self.lib / ".complete").exists()

    def provision(self) -> None:
        """Resolve the server jars from Maven Central into the cache (once)."""
        if self.provisioned():
            return
        find_java(self.cfg.version)
        mvn = find_maven()
        self.lib.mkdir(parents=True, exist_ok=True)
        with resources.as_file(POM) as pom:
            cmd = [
                mvn, "-q", "-B", "-f", str(pom),
                f"-Dneo4j.version={self.cfg.version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.lib}",
                "-DincludeScope=runtime",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServerError(f"Maven could not resolve Neo4j {self.cfg.version}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        (self.lib / ".complete").write_text(self.cfg.version)

    def write_config(self) -> Path:
        conf_dir = self.home / "conf"
        for d in ("conf", "data", "logs", "run", "import", "plugins"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        c = self.cfg
        lines = [
            "# Written by graphrec on every start; edit graphrec's config instead.",
            f"server.default_listen_address={c.host}",
            f"server.default_advertised_address={c.host}",
            f"server.bolt.listen_address={c.host}:{c.bolt_port}",
            f"server.bolt.advertised_address={c.host}:{c.bolt_port}",
            f"server.http.listen_address={c.host}:{c.http_port}",
            f"server.http.advertised_address={c.host}:{c.http_port}",
            "server.https.enabled=false",
            f"server.directories.data={self.home / 'data'}",
            f"server.directories.logs={self.home / 'logs'}",
            f"server.directories.run={self.home / 'run'}",
            f"server.directories.import={self.home / 'import'}",
            f"server.directories.plugins={self.home / 'plugins'}",
            f"server.memory.pagecache.size={c.pagecache}",
            f"server.memory.heap.max_size={c.heap}",
            "dbms.security.auth_enabled=true",
            "dbms.usage_report.enabled=false",
            "server.bolt.telemetry.enabled=false",
            *self.browser_config(),
            "dbms.transaction.timeout=10m",
            "db.logs.query.enabled=OFF",
        ]
        path = conf_dir / "neo4j.conf"
        path.write_text("\n".join(line for line in lines if line) + "\n")
        return path

    def browser_config(self) -> list[str]:
        """Neo4j Browser: no product-usage collection or banner, nothing fetched from the internet;
        on connect it applies graphrec's style sheet (items captioned by title, users by id, tags and
        categories by name) and opens the guide, both served by graphrec's API (api/pages.py)."""
        api = self.settings.api
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
        base = f"http://{host}:{api.port}"
        # The Browser's page loads its analytics and feedback scripts and web fonts from the
        # internet whatever the settings say, and no 5.26 setting stops the requests: the bundled
        # Browser (5.24) treats outgoing connections as allowed on Community edition whatever
        # browser.allow_outgoing_connections says (shouldAllowOutgoingConnections; 5.26 does not
        # declare that key anyway), and its web fonts are a CSS @import in its bundle. This
        # policy (Neo4j's default minus those hosts) makes Chromium refuse them before any
        # connection is made; Chromium logs each refusal as a console error.
        csp = ("default-src 'self'; script-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "font-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; "
               f"connect-src 'self' ws://{host}:* http://{host}:*")
        return [
            "client.allow_telemetry=false",
            f"dbms.security.http_static_content_security_policy_header={csp}",
            # Remote guides and style sheets only from here. 5.26 declares this key by its old
            # name, and has no browser.allow_outgoing_connections: unknown keys fail its strict
            # config validation.
            f"browser.remote_content_hostname_whitelist={host}",
            f"browser.post_connect_cmd=play {base}/guide; style {base}/browser/style.grass",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.home / "conf")
        return env

    def _set_initial_password(self, java: Path) -> None:
        if (self.home / "data" / "dbms" / "auth.ini").exists():
            return
        # "--" ends the options: a password starting with "-" (token_urlsafe makes one in 64) was
        # read as an unknown option, and the server could never start.
        proc = subprocess.run(
            [str(java), "-cp", f"{self.lib}/*", ADMIN_TOOL, "dbms", "set-initial-password", "--", self.password()],
            capture_output=True, text=True, env=self._env(),
        )
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip().splitlines()[:1]
            raise ServerError("could not set the initial Neo4j password (neo4j-admin failed"
                              + (f": {said[0][:200]})" if said else ")"))

    # -- lifecycle -------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # A zombie or a recycled pid is not our server.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if entry_point(self.cfg.version).encode() not in cmdline:
                return None
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return None
        except OSError:
            pass
        return pid

    def start(self, wait: bool = True) -> Status:
        if not self.cfg.managed:
            return self.status()
        if self.pid() is not None:
            if wait:
                self.wait_for_bolt()
            return self.status()
        if _port_open(self.cfg.host, self.cfg.bolt_port):
            raise ServerError(
                f"port {self.cfg.bolt_port} is already taken by another process; "
                "stop it or set GRAPHREC_NEO4J_BOLT_PORT"
            )
        java = find_java(self.cfg.version)
        self.provision()
        self.write_config()
        self.password()
        self._set_initial_password(java)
        cmd = [
            str(java),
            f"-Xms{self.cfg.heap}", f"-Xmx{self.cfg.heap}",
            "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-XX:+AlwaysPreTouch",
            "-XX:+UnlockDiagnosticVMOptions", "-XX:+DebugNonSafepoints",
            "-Djdk.tls.ephemeralDHKeySize=2048", "-Dlog4j2.disable.jmx=true",
            "-cp", f"{self.lib}/*",
            entry_point(self.cfg.version), f"--home-dir={self.home}", f"--config-dir={self.home / 'conf'}",
        ]
        log = open(self.console_log, "ab")
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self._env(), start_new_session=True, cwd=self.home,
        )
        self.pid_file.write_text(str(proc.pid))
        if wait:
            self.wait_for_bolt(proc)
        return self.status()

    def import_full(self, options: list[str], log: Path, on_stage: Callable[[str], None] | None = None) -> None:
        """``neo4j-admin database import full`` into the configured database, which it REPLACES
        (``--overwrite-destination``): the caller checks that it holds nothing to lose. The
        server must be stopped (Community runs one user database and cannot stop it alone). The
        tool's output goes to ``log``; ``on_stage`` gets its stage lines ("(1/4) Node import")."""
        if self.pid() is not None:
            raise ServerError("the Neo4j server must be stopped for an import")
        java = find_java(self.cfg.version)
        self.provision()
        self.write_config()
        cmd = [str(java), f"-Xmx{self.cfg.heap}", "-XX:+ExitOnOutOfMemoryError", "-cp", f"{self.lib}/*",
               ADMIN_TOOL, "database", "import", "full", self.cfg.database, "--overwrite-destination=true",
               *options]
        log.parent.mkdir(parents=True, exist_ok=True)
        last: list[str] = []
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, env=self._env(), cwd=self.home)
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                text = line.strip()
                if text and not text.startswith(("at ", ".", "-")):
                    last = [*last[-4:], text]
                if on_stage is not None and re.match(r"^\(\d+/\d+\) ", text):
                    on_stage(text)
            rc = proc.wait()
        if rc != 0:
            said = "; ".join(t[:300] for t in last)
            raise ServerError(f"neo4j-admin database import failed (exit {rc}): {said} (whole output: {log})")

    def wait_for_bolt(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.cfg.start_timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerError(
                    f"Neo4j exited with code {proc.returncode} while starting; last lines of {self.console_log}:\n"
                    + self._tail()
                )
            if _port_open(self.cfg.host, self.cfg.bolt_port) and self._bolt_ready():
                return
            time.sleep(0.5)
        raise ServerError(
            f"Neo4j did not answer on bolt://{self.cfg.host}:{self.cfg.bolt_port} within "
            f"{self.cfg.start_timeout_s:.0f}s; see {self.console_log}:\n" + self._tail()
        )

    def _bolt_ready(self) -> bool:
        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

        try:
            with GraphDatabase.driver(
                self.cfg.effective_uri, auth=(self.cfg.user, self.password()), connection_timeout=2
            ) as driver:
                driver.execute_query("RETURN 1", database_=self.cfg.database)
            return True
        except AuthError:
            where = ("GRAPHREC_NEO4J_PASSWORD (or neo4j.password)" if self.cfg.password is not None
                     else str(self.password_file))
            raise ServerError(
                f"Neo4j refused the password from {where}: the database under {self.home / 'data'} was "
                "initialised with another one; use that password, or stop Neo4j and delete "
                f"{self.home / 'data'} to start over (this deletes the graph)"
            ) from None
        except (ServiceUnavailable, Neo4jError, OSError):
            return False

    def _tail(self, n: int = 20) -> str:
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return "(no log)"
        return "\n".join(lines)

    def stop(self, timeout: float = 60.0, wait: bool = True) -> bool:
        """Stop the server; True when one was running. ``wait=False`` only asks it to stop (a
        later ``stop()`` waits for it, killing it after ``timeout``)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not wait:
            return True
        if not self._wait_exited(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._wait_exited(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the server (fault-injection tests); returns once it has exited and freed its ports."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._wait_exited(pid, 10.0)

    def _wait_exited(self, pid: int, timeout: float) -> bool:
        """Wait until ``pid`` is gone and its ports are closed. A dying JVM releases its memory
        (and with it ``/proc/<pid>/cmdline``, which :meth:`pid` checks) before it closes its
        sockets, so "no pid" alone does not mean the ports can be bound again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
            if not _running(pid) and not _port_open(self.cfg.host, self.cfg.bolt_port) \
                    and not _port_open(self.cfg.host, self.cfg.http_port):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                return True
            time.sleep(0.1)
        return False

    def status(self) -> Status:
        if not self.cfg.managed:
            try:
                with GraphStore.from_settings(self.settings) as store:
                    ok = store.ping()
            except Exception:  # noqa: BLE001 - status reports, never raises
                ok = False
            return Status(False, self.cfg.effective_uri, ok, None, ok, None)
        pid = self.pid()
        bolt = pid is not None and _port_open(self.cfg.host, self.cfg.bolt_port)
        return Status(True, self.cfg.effective_uri, pid is not None, pid, bolt, self.browser_url)
