"""Shared fixtures. Integration tests use a real Neo4j that this session starts under
``var/test`` on ports 17687/17474 (isolated from the demo database) and stops at the end
(``GRAPHREC_TEST_KEEP_NEO4J=1`` keeps it running between runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from graphrec.core.config import Settings
from graphrec.testing import isolated_settings, wipe

if TYPE_CHECKING:
    from graphrec.core.graph.store import GraphStore


@pytest.fixture(scope="session")
def neo4j_settings() -> Iterator[Settings]:
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.neo4j_server import Neo4jServer

    s = isolated_settings()
    server = Neo4jServer(s)
    server.start()
    with GraphStore.from_settings(s) as store:
        wipe(store)
        schema.apply(store)
    yield s
    if not os.environ.get("GRAPHREC_TEST_KEEP_NEO4J"):
        server.stop()


@pytest.fixture()
def store(neo4j_settings: Settings) -> Iterator[GraphStore]:
    """A store on an EMPTY test database (wiped before each test)."""
    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(neo4j_settings) as st:
        wipe(st)
        yield st
