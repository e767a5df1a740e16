"""Issue 21's HTTP/GraphQL findings, each probe through HTTP against the real app, engine and
test Neo4j: query cost (2), the interact scope (5), failed-auth floods (6), client mistakes that
came back INTERNAL (7), malformed HTTP (8), Retry-After on every 429 (9)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import create_key
from graphrec.testing.server import live_server

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ISSUE_QUERY = ('{ item(id:"heat"){ similar(first:25){ item{ similar(first:25){ item{ similar(first:25){ item{ id } } } '
               '} } } } }')
CLICK = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { key created stored } }"
ORIGIN = "https://shop.example"


@dataclass
class Hostile:
    url: str
    app: Any
    read_key: str
    write_key: str
    budget_key: str
    interact_key: str

    @property
    def state(self) -> dict[str, Any]:
        return self.app.state.graphrec  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def hostile(api: Any) -> Iterator[Hostile]:
    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(api.settings) as store:
        _, budget_key = create_key(store, ["read"], "test-budget")
        _, interact_key = create_key(store, ["interact"], "test-widget", origins=[ORIGIN])
    s = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={
        "anonymous_read": True, "max_query_cost": 10_000, "cost_per_window": 20_000, "cost_window_s": 60.0,
        "auth_failures_per_s": 0.5, "auth_failures_burst": 10, "interact_per_s": 1.0, "interact_burst": 5})})
    app = create_app(s)
    with live_server(app) as url:
        yield Hostile(url, app, api.read_key, api.write_key, budget_key, interact_key)


def post(h: Hostile, query: str, variables: dict | None = None, key: str | None = None,
         headers: dict | None = None, **kw: Any) -> httpx.Response:
    hd = dict(headers or {})
    if key:
        hd["Authorization"] = "Bearer " + key
    return httpx.post(h.url + "/graphql", json={"query": query, "variables": variables or {}}, headers=hd,
                      timeout=60, **kw)


def codes(r: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in r.json().get("errors") or []]


@contextlib.contextmanager
def logged(*names: str) -> Iterator[list[logging.LogRecord]]:
    """Records logged by these loggers (uvicorn's do not propagate to the root logger)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    for n in names:
        logging.getLogger(n).addHandler(handler)
    try:
        yield records
    finally:
        for n in names:
            logging.getLogger(n).removeHandler(handler)


# ---- 2: query cost ----------------------------------------------------------------------------
def test_query_cost_is_bounded_per_request_and_per_key(hostile: Hostile) -> None:
    t0 = time.perf_counter()
    r = post(hostile, ISSUE_QUERY, key=hostile.read_key)
    assert codes(r) == ["BAD_USER_INPUT"], r.text
    msg = r.json()["errors"][0]["message"]
    assert "39071" in msg and "10000" in msg, msg  # names the cost and the limit
    assert time.perf_counter() - t0 < 2.0  # refused before any resolver ran
    users = [f"u{i}" for i in range(1000)]
    r = post(hostile, "query($u: [ID!]!) { batchRecommendations(userIds: $u) { userId recommendations { items { item { id } } } } }",
             {"u": users}, key=hostile.read_key)
    assert codes(r) == ["BAD_USER_INPUT"] and "52010" in r.json()["errors"][0]["message"], r.text
    # Aliases add up: one 6k-cost field passes, two of them do not.
    one = "a: popularItems(first: 100) { id similar(first: 29) { item { id } } }"
    ok = post(hostile, "{ " + one + " }", key=hostile.write_key)
    assert ok.status_code == 200 and not ok.json().get("errors"), ok.text
    two = post(hostile, "{ " + one + " " + one.replace("a:", "b:") + " }", key=hostile.write_key)
    assert codes(two) == ["BAD_USER_INPUT"] and "exceeds the limit" in two.text
    # The per-key budget: 20,000 per 60 s; a 5,110-cost query passes three times, then 429.
    q = "{ popularItems(first: 100) { id similar(first: 20) { item { id } } } }"
    seen = [post(hostile, q, key=hostile.budget_key) for _ in range(4)]
    assert [x.status_code for x in seen] == [200, 200, 200, 429], [x.text for x in seen]
    assert codes(seen[-1]) == ["RATE_LIMITED"] and int(seen[-1].headers["Retry-After"]) >= 1
    assert "query cost 5110" in seen[-1].text and "of 20000 per 60 s" in seen[-1].text
    assert post(hostile, q, key=hostile.read_key).status_code == 200  # another key's budget is its own


# ---- 5: the interact scope -------------------------------------------------------------------
def test_interact_keys_record_interactions_only_from_their_origins(hostile: Hostile) -> None:
    click = {"i": {"userId": "widget-visitor", "itemId": "alien", "type": "CLICK"}}
    r = post(hostile, CLICK, click, key=hostile.interact_key, headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.json()["data"]["recordInteraction"]["stored"] == "DIRECT", r.text
    for origin in ({"Origin": "https://evil.example"}, {}):
        r = post(hostile, CLICK, click, key=hostile.interact_key, headers=origin)
        assert r.status_code == 403 and codes(r) == ["FORBIDDEN"], r.text
    up = post(hostile, 'mutation { upsertItem(input: {id: "pwned", title: "x"}) { id } }', key=hostile.interact_key,
              headers={"Origin": ORIGIN})
    assert codes(up) == ["FORBIDDEN"]
    # With anonymous reads on, a widget reads with no key at all (and with its interact key).
    q = '{ similarItems(itemId: "heat", first: 2) { items { item { id } } } }'
    assert post(hostile, q).json()["data"]["similarItems"]["items"]
    assert post(hostile, q, key=hostile.interact_key, headers={"Origin": ORIGIN}).json()["data"]["similarItems"]
    # Rate limited per key and client address (burst 5, 1/s here).
    burst = [post(hostile, CLICK, click, key=hostile.interact_key, headers={"Origin": ORIGIN}) for _ in range(8)]
    limited = [x for x in burst if x.status_code == 429]
    assert limited and all(codes(x) == ["RATE_LIMITED"] and x.headers.get("Retry-After") for x in limited)


# ---- 6: unauthenticated floods ---------------------------------------------------------------
def test_a_flood_of_made_up_keys_costs_no_lookups_and_gets_429(hostile: Hostile) -> None:
    verifier = hostile.state["verifier"]
    # The flood comes from another loopback address, so the rest of the module is not blocked.
    flood = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
    before = verifier.lookups
    answers = []
    for _ in range(200):
        bad = f"grk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        answers.append(flood.post(hostile.url + "/graphql", json={"query": "{ modelVersions { id } }"},
                                  headers={"Authorization": "Bearer " + bad}))
    lookups = verifier.lookups - before
    statuses = [a.status_code for a in answers]
    assert lookups <= 12, lookups  # the burst (10), not one per request
    assert statuses.count(429) >= 180 and set(statuses) <= {401, 429}
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 429)
    # A key this address already verified still passes; an unknown id is looked up once.
    assert flood.post(hostile.url + "/graphql", json={"query": "{ modelVersions { id } }"},
                      headers={"Authorization": "Bearer " + hostile.read_key}).status_code in (200, 429)
    other = f"grk_{secrets.token_hex(6)}_x"
    before = verifier.lookups
    for _ in range(5):
        post(hostile, "{ modelVersions { id } }", key=other)
    assert verifier.lookups - before == 1
    flood.close()
    # A legitimate client elsewhere is served throughout.
    assert post(hostile, "{ modelVersions { id } }", key=hostile.read_key).status_code == 200


