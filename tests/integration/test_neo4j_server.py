"""The managed Neo4j: loopback only, auth on with a generated 0600 password, Browser at /browser."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import httpx
import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from graphrec.core.config import Settings
from graphrec.core.errors import MissingToolError
from graphrec.core.neo4j_server import Neo4jServer, find_java

pytestmark = pytest.mark.integration


def _non_loopback_ip() -> str | None:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
        ip = s.getsockname()[0]
        s.close()
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


def test_status_browser_and_password_file(neo4j_settings: Settings) -> None:
    server = Neo4jServer(neo4j_settings)
    st = server.status()
    assert st.running and st.bolt and st.pid
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    r = httpx.get(server.browser_url, timeout=10)
    assert r.status_code == 200 and "Neo4j Browser" in r.text
    conf = (server.home / "conf" / "neo4j.conf").read_text()
    assert "dbms.usage_report.enabled=false" in conf and "dbms.security.auth_enabled=true" in conf


def test_auth_is_required(neo4j_settings: Settings) -> None:
    uri = neo4j_settings.neo4j.effective_uri
    for auth in (("neo4j", "neo4j"), ("neo4j", "wrong-password")):
        with GraphDatabase.driver(uri, auth=auth) as d, pytest.raises(AuthError):
            d.verify_connectivity()


def test_listens_on_loopback_only(neo4j_settings: Settings) -> None:
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this machine")
    for port in (neo4j_settings.neo4j.bolt_port, neo4j_settings.neo4j.http_port):
        with pytest.raises(OSError):
            socket.create_connection((ip, port), timeout=1).close()


def test_missing_java_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingToolError, match="Java 17"):
        find_java()


def test_calendar_releases_need_java_21_and_their_own_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphrec.core.neo4j_server import entry_point, required_java

    assert required_java("5.26.30") == 17 and required_java("2026.08.1") == 21
    assert entry_point("5.26.30") == "org.neo4j.server.CommunityEntryPoint"
    assert entry_point("2025.10.1") == "org.neo4j.server.Neo4jCommunity"
    java17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if not (java17 / "bin" / "java").exists():
        pytest.skip("no OpenJDK 17 here")
    monkeypatch.setenv("JAVA_HOME", str(java17))
    monkeypatch.setenv("PATH", str(java17 / "bin"))
    with pytest.raises(MissingToolError, match="Java 21 or newer is needed to run Neo4j 2026.08.1.*is Java 17"):
        find_java("2026.08.1")


def test_external_uri_starts_nothing(neo4j_settings: Settings, tmp_path) -> None:  # noqa: ANN001
    from graphrec.core.graph.store import resolve_password

    pw = resolve_password(neo4j_settings)
    ext = neo4j_settings.model_copy(update={
        "var_dir": tmp_path,
        "neo4j": neo4j_settings.neo4j.model_copy(update={
            "uri": f"neo4j://127.0.0.1:{neo4j_settings.neo4j.bolt_port}",
            "password": __import__("pydantic").SecretStr(pw)}),
    })
    server = Neo4jServer(ext)
    st = server.start()
    assert not st.managed and st.bolt  # answered by the existing server, via a routing URI
    assert not (tmp_path / "neo4j").exists()  # nothing provisioned locally


def test_a_password_starting_with_a_dash_is_set(neo4j_settings: Settings, tmp_path) -> None:  # noqa: ANN001
    """Generated passwords (secrets.token_urlsafe) start with "-" one time in 64; neo4j-admin read
    such a password as an option and the server could never start (seen in a CI run)."""
    from pydantic import SecretStr

    s = neo4j_settings.model_copy(update={
        "var_dir": tmp_path,
        "neo4j": neo4j_settings.neo4j.model_copy(update={"password": SecretStr("-a8zkIOVjlXd4eb0Rp1jiD0A")}),
    })
    server = Neo4jServer(s)
    server.provision()  # the jars are cached by the session's server
    server.write_config()
    server._set_initial_password(find_java())
    assert (server.home / "data" / "dbms" / "auth.ini").exists()
