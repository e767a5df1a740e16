from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api.app import create_app
from api.auth import create_key, revoke_key
from graphrec.core.config import Settings
from graphrec.testing import tiny_graph
from graphrec.testing.server import live_server


@dataclass
class Api:
    url: str
    read_key: str
    write_key: str
    revoked_key: str
    settings: Settings


@pytest.fixture(scope="module")
def api(neo4j_settings: Settings) -> Iterator[Api]:
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.graph.store import GraphStore
    from graphrec.testing import wipe

    with GraphStore.from_settings(neo4j_settings) as store:
        wipe(store)
        tiny_graph(store)
        # As `graphrec refresh-neighbours` does: the lists in the graph and as the files the API maps.
        refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False,
                index_dir=neo4j_settings.var_dir / "neighbours")
        _, read_key = create_key(store, ["read"], "test-read")
        _, write_key = create_key(store, ["read", "write"], "test-write")
        rid, revoked = create_key(store, ["read"], "test-revoked")
        revoke_key(store, rid)
    s = neo4j_settings.model_copy(update={
        # Rate and cost windows far off: the suite's requests share these keys, and a test not about
        # limits must not depend on how fast the tests before it ran (tests/api/test_hostile.py
        # tests the limits on an app of its own).
        "api": neo4j_settings.api.model_copy(update={"rate_limit_per_s": 1000.0, "rate_limit_burst": 2000,
                                                     "cost_per_window": 10**12}),
        "engine": neo4j_settings.engine.model_copy(update={"explore_epsilon": 0.0, "request_budget_ms": 3000.0,
                                                          "source_budget_ms": 2000.0})})
    with live_server(create_app(s)) as url:
        yield Api(url, read_key, write_key, revoked, s)