@pytest.mark.parametrize("anonymous_read", [True, False], ids=["anonymous-on", "anonymous-off"])
def test_a_flood_without_a_key_is_limited_per_client_address(api: Any, anonymous_read: bool) -> None:
    """Requests with no Authorization header at all, from one address: with anonymous reads on
    they are served within the address's rate limit (``rate_limit_*``, as a key's), then 429; with
    them off they are refused 401 within the address's refused-credentials budget
    (``auth_failures_*``), then 429. Either way no key is looked up, every 429 says when to come
    back, another address is not limited by it, and a key this address verified before still passes."""
    s = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={
        "anonymous_read": anonymous_read, "rate_limit_per_s": 0.5, "rate_limit_burst": 5,
        "auth_failures_per_s": 0.5, "auth_failures_burst": 10})})
    app = create_app(s)
    q = {"query": "{ popularItems(first: 2) { id } }"}
    with live_server(app) as url:
        verifier = app.state.graphrec["verifier"]
        flood = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9"), timeout=30)
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.10"), timeout=30)
        try:
            keyed = {"Authorization": "Bearer " + api.read_key}
            assert flood.post(url + "/graphql", json=q, headers=keyed).status_code == 200  # verified here before
            before = verifier.lookups
            answers = [flood.post(url + "/graphql", json=q) for _ in range(60)]
            statuses = [a.status_code for a in answers]
            first = 200 if anonymous_read else 401
            allowed = 5 if anonymous_read else 10  # the burst, plus what refilled meanwhile (0.5/s)
            assert set(statuses) == {first, 429} and statuses[0] == first, statuses
            assert allowed <= statuses.count(first) <= allowed + 5, statuses
            assert statuses[-10:] == [429] * 10, statuses
            limited = [a for a in answers if a.status_code == 429]
            assert all(codes(a) == ["RATE_LIMITED"] and int(a.headers["Retry-After"]) >= 1 for a in limited)
            assert verifier.lookups == before  # no key, no lookup
            assert other.post(url + "/graphql", json=q).status_code == first  # another address: its own budget
            # The key verified from the flooding address before: still served (its own rate limit).
            r = flood.post(url + "/graphql", json=q, headers=keyed)
            assert r.status_code == 200 and not r.json().get("errors"), r.text
        finally:
            flood.close()
            other.close()


