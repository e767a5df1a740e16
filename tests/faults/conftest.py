"""The stack that fault tests break: a Neo4j of their own, API processes, real HTTP.

The Neo4j here is NOT the session's (``tests/conftest.py``, which other tests share): it lives
under ``var/test-faults`` on free ports, and the tests stop, SIGKILL and restart it. It is started
once for the faults run; every test gets it running and loaded with a small synthetic catalogue
(``stack``), and it is stopped at the end.

API processes are real: ``uvicorn api.app:app_factory --factory`` in a subprocess configured
through ``GRAPHREC_*`` variables (what an operator would set), so a test can SIGKILL one
(``tests/faults/harness.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphrec.core.config import Settings
from graphrec.testing import own_neo4j, wipe
from tests.faults.harness import FAULTS_VAR, Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/faults carries the ``faults`` marker (``-m faults`` runs it alone)."""
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.faults)


def make_stack(neo4j: Settings, name: str) -> Stack:
    """The faults Neo4j running and loaded afresh, with a new var dir ``var/test-faults/<name>``."""
    from api.auth import create_key
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.neo4j_server import Neo4jServer

    server = Neo4jServer(neo4j)
    var = FAULTS_VAR / name
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    if server.pid() is None:
        server.start()
    with GraphStore.from_settings(neo4j) as store:
        _load_catalogue(store)
        _, key = create_key(store, ["read", "write"], "faults")
    return Stack(neo4j.model_copy(update={"var_dir": var}), server, key, var)


def close_stack(st: Stack) -> None:
    """Stop the test's API processes; leave the Neo4j running for the next test."""
    for p in st.apis:
        p.stop()
    if st.server.pid() is None:
        st.server.start()


def _load_catalogue(store: Any) -> None:
    from graphrec.core.graph import schema
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec
    from loaders.writer import GraphWriter

    wipe(store)
    schema.apply(store)
    cat = SyntheticCatalog(SyntheticSpec(users=200, items=150, interactions=5000, categories=6, seed=11))
    w = GraphWriter(store, batch_size=5000, on_error="stop", progress=False)
    w.users(cat.users())
    w.items(cat.items())
    w.interactions(cat.interactions())


@pytest.fixture(scope="session")
def fault_neo4j() -> Iterator[Settings]:
    """A Neo4j for the faults suite only (stopped and killed by it); stopped at the end."""
    with own_neo4j(FAULTS_VAR / "neo4j-home") as s:
        yield s


@pytest.fixture()
def stack(fault_neo4j: Settings, request: pytest.FixtureRequest) -> Iterator[Stack]:
    st = make_stack(fault_neo4j, request.node.name)
    try:
        yield st
    finally:
        close_stack(st)
