"""The GraphQL contract through HTTP against the live app, the real engine and the test Neo4j."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def gql(api: Any, query: str, variables: dict | None = None, key: str | None = "read", **kw: Any) -> httpx.Response:
    headers = {}
    if key:
        headers["Authorization"] = "Bearer " + {"read": api.read_key, "write": api.write_key, "revoked": api.revoked_key}.get(key, key)
    return httpx.post(api.url + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=30, **kw)


def codes(r: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in r.json().get("errors") or []]


REC = """query($u: ID!, $first: Int, $f: RecommendationFilter, $c: RequestContext) {
  recommendations(userId: $u, first: $first, filter: $f, context: $c) {
    degraded degradedReasons modelVersion requestId items { rank score sources reason item { id title categories tags available popularity } } } }"""


def test_recommendations_contract(api: Any) -> None:
    r = gql(api, REC, {"u": "alice", "first": 5})
    assert r.status_code == 200, r.text
    data = r.json()["data"]["recommendations"]
    assert data["requestId"] and data["degraded"] is False, data["degradedReasons"]
    items = data["items"]
    assert items and items[0]["item"]["id"] == "alien" and items[0]["rank"] == 1
    assert "co_interaction" in items[0]["sources"] and items[0]["reason"]
    assert {"heat", "ronin"}.isdisjoint({i["item"]["id"] for i in items})
    # Cold start: unknown user is not an error; filters apply.
    r = gql(api, REC, {"u": "nobody-yet", "first": 3, "f": {"categories": ["Animation"]}})
    ids = [i["item"]["id"] for i in r.json()["data"]["recommendations"]["items"]]
    assert ids and set(ids) <= {"toy", "up"}


def test_similar_items_rerank_batch_popular_user_item_models(api: Any) -> None:
    r = gql(api, 'query { similarItems(itemId: "heat", first: 3) { items { item { id } sources } } }')
    ids = [i["item"]["id"] for i in r.json()["data"]["similarItems"]["items"]]
    assert ids and "heat" not in ids
    r = gql(api, 'query { similarItems(itemId: "ghost") { items { rank } } }')
    assert codes(r) == ["NOT_FOUND"]
    r = gql(api, 'query { rerank(userId: "alice", itemIds: ["toy", "alien", "up"]) { items { item { id } rank } } }')
    assert [i["item"]["id"] for i in r.json()["data"]["rerank"]["items"]][0] == "alien"
    r = gql(api, 'query { batchRecommendations(userIds: ["alice", "bob", "zed"], first: 2) { userId recommendations { items { item { id } } } } }')
    assert [x["userId"] for x in r.json()["data"]["batchRecommendations"]] == ["alice", "bob", "zed"]
    r = gql(api, 'query { popularItems(first: 2) { id title } p2: popularItems(category: "Animation") { id } }')
    d = r.json()["data"]
    assert d["popularItems"][0]["id"] == "alien" and {x["id"] for x in d["p2"]} == {"toy", "up"}
    r = gql(api, 'query { user(id: "bob") { id recentInteractions(first: 2) { type item { id } timestamp } '
                 'recommendations(first: 2) { items { item { id } } } } item(id: "heat") { title similar(first: 2) { item { id } } } '
                 'missing: item(id: "nope") { id } nobody: user(id: "nope") { id } modelVersions { id status } }')
    d = r.json()["data"]
    assert [x["item"]["id"] for x in d["user"]["recentInteractions"]] == ["alien", "ronin"]
    assert d["user"]["recentInteractions"][0]["type"] == "PURCHASE"
    assert d["item"]["title"] == "Heat" and d["missing"] is None and d["nobody"] is None
    assert isinstance(d["modelVersions"], list)


def test_mutations_need_write_scope_and_take_effect(api: Any) -> None:
    m = 'mutation($i: InteractionInput!) { recordInteraction(input: $i) { key created stored } }'
    v = {"i": {"userId": "carol", "itemId": "alien", "type": "CLICK", "key": "t-click-1"}}
    assert codes(gql(api, m, v, key="read")) == ["FORBIDDEN"]
    r = gql(api, m, v, key="write")
    assert r.json()["data"]["recordInteraction"] == {"key": "t-click-1", "created": True, "stored": "DIRECT"}
    assert gql(api, m, v, key="write").json()["data"]["recordInteraction"]["created"] is False  # idempotent
    recs = gql(api, REC, {"u": "carol", "first": 10}).json()["data"]["recommendations"]["items"]
    assert "alien" not in [i["item"]["id"] for i in recs]  # the very next request reflects the click
    bad = gql(api, m, {"i": {"userId": "carol", "itemId": "ghost", "type": "CLICK"}}, key="write")
    assert codes(bad) == ["NOT_FOUND"]
    bad = gql(api, m, {"i": {"userId": "carol", "itemId": "alien", "type": "RATE"}}, key="write")
    assert codes(bad) == ["BAD_USER_INPUT"]  # a rating needs a value
    bad = gql(api, m, {"i": {"userId": "carol", "itemId": "alien", "type": "VIEW", "timestamp": "yesterday"}}, key="write")
    assert codes(bad) == ["BAD_USER_INPUT"] and "timestamp" in bad.json()["errors"][0]["message"]
    r = gql(api, 'mutation { upsertItem(input: {id: "x`\\"); MATCH (n) DETACH DELETE n //", title: "Evil", categories: ["Drama"]}) { id title categories } }', key="write")
    assert r.json()["data"]["upsertItem"]["title"] == "Evil"
    r = gql(api, 'mutation { upsertUser(input: {id: "newbie", attributes: {age: 30}}) { id attributes } }', key="write")
    assert r.json()["data"]["upsertUser"] == {"id": "newbie", "attributes": {"age": 30}}


def test_auth_limits_and_errors(api: Any) -> None:
    q = 'query { popularItems(first: 1) { id } }'
    assert gql(api, q, key=None).status_code == 401 and codes(gql(api, q, key=None)) == ["UNAUTHENTICATED"]
    assert codes(gql(api, q, key="revoked")) == ["UNAUTHENTICATED"]
    assert codes(gql(api, q, key="grk_nope_nope")) == ["UNAUTHENTICATED"]
    assert codes(gql(api, 'query { popularItems(first: 101) { id } }')) == ["BAD_USER_INPUT"]
    assert codes(gql(api, 'query { popularItems(first: -1) { id } }')) == ["BAD_USER_INPUT"]
    ids = ", ".join(f'"u{k}"' for k in range(1001))
    assert codes(gql(api, f'query {{ batchRecommendations(userIds: [{ids}]) {{ userId }} }}')) == ["BAD_USER_INPUT"]
    assert codes(gql(api, 'query { recommendations(userId: "a", surface: SIDEWAYS) { requestId } }')) == ["BAD_USER_INPUT"]
    assert codes(gql(api, 'query { recommendations(userId: "a" { requestId } }')) == ["BAD_USER_INPUT"]
    deep = 'query { item(id: "heat") { similar { item { similar { item { similar { item { similar { item { similar { item { id } } } } } } } } } } } }'
    assert codes(gql(api, deep)) == ["BAD_USER_INPUT"]
    bomb = "query { " + " ".join(f"a{k}: popularItems(first: 1) {{ id }}" for k in range(30)) + " }"
    assert codes(gql(api, bomb)) == ["BAD_USER_INPUT"]
    huge = httpx.post(api.url + "/graphql", content=b'{"query": "' + b"a" * 300_000 + b'"}',
                      headers={"Authorization": "Bearer " + api.read_key, "Content-Type": "application/json"})
    assert huge.status_code == 413
    r = gql(api, 'query { item(id: "heat") { title } }')
    assert "Traceback" not in r.text and "neo4j" not in r.text.lower()


def test_rate_limit(api: Any) -> None:
    from api.app import create_app
    from api.limits import RateLimiter
    from graphrec.testing.server import live_server

    slow = api.settings.model_copy(update={"api": api.settings.api.model_copy(
        update={"rate_limit_per_s": 0.01, "rate_limit_burst": 2})})
    q = 'query { popularItems(first: 1) { id } }'
    with live_server(create_app(slow)) as url:
        post = [httpx.post(url + "/graphql", json={"query": q},
                           headers={"Authorization": "Bearer " + api.read_key}) for _ in range(3)]
        assert [r.status_code for r in post] == [200, 200, 429]
        assert codes(post[2]) == ["RATE_LIMITED"]
        got = httpx.get(url + "/graphql", params={"query": q}, headers={"Authorization": "Bearer " + api.read_key})
        assert got.status_code == 405 and codes(got) == ["METHOD_NOT_ALLOWED"]  # queries are POSTed only
        assert post[2].headers["Retry-After"] == "100"  # 1 token at 0.01/s
        other = httpx.post(url + "/graphql", json={"query": q}, headers={"Authorization": "Bearer " + api.write_key})
        assert other.status_code == 200  # the bucket is per key

    rl = RateLimiter(rate=1.0, burst=2)
    assert [rl.allow("k", now=0.0) for _ in range(3)] == [True, True, False]
    assert rl.allow("k", now=1.5) and rl.allow("other", now=0.0)


def test_overload_is_refused_at_once_with_retry_after(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past api.max_in_flight GraphQL requests in progress a worker answers 503 OVERLOADED at
    once (instead of queueing); health checks still answer, and admission resumes after."""
    import asyncio
    import threading

    from api.app import create_app
    from graphrec.engine.engine import Engine
    from graphrec.testing.server import live_server

    real = Engine.recommend

    async def slow(self: Engine, req: Any) -> Any:
        await asyncio.sleep(1.5)
        return await real(self, req)

    monkeypatch.setattr(Engine, "recommend", slow)
    one = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"max_in_flight": 1})})
    with live_server(create_app(one)) as url:
        first: list[httpx.Response] = []
        t = threading.Thread(target=lambda: first.append(httpx.post(
            url + "/graphql", json={"query": REC, "variables": {"u": "alice", "first": 2}},
            headers={"Authorization": "Bearer " + api.read_key}, timeout=30)))
        t.start()
        time.sleep(0.5)
        shed = httpx.post(url + "/graphql", json={"query": 'query { popularItems(first: 1) { id } }'},
                          headers={"Authorization": "Bearer " + api.read_key}, timeout=30)
        ready = httpx.get(url + "/readyz", timeout=30)
        t.join()
        after = httpx.post(url + "/graphql", json={"query": 'query { popularItems(first: 1) { id } }'},
                           headers={"Authorization": "Bearer " + api.read_key}, timeout=30)
        metrics = httpx.get(url + "/metrics", timeout=30).text
    assert shed.status_code == 503 and codes(shed) == ["OVERLOADED"] and shed.headers["retry-after"] == "1"
    assert ready.status_code == 200
    assert first[0].status_code == 200 and first[0].json()["data"]["recommendations"]["items"]
    assert after.status_code == 200
    assert "graphrec_requests_shed_total 1.0" in metrics