def _made_up_key() -> str:
    return f"grk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def test_concurrent_made_up_keys_cost_no_more_lookups_than_the_budget(hostile: Hostile) -> None:
    """The refused-credentials budget holds for a flood sent all at once: the budget is taken
    before the lookup, so fifty requests in flight together cannot all pass the check while the
    first lookups are still out (they did: one lookup each)."""
    import asyncio

    verifier = hostile.state["verifier"]

    async def flood() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
        async with httpx.AsyncClient(transport=transport, timeout=30,
                                     limits=httpx.Limits(max_connections=50)) as c:
            rs = await asyncio.gather(*(c.post(hostile.url + "/graphql", json={"query": "{ modelVersions { id } }"},
                                               headers={"Authorization": "Bearer " + _made_up_key()})
                                        for _ in range(50)))
        return [r.status_code for r in rs]

    before = verifier.lookups
    statuses = asyncio.run(flood())
    lookups = verifier.lookups - before
    assert lookups <= 11, (lookups, statuses)  # the burst (10), and one token refilled meanwhile at most
    assert statuses.count(429) >= 39 and set(statuses) <= {401, 429}, statuses


def test_a_verified_key_passes_its_blocked_address_after_the_key_cache_expires(hostile: Hostile) -> None:
    """A legitimate client sharing an address with a flood of made-up keys (one NAT) keeps being
    served: its key, verified before, passes the blocked address also once the short key cache
    (``key_cache_ttl_s``) has expired. (It got 429 until the address's budget refilled, every time
    the cache expired.)"""
    verifier = hostile.state["verifier"]
    c = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.6"), timeout=30)
    q = {"query": "{ modelVersions { id } }"}

    def send(key: str) -> httpx.Response:
        return c.post(hostile.url + "/graphql", json=q, headers={"Authorization": "Bearer " + key})

    def exhaust() -> None:
        for _ in range(40):
            if send(_made_up_key()).status_code == 429:
                return
        raise AssertionError("the address was never refused")

    assert send(hostile.read_key).status_code == 200
    time.sleep(verifier.cache.ttl_s + 0.5)
    exhaust()
    assert verifier.cache.peek(verifier.key_id("Bearer " + hostile.read_key)) is None  # expired indeed
    r = send(hostile.read_key)
    assert r.status_code == 200 and not r.json().get("errors"), r.text
    # A made-up key from there is still refused at once.
    assert send(_made_up_key()).status_code == 429
    c.close()


