"""The cost of a GraphQL operation, computed from its document and variables before any resolver
runs, and the extension that refuses operations over budget.

Cost model (``operation_cost``):

- every object a field returns costs ``OBJECT`` (1); a field that asks the engine (recommendations,
  similar items, a user's history, ...; ``ENGINE_FIELDS``) costs ``ENGINE`` (10) more, once per
  time it runs;
- a list multiplies everything below it by its size: ``first`` (or ``limit``) as sent, else the
  argument's default; a batch by its input list (``batchRecommendations(userIds)``: one per user,
  ``rerank(itemIds)``: its ids or ``first``). A field that takes ``first`` but returns one object
  (``recommendations`` returns a ``RecommendationList``) passes its size on to that object's lists
  (``items``);
- aliases and fragments add up: each selection is counted where it is used.

So ``recommendations(first: 20) { items { item { title } } }`` costs 11 + 20 × 2 = 51, and the
nested ``item { similar(first: 25) { item { similar(first: 25) { ... } } } }`` of issue 21
(16k items, 651 engine calls) costs 39,071; a 1,000-user ``batchRecommendations`` with its
items costs 52,010.

``CostLimiter`` refuses an operation over ``api.max_query_cost`` with BAD_USER_INPUT naming the
cost and the limit, and one that would overdraw the caller's ``api.cost_per_window`` (per API
key, or client address when anonymous, per ``api.cost_window_s``) with RATE_LIMITED (HTTP 429,
``Retry-After``). Refused operations run no resolver and spend nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql import GraphQLError as _GraphQLError
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from api.auth import RateLimited
from api.limits import CostBudget
from graphrec.core.errors import ValidationError

OBJECT = 1
ENGINE = 10
# (type, field) pairs whose resolver calls the engine (a round trip or a pipeline run).
ENGINE_FIELDS = frozenset({
    ("Query", "recommendations"), ("Query", "similarItems"), ("Query", "rerank"), ("Query", "popularItems"),
    ("Query", "batchRecommendations"), ("Query", "user"), ("Query", "item"), ("Query", "modelVersions"),
    ("Item", "similar"), ("User", "recentInteractions"), ("User", "recommendations"),
    ("Mutation", "recordInteraction"), ("Mutation", "upsertItem"), ("Mutation", "upsertUser"),
})
SIZE_ARGS = ("first", "limit")
BATCH_ARGS = {("Query", "batchRecommendations"): "userIds"}  # the list is one entry per item of this argument
DEFAULT_LIST = 10  # a list with no size argument (none of ours returns objects that way)


class CostExceeded(ValidationError):
    """The operation costs more than one request may."""


class CostRateLimited(RateLimited):
    """The caller's cost budget for the window is spent."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _arg(node: FieldNode, name: str, variables: Mapping[str, Any]) -> tuple[bool, Any]:
    """(given, value) of an argument as sent: a literal, or a variable's value."""
    for a in node.arguments or ():
        if a.name.value != name:
            continue
        v = a.value
        if isinstance(v, VariableNode):
            return (v.name.value in variables, variables.get(v.name.value))
        if isinstance(v, ListValueNode):
            return True, list(v.values)
        return True, getattr(v, "value", None)
    return False, None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _field_size(parent: str, node: FieldNode, field: Any, variables: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(length of the list this field returns when it is a batch, page size it passes down)."""
    page = None
    for name in SIZE_ARGS:
        if name in field.args:
            given, value = _arg(node, name, variables)
            page = _int(value) if given else _int(field.args[name].default_value)
            if page is None and "itemIds" in field.args:  # rerank without first: all its ids
                _, ids = _arg(node, "itemIds", variables)
                page = len(ids) if isinstance(ids, list) else 1
            elif page is None:  # null or not a number: the default applies (or validation refuses it)
                page = _int(field.args[name].default_value) or DEFAULT_LIST
            break
    batch = None
    if (parent, node.name.value) in BATCH_ARGS:
        _, value = _arg(node, BATCH_ARGS[(parent, node.name.value)], variables)
        batch = len(value) if isinstance(value, list) else 1
    return batch, page


def _fields(sel: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]) -> Iterator[FieldNode]:
    for s in sel.selections:
        if isinstance(s, FieldNode):
            yield s
        elif isinstance(s, InlineFragmentNode):
            yield from _fields(s.selection_set, fragments)
        elif isinstance(s, FragmentSpreadNode) and s.name.value in fragments:
            yield from _fields(fragments[s.name.value].selection_set, fragments)


def _cost(sel: SelectionSetNode, parent: GraphQLObjectType, times: int, page: int | None,
          fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]) -> int:
    """Cost of a selection run ``times`` times; ``page`` is the size a parent passed on to the
    next list below it."""
    total = 0
    for node in _fields(sel, fragments):
        field = parent.fields.get(node.name.value)
        if field is None:  # __typename and the like
            continue
        batch, own_page = _field_size(parent.name, node, field, variables)
        rtype = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if (parent.name, node.name.value) in ENGINE_FIELDS:
            total += ENGINE * times
        n, pass_on = times, page
        if batch is not None:  # one engine run per entry, each entry's lists sized by `first`
            n, pass_on = times * batch, own_page
            total += ENGINE * n
        elif isinstance(rtype, GraphQLList):  # a list consumes its size: its own, else the parent's
            n, pass_on = times * (own_page if own_page is not None else page or DEFAULT_LIST), None
        elif own_page is not None:  # one object whose list(s) the size is for
            pass_on = own_page
        named = get_named_type(rtype)
        if isinstance(named, GraphQLObjectType) and node.selection_set is not None:
            total += OBJECT * n + _cost(node.selection_set, named, n, pass_on, fragments, variables)
    return total


def operation_cost(schema: GraphQLSchema, document: Any, variables: Mapping[str, Any] | None,
                   operation_name: str | None) -> int:
    """The cost of the operation that would run (see the module docstring)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    op = next((o for o in ops if o.name and o.name.value == operation_name), ops[0] if ops else None)
    if op is None:
        return 0
    root = schema.get_root_type(op.operation)
    if root is None:
        return 0
    return _cost(op.selection_set, root, 1, None, fragments, variables or {})


class CostLimiter(SchemaExtension):
    """Refuses an operation over the per-request cost or the caller's budget for the window
    before execution (after validation, so the document is known to be valid)."""

    def __init__(self, *, max_cost: int, budget: CostBudget) -> None:
        self.max_cost = max_cost
        self.budget = budget

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        doc = ec.graphql_document
        if doc is not None and ec.result is None:
            cost = operation_cost(ec.schema._schema, doc, ec.variables, ec.operation_name)
            err: ValidationError | RateLimited | None = None
            if cost > self.max_cost:
                err = CostExceeded(f"query cost {cost} exceeds the limit of {self.max_cost} per request "
                                   "(lower `first`, the batch size, the nesting or the aliases)")
            else:
                ctx = ec.context
                who = _caller(ctx)
                if not self.budget.spend(who, cost):
                    wait = self.budget.retry_after(who, cost)
                    err = CostRateLimited(f"query cost {cost} exceeds what is left of this caller's budget "
                                          f"({self.budget.left(who)} of {self.budget.limit} per "
                                          f"{self.budget.window_s:g} s); retry in {wait} s", wait)
                    response = getattr(ctx, "response", None)
                    if response is not None:
                        response.status_code = 429
                        response.headers["Retry-After"] = str(wait)
            if err is not None:
                ec.result = GraphQLExecutionResult(data=None, errors=[_GraphQLError(str(err), original_error=err)])
        yield


def _caller(ctx: Any) -> str:
    principal = getattr(ctx, "principal", None)
    if principal is not None and principal.key_id:
        return "key:" + principal.key_id
    request = getattr(ctx, "request", None)
    client = getattr(request, "client", None)
    return "addr:" + (client.host if client else "unknown")


__all__ = ["operation_cost", "CostLimiter", "CostExceeded", "CostRateLimited"]
