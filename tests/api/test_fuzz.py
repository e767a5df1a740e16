"""Property-based fuzzing of the schema (hypothesis-graphql): no INTERNAL error, no 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql.language import IntValueNode, StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema

from api.schema import build_schema
from graphrec.config import ApiSettings

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
SDL = str(build_schema(ApiSettings()))


@pytest.fixture(scope="module")
def client(api: Any) -> Any:
    with httpx.Client(base_url=api.url, headers={"Authorization": "Bearer " + api.write_key}, timeout=60) as c:
        yield c


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=from_schema(SDL, custom_scalars={
    "JSON": st.one_of(st.builds(lambda s: StringValueNode(value=s), st.text(max_size=12)),
                      st.builds(lambda n: IntValueNode(value=str(n)), st.integers(-5, 5)))}))
def test_fuzzed_operations_never_fail_internally(client: Any, query: str) -> None:
    r = client.post("/graphql", json={"query": query})
    assert r.status_code < 500, r.text
    for err in r.json().get("errors") or []:
        assert err["extensions"]["code"] != "INTERNAL", (query, err)
        assert "Traceback" not in err["message"]
