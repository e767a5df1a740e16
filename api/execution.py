"""The GraphQL executor: Strawberry's, with plain leaf fields completed in one step.

A ``recommendations(first: 20)`` page asks for about a hundred fields, and four in five of them
are leaves read straight off an object (``rank``, ``score``, ``id``, ``title``). graphql-core runs
each through the general path: a ``ResolveInfo`` built, Strawberry's attribute resolver called
through it, the awaitable checks, then ``complete_value``'s dispatch over non-null, list, leaf
and object types before the type's ``coerce_output_value``. For a field that Strawberry itself
would answer with its default resolver (no resolver of ours, no arguments, no field extension)
and whose type is a scalar or an enum, :class:`LeafExecutor` reads the attribute and coerces it
directly.

The answer is the same by construction: the same getter (Strawberry's ``default_resolver``, given
the field's Python name) and the same ``coerce_output_value``. Whatever the shortcut would have
to decide differently is handed to the general path, which then does exactly what it always did:
a null for a non-null field (its error), a value the type refuses or maps to null, an exception
from the getter, and any request whose extensions resolve fields (graphql-core middleware).
tests/api/test_execution.py compares the two executors' answers over documents that exercise
these cases.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, is_leaf_type, is_non_null_type
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter


class LeafPlan(NamedTuple):
    get: Callable[[Any, str], Any]  # Strawberry's default resolver (getattr unless configured)
    name: str  # the attribute (the field's Python name)
    coerce: Callable[[Any], Any]  # the type's coerce_output_value, as complete_leaf_value calls it
    non_null: bool


#: Per schema: ``(parent type name, field name) -> LeafPlan`` or None (not a plain leaf).
_PLANS: weakref.WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], LeafPlan | None]] = weakref.WeakKeyDictionary()


def leaf_plan(field_def: GraphQLField | None) -> LeafPlan | None:
    """How to complete ``field_def`` directly, or None when only the general path may."""
    if field_def is None or field_def.args or not getattr(field_def.resolve, "_is_default", False):
        return None
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or definition.base_resolver is not None or definition.extensions:
        return None
    t = field_def.type
    non_null = is_non_null_type(t)
    base = t.of_type if non_null else t  # type: ignore[union-attr]
    if not is_leaf_type(base):
        return None
    return LeafPlan(definition.default_resolver, definition.python_name, base.coerce_output_value, non_null)


class LeafExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; a plain leaf field is read and coerced in one step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plans = _PLANS.get(self.schema)
        if plans is None:
            plans = _PLANS[self.schema] = {}
        self._plans = plans
        # Extensions that resolve fields run as graphql-core middleware around every resolver.
        self._direct = not (self.middleware_manager and self.middleware_manager.middlewares)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:
        name = field_details_list[0].node.name.value
        key = (parent_type.name, name)
        try:
            plan = self._plans[key]
        except KeyError:
            plan = self._plans[key] = leaf_plan(self.schema.get_field(parent_type, name))
        if plan is not None and self._direct:
            try:
                value = plan.get(source, plan.name)
                if value is None:
                    if not plan.non_null:
                        return None
                else:
                    out = plan.coerce(value)
                    if out is not None and out is not Undefined:
                        return out
            except Exception:  # noqa: BLE001 - the general path raises it again, located in the answer
                pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)


__all__ = ["LeafExecutor", "LeafPlan", "leaf_plan"]
