"""Issue 21, the data side, through HTTP: the journal reproduction (poison entries written while
Neo4j was unavailable, then ``graphrec serve`` started), /readyz and /metrics telling the truth,
future timestamps and reused keys refused as BAD_USER_INPUT, rerank naming unknown ids."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphrec.core.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The two entries of issue 21, as the API wrote them during fuzzing (item "50" exists here), and a
# third, ordinary one journalled after them.
ISSUE_LINES = [
    '{"dwell":null,"item":"50","key":"k-1","session":null,"ts":1796303009.9,"type":"CLICKED","user":"a","value":null}',
    '{"dwell":0.0,"item":"50","key":"k-1","session":null,"ts":1796303019.9,"type":"CLICKED","user":"b","value":-95464.0}',
    '{"dwell":null,"item":"50","key":"k-3","session":null,"ts":1796303029.9,"type":"CLICKED","user":"c","value":null}',
]
RECORD = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { key created stored } }"


@dataclass
class Served:
    url: str
    key: str
    app: Any
    settings: Settings
    journal: Path


@pytest.fixture(scope="module")
def served(neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from pydantic import SecretStr

    from api.app import create_app
    from api.auth import create_key
    from graphrec.core.graph.store import GraphStore, resolve_password
    from graphrec.core.records import ItemRow
    from graphrec.testing import tiny_graph, wipe
    from graphrec.testing.server import live_server
    from loaders.writer import GraphWriter, Source

    var = tmp_path_factory.mktemp("hostile-var")
    journal = var / "journal"
    journal.mkdir()
    (journal / "interactions.jsonl").write_text("\n".join(ISSUE_LINES) + "\n")
    with GraphStore.from_settings(neo4j_settings) as store:
        wipe(store)
        tiny_graph(store)
        GraphWriter(store, progress=False).items([(ItemRow(id="50", title="Fifty"), Source("test", 1))])
        _, key = create_key(store, ["read", "write"], "hostile")
    s = neo4j_settings.model_copy(update={
        "var_dir": var,
        "neo4j": neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))}),
        "api": neo4j_settings.api.model_copy(update={"rate_limit_per_s": 1000.0, "rate_limit_burst": 2000}),
        "engine": neo4j_settings.engine.model_copy(update={"explore_epsilon": 0.0, "request_budget_ms": 3000.0,
                                                          "source_budget_ms": 2000.0, "breaker_reset_s": 30.0})})
    app = create_app(s)
    with live_server(app) as url:
        yield Served(url, key, app, s, journal)


def _readyz(sv: Served) -> tuple[int, dict[str, Any]]:
    r = httpx.get(sv.url + "/readyz", timeout=30)
    assert "journal" in r.json(), (r.status_code, r.text)
    return r.status_code, r.json()


def _until(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := pred()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return got


def gql(sv: Served, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(sv.url + "/graphql", json={"query": query, "variables": variables},
                   headers={"Authorization": f"Bearer {sv.key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_issue_journal_replays_around_its_poison_entry(served: Served) -> None:
    """Issue 21, finding 1: the API starts on a journal whose second entry can never be written.
    The first and third land, the second is dead-lettered with its reason and counted in /metrics
    and /readyz, the breaker stays closed, and /readyz says ready and not degraded."""
    from graphrec.core.graph.store import GraphStore

    _until(lambda: _readyz(served)[1]["journal"]["pending_bytes"] == 0, 60, "the journal to be replayed")
    with GraphStore.from_settings(served.settings) as store:
        rows = store.run_text("MATCH (u:User)-[r:CLICKED]->(:Item {id: '50'}) RETURN r.key AS key, u.id AS user ORDER BY key")
    assert rows == [{"key": "k-1", "user": "a"}, {"key": "k-3", "user": "c"}]
    dead = [json.loads(x) for x in (served.journal / "dead-letter.jsonl").read_text().splitlines()]
    assert len(dead) == 1 and dead[0]["row"]["user"] == "b" and dead[0]["reason"].startswith("invalid interaction: value")
    status, ready = _readyz(served)
    assert status == 200 and ready["ready"] is True and ready["degraded"] is False, ready
    assert ready["breakers"]["neo4j"] == "closed" and ready["journal"]["dead_lettered"] == 1
    metrics = httpx.get(served.url + "/metrics", timeout=30).text
    assert "graphrec_journal_dead_letters 1.0" in metrics
    assert 'graphrec_breaker_open{store="neo4j"} 0.0' in metrics
    assert "graphrec_neo4j_reads_shed_total 0.0" in metrics  # a few requests: none refused
    # The second entry's key, sent again now: refused as the client's mistake, nothing written.
    body = gql(served, RECORD, {"i": {"userId": "b", "itemId": "50", "type": "CLICK", "key": "k-1"}})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "idempotency key" in body["errors"][0]["message"]


def test_readyz_reports_an_open_breaker_and_a_growing_backlog(served: Served) -> None:
    eng = served.app.state.graphrec["engine"]
    try:
        for _ in range(eng.neo4j_breaker.threshold):
            eng.neo4j_breaker.failure()  # as three calls that found Neo4j unavailable would
        status, ready = _readyz(served)
        assert status == 503 and ready["ready"] is False and ready["degraded"] is True
        assert "neo4j_breaker_open" in ready["degraded_reasons"] and ready["breakers"]["neo4j"] == "open"
        # Interactions journalled meanwhile (the breaker is open): the backlog grows, and says so.
        for k in range(3):
            body = gql(served, RECORD, {"i": {"userId": "d", "itemId": "up", "type": "CLICK", "key": f"grow-{k}"}})
            assert body["data"]["recordInteraction"]["stored"] == "JOURNAL", body
            time.sleep(1.0)
        _until(lambda: _readyz(served)[1]["journal"]["growing"], 10, "the backlog to be reported growing")
        assert "journal_growing" in _readyz(served)[1]["degraded_reasons"]
    finally:
        eng.neo4j_breaker.success()
    # Closed again: the backlog drains and nothing is reported degraded.
    _until(lambda: (r := _readyz(served)[1])["journal"]["pending_bytes"] == 0 and not r["degraded"], 30, "the drain")


def test_future_timestamps_and_bounded_values_are_bad_user_input(served: Served) -> None:
    """Issue 21, findings 4 and 9, on the API path."""
    body = gql(served, RECORD, {"i": {"userId": "x", "itemId": "50", "type": "VIEW", "timestamp": "2099-12-31T00:00:00Z"}})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "ts:" in body["errors"][0]["message"] and "future" in body["errors"][0]["message"]
    body = gql(served, RECORD, {"i": {"userId": "x", "itemId": "50", "type": "RATE", "value": 1e6}})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith("value: a rating must be between")


def test_rerank_names_ids_that_are_not_items(served: Served) -> None:
    body = gql(served, 'query { rerank(userId: "alice", itemIds: ["toy", "ghost", "alien"]) '
                       '{ unknownItemIds items { item { id title } } } }', {})
    data = body["data"]["rerank"]
    assert data["unknownItemIds"] == ["ghost"]
    assert {i["item"]["id"] for i in data["items"]} == {"toy", "alien"} and all(i["item"]["title"] for i in data["items"])


def test_readyz_says_degraded_while_neo4j_is_too_slow_for_the_answers(served: Served) -> None:
    """Neo4j reachable (ready) but too slow for the request budgets: the answers are degraded, and
    /readyz says so instead of "not degraded"."""
    eng = served.app.state.graphrec["engine"]
    fast = eng.cfg
    try:
        eng.cfg = fast.model_copy(update={"request_budget_ms": 0.001, "source_budget_ms": 0.001})
        for k in range(6):
            body = gql(served, "query($u: ID!) { recommendations(userId: $u, first: 3) { degraded degradedReasons } }",
                       {"u": f"slow-{k}"})
            assert "neo4j" in body["data"]["recommendations"]["degradedReasons"], body
        status, ready = _readyz(served)
        assert status == 200 and ready["ready"] is True and ready["degraded"] is True, json.dumps(ready)
        assert "answers_degraded" in ready["degraded_reasons"] and ready["answers"]["degraded_by_neo4j"] >= 6
    finally:
        eng.cfg = fast
