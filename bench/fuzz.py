"""GraphQL fuzzing against the real stack: a scratch Neo4j with the tiny catalogue, one
``graphrec serve`` process, and hypothesis-graphql operations sent over HTTP.

    python -m bench.fuzz                  # 10,000 cases (make fuzz)
    python -m bench.fuzz --cases 500      # a quick run

Each case is one of:

- a valid operation of the schema (hypothesis-graphql, ``Mode.POSITIVE``): queries and mutations;
- the same brought within range (``first`` 1-20, ids the catalogue knows), so resolvers run;
- an operation with one schema violation (``Mode.NEGATIVE``): a wrong type, a missing argument,
  an unknown field...;
- an operation with variables whose values are drawn from any JSON (huge and negative integers,
  floats, strings, nested objects, wrong enum names): how clients (the widget) send input;

sent with a read key, a read/write key, an ``interact`` key (with its origin) or no key. Rate and
cost budgets are lifted for the run (the per-request cost limit stays). Prints the number of
answers by HTTP status and by ``extensions.code``, the wall time, and every case that failed:
an INTERNAL code, a 5xx other than 503 OVERLOADED, an answer that is not JSON, or a traceback in
the body. Exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from graphql.language import IntValueNode, StringValueNode
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

ORIGIN = "https://shop.example"
JSON_SCALAR = st.one_of(st.builds(lambda s: StringValueNode(value=s), st.text(max_size=12)),
                        st.builds(lambda n: IntValueNode(value=str(n)), st.integers(-(2**70), 2**70)))
# Operations whose input comes in variables, as browsers and SDKs send it.
WITH_VARIABLES = [
    "mutation($i: InteractionInput!) { recordInteraction(input: $i) { key created stored } }",
    "mutation($i: ItemInput!) { upsertItem(input: $i) { id title } }",
    "mutation($i: UserInput!) { upsertUser(input: $i) { id attributes } }",
    "query($u: ID!, $n: Int, $s: Surface) { recommendations(userId: $u, first: $n, surface: $s) { items { item { id } } } }",
    "query($i: ID!, $n: Int) { similarItems(itemId: $i, first: $n) { items { rank item { id } } } }",
    "query($u: [ID!]!, $n: Int) { batchRecommendations(userIds: $u, first: $n) { userId } }",
    "query($u: ID!, $ids: [ID!]!, $n: Int) { rerank(userId: $u, itemIds: $ids, first: $n) { items { item { id } } } }",
    "query($n: Int, $c: String) { popularItems(first: $n, category: $c) { id } }",
]
IDS = st.sampled_from(["alice", "bob", "carol", "heat", "alien", "toy", "up", "ronin", "new", "nobody", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20), IDS,
                    st.sampled_from(["VIEW", "CLICK", "RATE", "PURCHASE", "SKIP", "CLICKED", "HOME_FEED", "EMAIL"]))
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=12)
FIELDS = ["userId", "itemId", "type", "value", "dwellSeconds", "sessionId", "timestamp", "key", "id", "title", "year",
          "categories", "tags", "available", "description", "attributes"]
INPUT_LIKE = st.dictionaries(st.sampled_from(FIELDS), ANY_JSON, max_size=8)
VARIABLES = st.fixed_dictionaries({}, optional={"i": st.one_of(INPUT_LIKE, ANY_JSON), "u": st.one_of(IDS, ANY_JSON),
                                                "n": ANY_JSON, "s": ANY_JSON, "c": ANY_JSON, "ids": ANY_JSON})


@dataclass
class Report:
    cases: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"cases": self.cases, "by_status": dict(sorted(self.by_status.items())),
                "by_code": dict(self.by_code.most_common()), "by_kind": dict(self.by_kind), "failures": len(self.failures)}


def sdl() -> str:
    from api.schema import build_schema
    from graphrec.core.config import ApiSettings

    return str(build_schema(ApiSettings()))


KNOWN = ["alice", "bob", "carol", "dave", "heat", "alien", "toy", "up", "ronin", "new"]


def tame(query: str, rnd: Any) -> str:
    """A valid operation brought within range: every ``first`` 1-20 and every single id one the
    tiny catalogue knows, so that resolvers run past input validation."""
    query = re.sub(r"\bfirst: -?\d+", lambda _: f"first: {rnd.randint(1, 20)}", query)
    return re.sub(r'\b(itemId|userId|id): (?:"(?:[^"\\]|\\.)*"|-?\d+)',
                  lambda m: f'{m.group(1)}: "{rnd.choice(KNOWN)}"', query)


def cases(schema: str) -> st.SearchStrategy[tuple[str, dict[str, Any], str]]:
    """(kind, request body, key name)."""
    positive = from_schema(schema, custom_scalars={"JSON": JSON_SCALAR}, mode=Mode.POSITIVE)
    negative = from_schema(schema, custom_scalars={"JSON": JSON_SCALAR}, mode=Mode.NEGATIVE)
    keys = st.sampled_from(["read", "write", "interact", "none"])
    return st.one_of(
        st.tuples(st.just("positive"), positive.map(lambda q: {"query": q}), keys),
        st.tuples(st.just("in-range"), st.builds(lambda q, r: {"query": tame(q, r)}, positive, st.randoms()), keys),
        st.tuples(st.just("negative"), negative.map(lambda q: {"query": q}), keys),
        st.tuples(st.just("variables"), st.builds(lambda q, v: {"query": q, "variables": v},
                                                  st.sampled_from(WITH_VARIABLES), VARIABLES), keys),
    )


def judge(status: int, text: str) -> tuple[list[str], str | None]:
    """(codes, why it is a failure or None)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return [], "not JSON"
    codes = [str((e.get("extensions") or {}).get("code")) for e in doc.get("errors") or []]
    if "Traceback" in text:
        return codes, "a traceback in the answer"
    if "INTERNAL" in codes:
        return codes, "INTERNAL"
    if status >= 500 and not (status == 503 and codes == ["OVERLOADED"]):
        return codes, f"HTTP {status}"
    if any(c in ("None", "") for c in codes):
        return codes, "an error without a code"
    return codes, None