def test_a_new_key_used_by_many_requests_at_once_is_looked_up_once(hostile: Hostile, api: Any) -> None:
    """Thirty requests at once with a key the API has never seen (a client starting up, 30
    connections): one lookup, all served (none charged to the address's refused-credentials
    budget, which is 10 here)."""
    import asyncio

    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(api.settings) as store:
        _, fresh = create_key(store, ["read"], "test-fresh")
    verifier = hostile.state["verifier"]

    async def together() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.7")
        async with httpx.AsyncClient(transport=transport, timeout=30, limits=httpx.Limits(max_connections=30)) as c:
            rs = await asyncio.gather(*(c.post(hostile.url + "/graphql", json={"query": "{ modelVersions { id } }"},
                                               headers={"Authorization": "Bearer " + fresh})
                                        for _ in range(30)))
        return [r.status_code for r in rs]

    before = verifier.lookups
    assert asyncio.run(together()) == [200] * 30
    assert verifier.lookups - before == 1


# ---- 7: client mistakes are not INTERNAL -----------------------------------------------------
def test_client_mistakes_get_their_documented_codes(hostile: Hostile) -> None:
    with logged("strawberry.execution", "graphrec.api") as records:
        _client_mistakes(hostile)
    assert not records, [r.getMessage() for r in records]  # a client's mistake is not logged as an error


def _client_mistakes(hostile: Hostile) -> None:
    bad_enum = post(hostile, CLICK, {"i": {"userId": "carol", "itemId": "alien", "type": "CLICKED"}}, key=hostile.write_key)
    assert codes(bad_enum) == ["BAD_USER_INPUT"], bad_enum.text
    big = post(hostile, "query($n: Int) { popularItems(first: $n) { id } }", {"n": 2**31}, key=hostile.read_key)
    assert codes(big) == ["BAD_USER_INPUT"], big.text
    nan = httpx.post(hostile.url + "/graphql", content=b'{"query": "query($v: Float) { modelVersions { id } }", '
                     b'"variables": {"v": NaN}}', headers={"Content-Type": "application/json",
                                                            "Authorization": "Bearer " + hostile.read_key})
    assert nan.status_code == 400 and codes(nan) == ["BAD_USER_INPUT"], nan.text


def test_an_attribute_past_64_bits_is_not_internal(hostile: Hostile) -> None:
    attr = post(hostile, "mutation($a: JSON) { upsertUser(input: {id: \"big-attr\", attributes: $a}) { id } }",
                {"a": {"n": 2**63}}, key=hostile.write_key)
    assert codes(attr) == ["BAD_USER_INPUT"] and "64-bit" in attr.text, attr.text


def test_reused_idempotency_key_is_not_internal(hostile: Hostile) -> None:
    first = post(hostile, CLICK, {"i": {"userId": "carol", "itemId": "alien", "type": "CLICK", "key": "reuse-1"}},
                 key=hostile.write_key)
    assert first.json()["data"]["recordInteraction"]["created"] is True, first.text
    other = post(hostile, CLICK, {"i": {"userId": "bob", "itemId": "alien", "type": "CLICK", "key": "reuse-1"}},
                 key=hostile.write_key)
    assert codes(other) == ["BAD_USER_INPUT"] and "key" in other.text, other.text


