"""The query cost model (api/cost.py) and the validation rules built once (unit tests, no Neo4j)."""

from __future__ import annotations

import asyncio

import pytest
from graphql import parse

from api.cost import operation_cost
from api.limits import CostBudget, RateLimiter
from api.schema import build_schema
from graphrec.core.config import ApiSettings

SCHEMA = build_schema(ApiSettings())
ISSUE = '{ item(id:"50"){ similar(first:25){ item{ similar(first:25){ item{ similar(first:25){ item{ id } } } } } } } }'


def cost(query: str, variables: dict | None = None, op: str | None = None) -> int:
    return operation_cost(SCHEMA._schema, parse(query), variables or {}, op)


def test_list_sizes_multiply_down_and_engine_calls_count() -> None:
    # item: 10 + 1; similar x1: 10 + 25 x (Recommendation 1 + Item 1); x25: ...; x625: ...
    assert cost(ISSUE) == 11 + (10 + 25 * 2) + 25 * (10 + 25 * 2) + 625 * (10 + 25 * 2)
    assert cost('{ recommendations(userId: "u", first: 20) { items { item { title } } } }') == 10 + 1 + 20 * 2
    assert cost('{ recommendations(userId: "u") { degraded } }') == 11  # no list selected, nothing multiplied
    # The default of `first` applies when it is not sent, a variable's value when it is.
    assert cost('{ similarItems(itemId: "i") { items { rank } } }') == 11 + 20
    assert cost('query($n: Int) { similarItems(itemId: "i", first: $n) { items { rank } } }', {"n": 3}) == 11 + 3


def test_batches_and_aliases_add_up() -> None:
    q = "query($u: [ID!]!) { batchRecommendations(userIds: $u, first: 5) { userId recommendations { items { item { id } } } } }"
    one = cost(q, {"u": ["a"]})
    assert cost(q, {"u": [str(i) for i in range(10)]}) == 10 + 10 * (one - 10)
    assert cost(q.replace("first: 5", "first: 20"), {"u": [str(i) for i in range(1000)]}) == 52_010
    single = '{ a: popularItems(first: 3) { id } }'
    assert cost(single.replace("}", "} b: popularItems(first: 3) { id }", 1)) == 2 * cost(single)
    fragment = 'query { ...F } fragment F on Query { popularItems(first: 3) { id } }'
    assert cost(fragment) == cost(single)
    assert cost('{ rerank(userId: "u", itemIds: ["a", "b", "c"]) { items { item { id } } } }') == 11 + 3 * 2


def test_the_budget_refills_and_says_when() -> None:
    b = CostBudget(limit=100, window_s=10.0)
    assert b.spend("k", 60) and not b.spend("k", 60) and b.left("k") == 40
    assert b.retry_after("k", 60) == 2  # 20 missing at 10 per second
    assert b.spend("other", 100)
    rl = RateLimiter(rate=2.0, burst=1)
    assert rl.allow("x", now=0.0) and not rl.allow("x", now=0.1)


def test_the_address_guard_takes_a_token_and_gives_it_back() -> None:
    from api.limits import AddressGuard

    g = AddressGuard(rate=0.001, burst=2)
    g.failed("a")
    g.failed("a")
    assert g.blocked("a") and not g.blocked("b")
    g.refund("a")  # the key was good after all
    assert not g.blocked("a")
    for _ in range(5):
        g.refund("a")
    assert g.buckets.tokens("a") <= 2.0  # never past the burst


def test_validation_rules_are_built_once_so_the_cache_hits() -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache = _get_validate_cache(256)
    before = cache.cache_info()
    for _ in range(3):
        asyncio.run(SCHEMA.execute("{ __typename }"))
    after = cache.cache_info()
    assert after.hits - before.hits >= 2, (before, after)


@pytest.mark.parametrize("query", ["{ __schema { types { name } } }", "{ __typename }"])
def test_fields_outside_the_schema_cost_nothing(query: str) -> None:
    assert cost(query) == 0


def test_the_default_limits_let_one_backend_key_use_the_target_rate() -> None:
    # Issue 24: one backend key asking recommendations(first: 20) at the service's target rate
    # (200 req/s), all of it through one worker (the worst case), for two windows: never a 429.
    # The old defaults (50/s, burst 100; 200,000 cost per minute) refused it within a second.
    cfg = ApiSettings()
    rate = 200
    each = cost('{ recommendations(userId: "u", first: 20) { requestId degraded items { rank score item { id title } } } }')
    limiter = RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst)
    budget = CostBudget(cfg.cost_per_window, cfg.cost_window_s)
    seconds = 2 * cfg.cost_window_s
    refused = [k for k in range(int(rate * seconds)) if not (
        limiter.allow("backend", now=k / rate) and budget.buckets.allow("backend", now=k / rate, n=float(each)))]
    assert refused == []
    # A runaway key at ten times the limit is still refused, most of its requests.
    runaway = 10 * cfg.rate_limit_per_s
    n = int(runaway * 10)
    allowed = sum(limiter.allow("runaway", now=k / runaway) for k in range(n))
    assert allowed <= cfg.rate_limit_burst + cfg.rate_limit_per_s * 10 + 1 < n / 5