def test_operations_endpoints(api: Any) -> None:
    assert httpx.get(api.url + "/healthz").json()["status"] == "alive"
    ready = httpx.get(api.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["neo4j"] is True
    assert "ranker" in ready.json()  # whether the ranker is used, and why not
    gql(api, REC, {"u": "alice", "first": 2})
    gql(api, REC, {"u": "alice", "first": 2})  # the same request again: a result-cache hit
    gql(api, 'query { similarItems(itemId: "toy", first: 2) { items { rank } } }')
    # Labels never carry what a client chooses (operationName, aliases, unknown fields): each
    # distinct value would be a time series kept for the life of the process.
    httpx.post(api.url + "/graphql", json={"query": 'query madeUp1 { mine: popularItems(first: 1) { id } }',
                                           "operationName": "madeUp1"}, headers={"Authorization": "Bearer " + api.read_key})
    httpx.post(api.url + "/graphql", json={"query": '{ madeUp2 }'}, headers={"Authorization": "Bearer " + api.read_key})
    text = httpx.get(api.url + "/metrics").text
    assert "madeUp" not in text and "mine" not in text
    assert 'graphrec_requests_total{operation="popularItems",status="200"}' in text
    assert 'graphrec_requests_total{operation="other"' in text
    lookups = {(op, r): float(v) for op, r, v in re.findall(
        r'graphrec_result_cache_lookups_total\{operation="(\w+)",result="(\w+)"\} ([0-9.]+)', text)}
    assert lookups[("recommendations", "hit")] >= 1 and lookups[("recommendations", "miss")] >= 1
    assert lookups[("similarItems", "miss")] >= 1
    for name in ("graphrec_requests_total", "graphrec_request_seconds_bucket", "graphrec_pipeline_stage_seconds",
                 "graphrec_candidates_total", "graphrec_cache_hit_ratio", "graphrec_errors_total"):
        assert name in text
    for op in ("recommendations", "similarItems"):  # the engine's stage timings, per operation
        assert f'graphrec_pipeline_stage_seconds_count{{operation="{op}",stage="total"}}' in text
    js = httpx.get(api.url + "/widget/similar-items.js")
    assert js.status_code == 200 and "similarItems" in js.text and "javascript" in js.headers["content-type"]
    assert "graphrec-similar" in httpx.get(api.url + "/demo").text


def test_no_n_plus_one(api: Any) -> None:
    """recommendations(first: 20) with every item's tags and categories: a fixed number of round trips."""
    import asyncio

    from api.auth import Principal
    from api.context import make_context
    from api.schema import build_schema
    from graphrec.engine.engine import Engine

    async def count(first: int) -> int:
        eng = await Engine.create(api.settings, vectors=None, background=False)
        calls = []
        orig = eng.store.read

        async def counting(name: str, *a: Any, **kw: Any) -> Any:
            calls.append(name)
            return await orig(name, *a, **kw)

        eng.store.read = counting  # type: ignore[method-assign]
        try:
            ctx = make_context(eng, Principal("k", frozenset({"read"})))
            res = await build_schema(api.settings.api).execute(
                f'query {{ recommendations(userId: "dave", first: {first}) {{ items {{ item {{ id tags categories }} }} }} }}',
                context_value=ctx)
            assert not res.errors
            return len(calls)
        finally:
            await eng.close()

    small, large = asyncio.run(count(2)), asyncio.run(count(6))
    assert small == large <= 5