def test_neo4j_away_is_unavailable_not_internal(hostile: Hostile) -> None:
    from graphrec.core.graph.store import AsyncGraphStore

    eng = hostile.state["engine"]
    breaker = eng.neo4j_breaker
    saved = breaker.opened_at, breaker.reset_s
    breaker.opened_at, breaker.reset_s = time.monotonic(), 3600.0  # open, as after failures
    try:
        r = post(hostile, '{ user(id: "bob") { id } }', key=hostile.read_key)
        assert codes(r) == ["UNAVAILABLE"], r.text
    finally:
        breaker.opened_at, breaker.reset_s = saved
        breaker.failures = 0
    # The key store unreachable and the key never seen: 503 UNAVAILABLE with Retry-After.
    verifier = hostile.state["verifier"]
    dead = AsyncGraphStore(eng.settings.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:9"}), "unused")  # nothing listens
    live, verifier.store = verifier.store, dead
    try:
        never_seen = f"grk_{secrets.token_hex(6)}_{secrets.token_urlsafe(8)}"
        r = post(hostile, "{ modelVersions { id } }", key=never_seen)
        assert r.status_code == 503 and codes(r) == ["UNAVAILABLE"] and r.headers.get("Retry-After"), r.text
    finally:
        verifier.store = live
        await_close(dead)


def test_made_up_keys_while_the_key_store_is_away_spend_the_budget(hostile: Hostile) -> None:
    """While the key store cannot be asked (down, or too slow to answer within the lookup timeout),
    each made-up key still spends the address's refused-credentials budget: past it, 429 without
    another lookup attempt, not 503 after one each."""
    from graphrec.core.graph.store import AsyncGraphStore

    eng, verifier = hostile.state["engine"], hostile.state["verifier"]
    dead = AsyncGraphStore(eng.settings.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:9"}), "unused")
    live, verifier.store = verifier.store, dead
    flood = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.8"), timeout=30)
    try:
        before, t0 = verifier.lookups, time.monotonic()
        statuses: list[int] = []
        while len(statuses) < 60 and statuses[-3:] != [429] * 3:
            statuses.append(flood.post(hostile.url + "/graphql", json={"query": "{ modelVersions { id } }"},
                                       headers={"Authorization": "Bearer " + _made_up_key()}).status_code)
        budget = 10 + 0.5 * (time.monotonic() - t0) + 1  # the burst, what refilled meanwhile (0.5/s)
        assert statuses[-3:] == [429] * 3 and set(statuses) == {503, 429}, statuses
        assert statuses.count(503) <= budget and verifier.lookups - before <= budget, (statuses, budget)
    finally:
        flood.close()
        verifier.store = live
        await_close(dead)


def await_close(store: Any) -> None:
    import asyncio

    asyncio.run(store.close())


# ---- 8: malformed HTTP -------------------------------------------------------------------------
MALFORMED = [
    # (method, content type, body, status, code)
    ("GET", None, None, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "application/json", b'{"query": ', 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b"", 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b'[{"query": "{ modelVersions { id } }"}]', 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b'{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}', 400,
     "BAD_USER_INPUT"),
    ("POST", "text/plain", b'{"query": "{ modelVersions { id } }"}', 415, "UNSUPPORTED_MEDIA"),
    ("POST", None, b'{"query": "{ modelVersions { id } }"}', 415, "UNSUPPORTED_MEDIA"),
    ("POST", "application/json", b'{"query": 5}', 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b'{"query": "{ modelVersions { id } }", "variables": [1]}', 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b'"just a string"', 400, "BAD_USER_INPUT"),
    ("POST", "application/json", b"\xff\xfe{", 400, "BAD_USER_INPUT"),
]


def test_malformed_http_gets_a_json_error_and_a_4xx(hostile: Hostile) -> None:
    auth = {"Authorization": "Bearer " + hostile.read_key}
    with logged("uvicorn.error", "graphrec.api", "strawberry") as records:
        for method, ctype, body, status, code in MALFORMED:
            hd = dict(auth, **({"Content-Type": ctype} if ctype else {}))
            r = httpx.request(method, hostile.url + "/graphql", content=body, headers=hd, timeout=30)
            assert r.status_code == status, (method, ctype, body, r.status_code, r.text)
            assert codes(r) == [code], (method, ctype, body, r.text)
        get = httpx.get(hostile.url + "/graphql", params={"query": "{ modelVersions { id } }"}, headers=auth)
        assert get.status_code == 405 and codes(get) == ["METHOD_NOT_ALLOWED"] and get.headers["Allow"] == "POST"
        head = httpx.head(hostile.url + "/graphql", headers=auth)
        assert head.status_code == 405 and head.headers["content-type"] == "application/json"
        # Media types compare case-insensitively (RFC 9110): an upper-case one is served.
        upper = httpx.post(hostile.url + "/graphql", content=b'{"query": "{ modelVersions { id } }"}',
                           headers=dict(auth, **{"Content-Type": "APPLICATION/JSON; charset=UTF-8"}))
        assert upper.status_code == 200 and "errors" not in upper.json(), upper.text
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info], [r.getMessage() for r in records]


def test_graphiql_page_and_nothing_else_by_get(api: Any) -> None:
    ide = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"graphiql": True})})
    with live_server(create_app(ide)) as url:
        page = httpx.get(url + "/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        for accept in ("application/json", "*/*"):
            r = httpx.get(url + "/graphql", headers={"Accept": accept})
            assert r.status_code == 405 and codes(r) == ["METHOD_NOT_ALLOWED"], r.text


# ---- 9: every 429 tells when to come back ------------------------------------------------------
def test_every_429_carries_retry_after(hostile: Hostile, api: Any) -> None:
    slow = api.settings.model_copy(update={"api": api.settings.api.model_copy(
        update={"rate_limit_per_s": 0.5, "rate_limit_burst": 1})})
    with live_server(create_app(slow)) as url:
        rs = [httpx.post(url + "/graphql", json={"query": "{ modelVersions { id } }"},
                         headers={"Authorization": "Bearer " + api.read_key}) for _ in range(3)]
    assert [r.status_code for r in rs] == [200, 429, 429]
    assert all(r.headers["Retry-After"] == "2" for r in rs[1:])  # 1 token at 0.5/s


# ---- 1: /readyz tells a stuck journal from a growing one --------------------------------------------
def test_readyz_reports_a_journal_backlog_that_is_stuck(hostile: Hostile) -> None:
    """Entries pending, the Neo4j breaker closed, and the replay not moving (here: another process
    holds the replay lock and never finishes): the backlog does not grow, so /readyz said nothing.
    It says ``journal_stuck`` once that has lasted ``engine.journal_stuck_s``, and /metrics
    ``graphrec_journal_stuck``; both clear when the replay moves again."""
    eng = hostile.state["engine"]
    saved = eng.cfg
    eng.cfg = saved.model_copy(update={"journal_stuck_s": 1.0})

    def readyz() -> dict[str, Any]:
        return httpx.get(hostile.url + "/readyz", timeout=30).json()  # type: ignore[no-any-return]

    def wait_for(check: Any, what: str, within_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            r = readyz()
            if check(r):
                return r
            assert time.monotonic() < deadline, (what, r)
            time.sleep(0.25)

    try:
        with eng.journal._replay_lock():  # "another process", replaying for ever
            assert eng.journal.append_checked({"key": "k-stuck", "user": "stuck-user", "item": "alien", "type": "CLICKED",
                                               "ts": time.time() - 5, "value": None, "dwell": None, "session": None})
            r = wait_for(lambda r: "journal_stuck" in r["degraded_reasons"], "journal_stuck reported")
            assert r["journal"]["stuck"] and r["breakers"]["neo4j"] == "closed" and r["journal_pending_bytes"] > 0
            metrics = httpx.get(hostile.url + "/metrics", timeout=30).text
            assert "graphrec_journal_stuck 1.0" in metrics
        r = wait_for(lambda r: r["journal_pending_bytes"] == 0 and not r["journal"]["stuck"], "the replay moved on")
        assert "journal_stuck" not in r["degraded_reasons"]
    finally:
        eng.cfg = saved


def test_a_client_cannot_choose_the_address_its_limits_count_against(api: Any) -> None:
    """uvicorn believes X-Forwarded-For from any loopback peer unless told otherwise: 150 made-up
    keys, each with a made-up forwarded address, were all answered 401 (never 429), so the
    refused-credentials budget per address meant nothing to a local client. Served as `graphrec
    serve` serves (api.server.uvicorn_options), the header is ignored unless its sender is a proxy
    named in ``api.forwarded_allow_ips``; from a named proxy, each forwarded client has its own budget."""
    from api.server import uvicorn_options

    def flood(url: str, forwarded_for: Any) -> list[int]:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.11"), timeout=30) as c:
            return [c.post(url + "/graphql", json={"query": "{ modelVersions { id } }"},
                           headers={"Authorization": f"Bearer grk_{secrets.token_hex(6)}_x",
                                    "X-Forwarded-For": forwarded_for(n)}).status_code for n in range(40)]

    def served(proxies: str) -> Any:
        s = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={
            "anonymous_read": False, "auth_failures_per_s": 0.5, "auth_failures_burst": 10,
            "forwarded_allow_ips": proxies})})
        return live_server(create_app(s), **uvicorn_options(s.api))

    with served("") as url:  # the default: no proxy believed
        statuses = flood(url, lambda n: f"10.0.{n}.1")
        assert statuses.count(429) >= 25 and set(statuses) <= {401, 429}, statuses
    with served("127.0.0.11") as url:  # behind a proxy at 127.0.0.11: the forwarded client counts
        one = flood(url, lambda n: "203.0.113.7")
        assert one.count(429) >= 25, one
        other = flood(url, lambda n: "203.0.113.8")[:5]  # another client behind the same proxy
        assert other == [401] * 5, other