def run(url: str, keys: dict[str, str], n: int, seed_value: int = 0,
        on_case: Callable[[int], None] | None = None) -> Report:
    """Send ``n`` generated cases to ``url``; ``keys`` maps read, write, interact to API keys."""
    report = Report()
    client = httpx.Client(base_url=url, timeout=60)

    @seed(seed_value)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases(sdl()))
    def one(case: tuple[str, dict[str, Any], str]) -> None:
        kind, body, key = case
        headers = {}
        if key != "none":
            headers["Authorization"] = "Bearer " + keys[key]
        if key == "interact":
            headers["Origin"] = ORIGIN
        r = client.post("/graphql", json=body, headers=headers)
        codes, why = judge(r.status_code, r.text)
        report.cases += 1
        report.by_kind[kind] += 1
        report.by_status[r.status_code] += 1
        for c in codes or ["(none)"]:
            report.by_code[c] += 1
        if why:
            report.failures.append({"why": why, "status": r.status_code, "key": key, "body": body, "answer": r.text[:500]})
        if on_case:
            on_case(report.cases)

    try:
        one()
    finally:
        client.close()
    return report


def prepare(s: Any) -> dict[str, str]:
    """The tiny catalogue with neighbours, and one key per kind of caller."""
    from api.auth import create_key
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
    from graphrec.testing import tiny_graph

    with GraphStore.from_settings(s) as store:
        schema.apply(store)
        tiny_graph(store)
        refresh(store, export_snapshot(store, progress=False), s.interactions.score_weights, k=10, progress=False)
        return {"read": create_key(store, ["read"], "fuzz-read")[1],
                "write": create_key(store, ["read", "write"], "fuzz-write")[1],
                "interact": create_key(store, ["interact"], "fuzz-interact", origins=[ORIGIN])[1]}


def start_api(s: Any, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    from graphrec.testing.server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(s.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(s.neo4j.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(s.neo4j.http_port),
                # Budgets lifted for one client sending as fast as it can; the per-request cost limit stays.
                "GRAPHREC_API_RATE_LIMIT_PER_S": "1000000", "GRAPHREC_API_RATE_LIMIT_BURST": "1000000",
                "GRAPHREC_API_COST_PER_WINDOW": "1000000000", "GRAPHREC_API_INTERACT_PER_S": "1000000",
                "GRAPHREC_API_INTERACT_BURST": "1000000", "GRAPHREC_API_AUTH_FAILURES_PER_S": "1000000",
                "GRAPHREC_API_AUTH_FAILURES_BURST": "1000000"})
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", "serve", "--port", str(port), "--workers", "1"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the API did not become ready; see {log}")


def main() -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from bench.common import scratch_neo4j, write_report
    from graphrec.core.config import load_settings
    from graphrec.testing.server import free_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/reports/fuzz.json"))
    a = ap.parse_args()
    with scratch_neo4j(load_settings(), "fuzz", free_port(), free_port(), heap="1g", pagecache="256m") as s:
        from pydantic import SecretStr

        from graphrec.core.neo4j_server import Neo4jServer

        s = s.model_copy(update={"var_dir": s.var_dir.resolve(), "neo4j": s.neo4j.model_copy(
            update={"password": SecretStr(Neo4jServer(s).password())})})
        keys = prepare(s)
        api, url = start_api(s, s.var_dir / "api.log")
        try:
            t0 = time.perf_counter()
            with Progress("fuzz", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
                task = bar.add_task("cases", total=a.cases)
                report = run(url, keys, a.cases, a.seed, on_case=lambda k: bar.update(task, completed=k))
            wall = time.perf_counter() - t0
            api_alive = api.poll() is None
        finally:
            api.terminate()
            api.wait(timeout=30)
    out = {**report.summary(), "wall_s": round(wall, 1), "cases_per_s": round(report.cases / wall, 1),
           "seed": a.seed, "api_alive_at_end": api_alive, "failure_examples": report.failures[:20]}
    write_report(a.out, out)
    print(json.dumps({k: v for k, v in out.items() if k != "failure_examples"}, indent=2))
    for f in report.failures[:20]:
        print("FAILED:", json.dumps(f)[:800])
    if report.failures or not api_alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
