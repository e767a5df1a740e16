"""The Cypher library: every file EXPLAINs on the real Neo4j, and every $param is supplied by
every caller (found by reading the callers' source)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from graphrec.core import cypher
from graphrec.core.errors import ValidationError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("graphrec", "loaders", "gnn", "api", "bench") for p in (ROOT / d).rglob("*.py")]
TESTS = sorted((ROOT / "tests").rglob("*.py"))
#: Strings in tests shaped like query names that are not meant to name one.
ABSENT_ON_PURPOSE = {"recs/nope", "load/x", "schema/v"}  # refused names, an error label, a prefix
#: Files that are not called from Python: schema DDL (applied statement by statement) and the
#: Browser-facing explore/ queries (people supply their parameters with :param).
NOT_CALLED = ("schema/v", "explore/")
#: Keyword arguments of read/write that are not query parameters.
NON_PARAMS = {"identifiers", "timeout", "routing", "plain", "once"}
QUERY_NAME = re.compile(r"[a-z_]+/[a-z0-9_]+")  # how library queries are named: "folder/file"


def _callers() -> dict[str, list[tuple[str, set[str] | None]]]:
    """query name -> [(where, params supplied or None when not statically known)]."""
    found: dict[str, list[tuple[str, set[str] | None]]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("read", "write"):
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    name = node.args[0].value
                    if any(k.arg is None for k in node.keywords):
                        params = None
                    else:
                        params = {k.arg for k in node.keywords if k.arg not in NON_PARAMS}
                    found.setdefault(name, []).append((where, params))
            # write_many([("name", identifiers, {params...}), ...])
            if isinstance(node, ast.Tuple) and len(node.elts) == 3 and isinstance(node.elts[0], ast.Constant) \
                    and isinstance(node.elts[0].value, str) and QUERY_NAME.fullmatch(node.elts[0].value):
                third = node.elts[2]
                params = ({k.value for k in third.keys if isinstance(k, ast.Constant)}
                          if isinstance(third, ast.Dict) and all(k is not None for k in third.keys) else None)
                found.setdefault(node.elts[0].value, []).append((where, params))
    return found


def test_every_query_has_a_header_and_only_parameters() -> None:
    queries = cypher.all_queries()
    assert len(queries) >= 25
    for q in queries:
        assert q.header, f"{q.name} has no header comment"
        assert "Params:" in q.header or q.name.startswith("schema/v"), f"{q.name}: header lacks 'Params:'"


def test_every_called_query_gets_exactly_its_parameters() -> None:
    callers = _callers()
    names = {q.name for q in cypher.all_queries()}
    unknown = set(callers) - names
    assert not unknown, f"code calls queries that do not exist: {unknown}"
    for q in cypher.all_queries():
        if q.name.startswith(NOT_CALLED):
            continue
        assert q.name in callers, f"{q.name} is never called"
        for where, supplied in callers[q.name]:
            if supplied is None:
                continue
            missing = q.params - supplied
            extra = supplied - q.params
            assert not missing, f"{where} calls {q.name} without {sorted(missing)}"
            assert not extra, f"{where} passes {sorted(extra)} that {q.name} does not use"


def test_tests_name_only_queries_that_exist() -> None:
    """Every string in tests/ that names a query (``folder/name`` in a query folder) names one
    that exists: a renamed query cannot leave a test asserting on its old name (such an assertion,
    e.g. that the old name was not read, would pass whatever the code does)."""
    names = {q.name for q in cypher.all_queries()}
    folders = {n.split("/")[0] for n in names}
    stale = []
    for path in TESTS:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and QUERY_NAME.fullmatch(node.value)
                    and node.value.split("/")[0] in folders and node.value not in names | ABSENT_ON_PURPOSE):
                stale.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert not stale, f"tests name queries that do not exist: {stale}"
    assert TESTS and any(p.name == "test_engine.py" for p in TESTS)


def test_template_identifiers_come_from_allowlists() -> None:
    q = cypher.load("load/interactions")
    assert "`RATED`" in q.render(rel="RATED")
    for bad in ("RATED`]->() DETACH DELETE n //", "User", "rated"):
        with pytest.raises(ValidationError):
            q.render(rel=bad)
    with pytest.raises(ValidationError):
        q.render()


@pytest.mark.parametrize("name", ["../etc/passwd", "recs/nope", "Recs/Popular", "recs/popular; DROP"])
def test_bad_query_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        cypher.load(name)


@pytest.mark.integration
def test_every_query_explains_on_the_real_neo4j(store) -> None:  # noqa: ANN001
    from neo4j import RoutingControl

    for q in cypher.all_queries():
        if q.name.startswith("schema/v"):
            continue  # DDL: applied (and so checked) by the schema test
        text = q.render(**{slot: cypher.ALLOWED_IDENTIFIERS[slot][0] for slot in q.slots})
        store.run_text("EXPLAIN " + text, routing=RoutingControl.READ, **{p: None for p in q.params})


def _operators(plan: dict) -> set[str]:
    ops = {plan["operatorType"].split("@")[0]}
    for child in plan.get("children", []):
        ops |= _operators(child)
    return ops


@pytest.mark.integration
def test_the_loader_fast_path_seeks_nodes_by_element_id(store) -> None:  # noqa: ANN001
    """A property check in the same WHERE as elementId() made the planner scan an index per row
    (35x slower loads); the fast path must seek by element id."""

    for name in ("load/interactions_create", "load/interactions_create_new_users"):
        with store.driver.session(database=store.database) as session:
            q = cypher.load(name)
            plan = session.run("EXPLAIN " + q.render(), {p: [] for p in q.params}).consume().plan
        ops = _operators(plan)
        assert "NodeByElementIdSeek" in ops and not any("Scan" in op for op in ops), (name, ops)


@pytest.mark.integration
def test_the_loader_key_check_seeks_the_key_index(store) -> None:  # noqa: ANN001
    """load/interactions_check runs on re-loads with 10k keys per batch: it must seek the key
    constraint's index whatever the statistics were when it was planned (it is hinted)."""
    for rel in ("RATED", "VIEWED", "CLICKED", "PURCHASED", "SKIPPED"):
        with store.driver.session(database=store.database) as session:
            plan = session.run("EXPLAIN " + cypher.load("load/interactions_check").render(rel=rel),
                               {"keys": ["a", "b"]}).consume().plan
        ops = _operators(plan)
        assert "DirectedRelationshipUniqueIndexSeek" in ops and not any("Scan" in op for op in ops), (rel, ops)
