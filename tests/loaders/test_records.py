"""Row validation at the boundary: clear errors naming the field; hostile strings stay data."""

from __future__ import annotations

import pytest

from graphrec.core.errors import ValidationError
from graphrec.core.records import (
    InteractionRow,
    InteractionType,
    ItemRow,
    UserRow,
    parse_ts,
    validate,
)


def test_interaction_types_and_aliases() -> None:
    r = validate(InteractionRow, {"user_id": "u", "item_id": 5, "type": "click", "ts": "2024-01-02T03:04:05Z"})
    assert r.type is InteractionType.CLICK and r.item_id == "5"
    assert r.ts == pytest.approx(1704164645.0)
    with pytest.raises(ValidationError) as e:
        validate(InteractionRow, {"user_id": "u", "item_id": "i", "type": "LIKE", "ts": 1})
    assert e.value.field == "type" and "unknown interaction type" in str(e.value)


@pytest.mark.parametrize("data, field", [
    ({"user_id": "", "item_id": "i", "type": "VIEW", "ts": 1}, "user_id"),
    ({"user_id": "u" * 300, "item_id": "i", "type": "VIEW", "ts": 1}, "user_id"),
    ({"user_id": "a\x00b", "item_id": "i", "type": "VIEW", "ts": 1}, "user_id"),
    ({"user_id": "u", "item_id": ["x"], "type": "VIEW", "ts": 1}, "item_id"),
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": "yesterday"}, "ts"),
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": -5}, "ts"),
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": float("nan")}, "ts"),
    ({"user_id": "u", "item_id": "i", "type": "RATE", "ts": 1}, None),  # a rating needs a value
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": 1, "dwell_seconds": -3}, None),
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": 1, "value": "lots"}, "value"),
    ({"user_id": "u", "item_id": "i", "type": "VIEW", "ts": 1, "surprise": 1}, "surprise"),
])
def test_bad_interactions_name_the_field(data: dict, field: str | None) -> None:
    with pytest.raises(ValidationError) as e:
        validate(InteractionRow, data)
    assert e.value.field == field


def test_cypher_looking_strings_are_plain_data() -> None:
    evil = "x') DETACH DELETE n //`]->(:User {id:'"
    it = validate(ItemRow, {"id": evil, "title": "MATCH (n) DETACH DELETE n", "categories": "a|b`c|a"})
    assert it.id == evil and it.title == "MATCH (n) DETACH DELETE n"
    assert it.categories == ["a", "b`c"]
    assert it.to_param()["props"]["title"] == "MATCH (n) DETACH DELETE n"


def test_item_fields() -> None:
    it = validate(ItemRow, {"id": "1", "year": "1995", "available": "no", "tags": ["x", " ", "y"]})
    assert it.year == 1995 and it.available is False and it.tags == ["x", "y"]
    for bad in ({"id": "1", "year": "nineteen"}, {"id": "1", "available": "maybe"},
                {"id": "1", "title": "t" * 5000}, {"id": "1", "attributes": {"bad name": 1}},
                {"id": "1", "attributes": {"id": "override"}}):
        with pytest.raises(ValidationError):
            validate(ItemRow, bad)


def test_user_attributes_are_scalars_with_safe_names() -> None:
    u = validate(UserRow, {"id": "7", "attributes": {"age": 31, "zip": "02139"}})
    assert u.to_param() == {"id": "7", "created_at": None, "props": {"age": 31, "zip": "02139"}}
    with pytest.raises(ValidationError):
        validate(UserRow, {"id": "7", "attributes": {"n`x": 1}})


def test_idempotency_key_is_stable_and_client_key_wins() -> None:
    base = {"user_id": "u", "item_id": "i", "type": "VIEW", "ts": 10}
    assert validate(InteractionRow, base).idempotency_key == validate(InteractionRow, dict(base)).idempotency_key
    assert validate(InteractionRow, {**base, "ts": 11}).idempotency_key != validate(InteractionRow, base).idempotency_key
    assert validate(InteractionRow, {**base, "key": "client-1"}).idempotency_key == "client-1"


def test_parse_ts_accepts_epoch_and_iso() -> None:
    assert parse_ts("1700000000") == 1700000000.0
    assert parse_ts("2023-11-14T22:13:20+00:00") == 1700000000.0
    assert parse_ts("2023-11-14T22:13:20") == 1700000000.0  # naive = UTC


def test_future_interactions_are_refused_with_the_field_named() -> None:
    """Issue 21: one VIEW stamped 2099 moved the graph's clock and wrecked every user's history."""
    import time

    from graphrec.core.records import RowLimits

    with pytest.raises(ValidationError) as e:
        validate(InteractionRow, {"user_id": "x", "item_id": "50", "type": "VIEW", "ts": "2099-12-31T00:00:00Z"})
    assert e.value.field == "ts" and "in the future" in str(e.value)
    now = time.time()
    validate(InteractionRow, {"user_id": "x", "item_id": "50", "type": "VIEW", "ts": now + 200})  # within the skew
    with pytest.raises(ValidationError):
        validate(InteractionRow, {"user_id": "x", "item_id": "50", "type": "VIEW", "ts": now + 200},
                 RowLimits(max_clock_skew_s=60.0))


@pytest.mark.parametrize("type_, value, ok", [
    ("RATE", 5.0, True), ("RATE", 0.5, True), ("RATE", 6.0, False), ("RATE", 1e6, False), ("RATE", -1.0, False),
    ("CLICK", -95464.0, False), ("VIEW", 0.7, True), ("PURCHASE", 40.0, False), ("SKIP", None, True),
])
def test_values_are_bounded_per_type(type_: str, value: float | None, ok: bool) -> None:
    """One event must not outweigh many ratings: a rating within [rating_min, rating_max], any
    other type's value within [0, other_value_max]."""
    data = {"user_id": "u", "item_id": "i", "type": type_, "ts": 1, "value": value}
    if ok:
        assert validate(InteractionRow, data).value == value
    else:
        with pytest.raises(ValidationError) as e:
            validate(InteractionRow, data)
        assert e.value.field == "value"


def test_nested_attributes_are_json_and_attributes_are_capped() -> None:
    import json

    from graphrec.core.records import MAX_ATTRIBUTES

    u = validate(UserRow, {"id": "7", "attributes": {"prefs": {"b": [1, 2], "a": "x"}, "tags": ["p", "q"]}})
    props = u.to_param()["props"]
    assert json.loads(props["prefs"]) == {"a": "x", "b": [1, 2]} and json.loads(props["tags"]) == ["p", "q"]
    for bad in ({f"a{k}": k for k in range(MAX_ATTRIBUTES + 1)}, {"big": 2**63}, {"long": "x" * 1025},
                {"deep": {"x": "y" * 1100}}):
        with pytest.raises(ValidationError) as e:
            validate(UserRow, {"id": "7", "attributes": bad})
        assert e.value.field == "attributes"
