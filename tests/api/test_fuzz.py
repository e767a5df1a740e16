"""Property-based fuzzing of the schema through HTTP (bench/fuzz.py, a smaller run than
``make fuzz``): valid operations, operations with one schema violation and operations with
arbitrary JSON variables, with read, read/write, interact and no keys. No INTERNAL error, no 5xx
but 503 OVERLOADED, every answer JSON with a code on each error."""

from __future__ import annotations

from typing import Any

import pytest

from api.auth import create_key
from bench.fuzz import ORIGIN, judge, run

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_fuzzed_operations_never_fail_internally(api: Any) -> None:
    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(api.settings) as store:
        _, interact = create_key(store, ["interact"], "fuzz-interact", origins=[ORIGIN])
    report = run(api.url, {"read": api.read_key, "write": api.write_key, "interact": interact}, 400, seed_value=21)
    assert report.cases == 400
    assert set(report.by_kind) == {"positive", "in-range", "negative", "variables"}
    # Answers without any error (the resolvers ran): about 40 of 400 with seed 21; the rest are
    # refusals by design (schema violations, scopes, the per-address limits on bad credentials).
    assert report.by_code["(none)"] >= 20, report.by_code
    assert not report.failures, report.failures[:5]


def test_the_judge_fails_what_it_should() -> None:
    assert judge(200, '{"data": {"x": 1}}') == ([], None)
    assert judge(200, '{"data": null, "errors": [{"message": "m", "extensions": {"code": "INTERNAL"}}]}')[1] == "INTERNAL"
    assert judge(503, '{"errors": [{"message": "m", "extensions": {"code": "OVERLOADED"}}]}')[1] is None
    assert judge(503, '{"errors": [{"message": "m", "extensions": {"code": "UNAVAILABLE"}}]}')[1] == "HTTP 503"
    assert judge(500, "Internal Server Error")[1] == "not JSON"
    assert judge(400, '{"errors": [{"message": "m"}]}')[1] == "an error without a code"
