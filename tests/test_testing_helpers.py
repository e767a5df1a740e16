"""graphrec.testing's choice of the test server's ports: a session reuses the server of its var on
the ports it was started with."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from graphrec.testing import _running_ports, isolated_settings


def _var(tmp: Path, pid: int, bolt: int, http: int) -> Path:
    home = tmp / "neo4j"
    (home / "run").mkdir(parents=True)
    (home / "conf").mkdir()
    (home / "run" / "neo4j.pid").write_text(str(pid))
    (home / "conf" / "neo4j.conf").write_text(
        f"server.default_listen_address=127.0.0.1\nserver.bolt.listen_address=127.0.0.1:{bolt}\n"
        f"server.bolt.advertised_address=127.0.0.1:{bolt}\nserver.http.listen_address=127.0.0.1:{http}\n")
    return tmp


def test_a_running_server_started_on_free_ports_is_found_on_them(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The defaults held by another checkout's server made an earlier session start ours on free
    ports; a later call must reach ours there, not the other one on the defaults (it said "Neo4j
    refused the password")."""
    var = _var(tmp_path, os.getpid(), 23456, 23457)  # a live pid stands for the running server
    assert _running_ports(var) == (23456, 23457)
    with socket.socket() as held:  # the default Bolt port taken by "another checkout"
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setenv("GRAPHREC_TEST_BOLT_PORT", str(held.getsockname()[1]))
        s = isolated_settings(var_dir=var)
    assert (s.neo4j.bolt_port, s.neo4j.http_port) == (23456, 23457)


def test_a_stale_pid_file_is_not_a_running_server(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # beyond pid_max on this kind of machine: no such process
    assert _running_ports(_var(tmp_path, dead, 23456, 23457)) is None
