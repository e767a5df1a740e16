"""LeafExecutor (api/execution.py) answers exactly as Strawberry's own executor does, and takes its
shortcut only for plain leaf fields."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NewType

import pytest
import strawberry
from graphql import ExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.execution import LeafExecutor, leaf_plan

Picky = strawberry.scalar(NewType("Picky", object), serialize=lambda v: None if v == "none" else int(v),
                          parse_value=lambda v: v)


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Thing:
    id: strawberry.ID
    name: str | None
    count: int
    weight: float
    on: bool
    colour: Colour
    maybe_colour: Colour | None
    picky: Picky | None  # type: ignore[valid-type]
    must: str  # set to None below: the non-null error
    tags: list[str]
    _boom: strawberry.Private[bool] = False

    @strawberry.field
    def shout(self) -> str:
        return (self.name or "").upper()

    @strawberry.field
    def repeat(self, times: int = 2) -> str:
        return (self.name or "") * times

    @strawberry.field
    def exploding(self) -> str | None:
        raise ValueError("exploded")


@dataclass
class Raw:
    """A source object whose attribute read raises."""

    id: str = "r"

    @property
    def name(self) -> str:
        raise RuntimeError("no name here")


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing]:
        return [
            Thing(id=strawberry.ID("1"), name="a", count=1, weight=0.5, on=True, colour=Colour.RED,
                  maybe_colour=None, picky="7", must="x", tags=["t"]),
            Thing(id=strawberry.ID("2"), name=None, count=2, weight=1e-9, on=False, colour=Colour.BLUE,
                  maybe_colour=Colour.BLUE, picky="none", must="y", tags=[]),
            Thing(id=strawberry.ID("3"), name="c", count=3, weight=2.0, on=True, colour=Colour.RED,
                  maybe_colour=Colour.RED, picky="not a number", must="z", tags=["u", "v"]),
        ]

    @strawberry.field
    def broken(self) -> Thing:
        return Thing(id=strawberry.ID("9"), name="b", count=0, weight=0.0, on=False, colour=Colour.RED,
                     maybe_colour=None, picky=None, must=None, tags=[])  # type: ignore[arg-type]

    @strawberry.field
    def wrong_colour(self) -> Thing:
        return Thing(id=strawberry.ID("8"), name="w", count=0, weight=0.0, on=False, colour="green",  # type: ignore[arg-type]
                     maybe_colour=None, picky=None, must="m", tags=[])

    @strawberry.field
    def raw(self) -> Thing:
        return Raw()  # type: ignore[return-value]


DOCUMENTS = [
    "{ things { id name count weight on colour maybeColour tags shout } }",
    "{ things { picky } }",
    "{ things { a: name b: name n: count __typename } }",
    "query($s: Boolean!) { things { id name @skip(if: $s) count @include(if: $s) } }",
    "{ things { ...F } } fragment F on Thing { id colour ... on Thing { weight } }",
    "{ things { repeat(times: 3) exploding } }",
    "{ broken { id must } }",
    "{ broken { id } wrongColour { colour } }",
    "{ raw { id name } }",
]


def schema(executor: Any, extensions: list[Any] | None = None) -> strawberry.Schema:
    return strawberry.Schema(query=Query, execution_context_class=executor, extensions=extensions or [])


def answer(result: ExecutionResult) -> tuple[Any, list[tuple[str, Any]]]:
    return result.data, sorted((e.message, e.path) for e in result.errors or [])


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_answers_are_strawberrys_own(document: str) -> None:
    variables = {"s": True}
    ours = answer(schema(LeafExecutor).execute_sync(document, variable_values=variables))
    theirs = answer(schema(None).execute_sync(document, variable_values=variables))
    assert ours == theirs
    assert ours[0] is not None or ours[1]  # every document answers something


class Counting(StrawberryGraphQLCoreExecutionContext):
    """Counts the fields that reach graphql-core's general path."""

    general: list[str] = []

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, path: Any, position_context: Any) -> Any:
        Counting.general.append(f"{parent_type.name}.{field_details_list[0].node.name.value}")
        return super().execute_field(parent_type, source, field_details_list, path, position_context)


class FastCounting(LeafExecutor, Counting):
    pass


def test_plain_leaves_take_the_shortcut_and_everything_else_the_general_path() -> None:
    Counting.general = []
    res = schema(FastCounting).execute_sync("{ things { id name count colour maybeColour tags shout repeat picky } }")
    assert res.errors is None or all("picky" in str(e.path) for e in res.errors)
    general = set(Counting.general)
    # Lists, resolvers, fields with arguments, and leaves whose value the shortcut hands back (a
    # value the scalar maps to null or refuses) go the general path.
    assert {"Query.things", "Thing.tags", "Thing.shout", "Thing.repeat", "Thing.picky"} <= general
    assert not {"Thing.id", "Thing.count", "Thing.colour", "Thing.name", "Thing.maybeColour"} & general
    assert Counting.general.count("Thing.picky") == 2  # "none" and "not a number"; "7" went directly
    Counting.general = []
    res = schema(FastCounting).execute_sync("{ broken { id must } }")
    assert res.errors and Counting.general == ["Query.broken", "Thing.must"]  # a null for a non-null field


def test_extensions_that_resolve_fields_see_every_field() -> None:
    seen: list[str] = []

    class Watch(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    res = schema(LeafExecutor, [Watch]).execute_sync("{ things { id count } }")
    assert res.errors is None
    assert seen.count("id") == 3 and seen.count("count") == 3


def test_plans_of_the_api_schema() -> None:
    from api.schema import build_schema
    from graphrec.core.config import Settings

    gs = build_schema(Settings().api)._schema
    item, rec = gs.get_type("Item"), gs.get_type("Recommendation")
    assert leaf_plan(item.fields["title"]) is not None and leaf_plan(rec.fields["score"]) is not None
    assert leaf_plan(rec.fields["item"]) is None  # a resolver of ours
    assert leaf_plan(item.fields["similar"]) is None  # arguments
    assert leaf_plan(item.fields["categories"]) is None  # a list
