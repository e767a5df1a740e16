"""Validated rows: what may enter the graph. Pydantic at the boundary, our own errors out.

Strings are stored as data, never executed: a title like ``'); MATCH (n) DETACH DELETE n //``
is just a title. Limits: ids at most 256 characters, other strings at most
``loader.max_string_length``; no NUL or other control characters in ids. Attributes: at most
:data:`MAX_ATTRIBUTES` per row, scalars as they are (integers within 64 bits), lists and objects
as JSON text, every value at most :data:`MAX_ATTRIBUTE_CHARS` characters.

An interaction is also checked against :class:`RowLimits` (``loader.*`` settings): its time may
lie at most ``max_clock_skew_s`` past now (a future event would move the graph's clock, the "now"
of every decay), a rating must lie in ``[rating_min, rating_max]`` and any other type's value in
``[0, other_value_max]`` (one event must not outweigh many ratings). Pass the limits as
``validate(InteractionRow, data, limits)``; without them the code defaults apply.

One module over 400 lines: every row type and the field checks they share (ids, strings, times,
lists, attributes), so that what may enter the graph reads in one place.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from graphrec.core.errors import ValidationError

MAX_ID = 256
MAX_STRING = 4096
MAX_LIST = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PROP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Properties graphrec manages itself; a row may not set them through ``attributes``.
RESERVED_PROPS = frozenset({"id", "created_at", "title", "year", "available", "description"})
# Earliest and latest timestamps accepted (1970 .. 2100); interactions are also bounded by
# RowLimits.max_clock_skew_s past now.
TS_MIN, TS_MAX = 0.0, 4102444800.0
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_CHARS = 1024
_INT64 = 2**63


@dataclass(frozen=True)
class RowLimits:
    """What an interaction may say (the ``loader`` settings of the same names; these defaults are
    the code defaults). ``now`` (epoch seconds) is the clock the skew is measured from: None means
    the wall clock at validation."""

    max_clock_skew_s: float = 300.0
    rating_min: float = 0.0
    rating_max: float = 5.0
    other_value_max: float = 1.0
    now: float | None = None

    @classmethod
    def from_settings(cls, loader: Any) -> RowLimits:
        return cls(loader.max_clock_skew_s, loader.rating_min, loader.rating_max, loader.other_value_max)

    def latest_ts(self) -> float:
        return (self.now if self.now is not None else time.time()) + self.max_clock_skew_s


DEFAULT_LIMITS = RowLimits()


class InteractionType(str, Enum):  # noqa: UP042 - StrEnum would change str(member)
    RATE = "RATED"
    VIEW = "VIEWED"
    CLICK = "CLICKED"
    PURCHASE = "PURCHASED"
    SKIP = "SKIPPED"

    @classmethod
    def parse(cls, value: str) -> InteractionType:
        v = str(value).strip().upper()
        aliases = {"RATE": "RATED", "RATING": "RATED", "VIEW": "VIEWED", "CLICK": "CLICKED",
                   "PURCHASE": "PURCHASED", "BUY": "PURCHASED", "SKIP": "SKIPPED"}
        v = aliases.get(v, v)
        try:
            return cls(v)
        except ValueError:
            raise ValueError(f"unknown interaction type {value!r} (VIEW, CLICK, PURCHASE, RATE, SKIP)") from None


def _check_id(v: Any, what: str) -> str:
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{what} is required")
    if isinstance(v, int | float) and not isinstance(v, bool):
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(f"{what} must be a string")
        v = str(int(v))
    if not isinstance(v, str):
        raise ValueError(f"{what} must be a string")
    v = v.strip()
    if not v:
        raise ValueError(f"{what} is empty")
    if len(v) > MAX_ID:
        raise ValueError(f"{what} is longer than {MAX_ID} characters")
    if _CONTROL.search(v):
        raise ValueError(f"{what} contains control characters")
    return v


def _check_str(v: Any, what: str, limit: int = MAX_STRING) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        v = str(v)
    if len(v) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if "\x00" in v:
        raise ValueError(f"{what} contains a NUL character")
    return v


def parse_ts(v: Any) -> float:
    """Epoch seconds from a number or an ISO-8601 string (with timezone, or UTC assumed)."""
    if isinstance(v, bool) or v is None or v == "":
        raise ValueError("timestamp is required")
    if isinstance(v, int | float):
        ts = float(v)
    else:
        s = str(v).strip()
        try:
            ts = float(s)
        except ValueError:
            try:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"invalid timestamp {s[:40]!r} (epoch seconds or ISO-8601)") from None
            if dt.tzinfo is None:
                from datetime import UTC

                dt = dt.replace(tzinfo=UTC)
            ts = dt.timestamp()
    if not math.isfinite(ts) or not (TS_MIN <= ts <= TS_MAX):
        raise ValueError(f"timestamp {v!r} is out of range")
    return ts


def newest_two(times: Iterable[float]) -> tuple[float, float | None]:
    """The newest time and the newest before it (a different time; None when all are equal): what
    the graph's clock is moved with (``cypher/load/advance_clock.cypher``: the clock is the older
    of the two newest times it was given, so a single outlier cannot move it)."""
    first = second = -math.inf
    for t in times:
        if t > first:
            first, second = t, first
        elif second < t < first:
            second = t
    if first == -math.inf:
        raise ValueError("no times")
    return first, (None if second == -math.inf else second)


def _clean_list(v: Any, what: str) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = [p for p in (x.strip() for x in v.split("|")) if p]
    if not isinstance(v, list | tuple):
        raise ValueError(f"{what} must be a list")
    out: list[str] = []
    for x in v:
        s = _check_str(x, what, 200)
        if s is None or not s.strip():
            continue
        out.append(s.strip())
    if len(out) > MAX_LIST:
        raise ValueError(f"{what} has more than {MAX_LIST} entries")
    return sorted(set(out))


def _clean_attrs(v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError("attributes must be an object")
    if len(v) > MAX_ATTRIBUTES:
        raise ValueError(f"more than {MAX_ATTRIBUTES} attributes")
    out: dict[str, Any] = {}
    for k, x in v.items():
        if not isinstance(k, str) or not _PROP_NAME.match(k) or k in RESERVED_PROPS:
            raise ValueError(f"attribute name {str(k)[:40]!r} is not allowed")
        if x is None:
            continue
        if isinstance(x, bool):
            out[k] = x
        elif isinstance(x, int):
            if not -_INT64 <= x < _INT64:
                raise ValueError(f"attribute {k} is outside the 64-bit integer range")
            out[k] = x
        elif isinstance(x, float):
            if not math.isfinite(x):
                raise ValueError(f"attribute {k} is not a finite number")
            out[k] = x
        elif isinstance(x, dict | list | tuple):
            # Nested values are stored as JSON text (never Python's repr), which any client can parse.
            try:
                text = json.dumps(x, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError):
                raise ValueError(f"attribute {k} is not plain JSON") from None
            out[k] = _check_str(text, f"attribute {k} (as JSON)", MAX_ATTRIBUTE_CHARS)
        else:
            out[k] = _check_str(x, f"attribute {k}", MAX_ATTRIBUTE_CHARS)
    return out


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _EntityRow(_Row):
    """What users and items share: an id, an optional creation time, free attributes."""

    kind: ClassVar[str] = "entity"
    id: str
    created_at: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        return _check_id(v, f"{cls.kind} id")

    @field_validator("created_at", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> float | None:
        return None if v in (None, "") else parse_ts(v)

    @field_validator("attributes", mode="before")
    @classmethod
    def _attrs(cls, v: Any) -> dict[str, Any]:
        return _clean_attrs(v)


class UserRow(_EntityRow):
    kind: ClassVar[str] = "user"

    def to_param(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "props": dict(self.attributes)}


class ItemRow(_EntityRow):
    kind: ClassVar[str] = "item"
    title: str | None = None
    year: int | None = None
    available: bool | None = None
    description: str | None = None
    categories: list[str] | None = None
    tags: list[str] | None = None

    @field_validator("title", "description", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str | None:
        return _check_str(v, "text")

    @field_validator("year", mode="before")
    @classmethod
    def _year(cls, v: Any) -> int | None:
        if v in (None, ""):
            return None
        try:
            y = int(str(v).strip())
        except ValueError:
            raise ValueError(f"year {str(v)[:20]!r} is not an integer") from None
        if not 1800 <= y <= 2200:
            raise ValueError(f"year {y} is out of range")
        return y

    @field_validator("available", mode="before")
    @classmethod
    def _available(cls, v: Any) -> bool | None:
        if v in (None, ""):
            return None
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in ("1", "true", "yes", "y"):
            return True
        if s in ("0", "false", "no", "n"):
            return False
        raise ValueError(f"available {s[:20]!r} is not a boolean")

    @field_validator("categories", "tags", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> list[str] | None:
        return _clean_list(v, "categories/tags")

    def to_param(self) -> dict[str, Any]:
        props: dict[str, Any] = dict(self.attributes)
        for k in ("title", "year", "available", "description"):
            v = getattr(self, k)
            if v is not None:
                props[k] = v
        return {"id": self.id, "props": props, "created_at": self.created_at,
                "categories": self.categories, "tags": self.tags}


class InteractionRow(_Row):
    user_id: str
    item_id: str
    type: InteractionType
    ts: float
    value: float | None = None
    dwell_seconds: float | None = None
    session_id: str | None = None
    key: str | None = None

    @field_validator("user_id", mode="before")
    @classmethod
    def _uid(cls, v: Any) -> str:
        return _check_id(v, "user id")

    @field_validator("item_id", mode="before")
    @classmethod
    def _iid(cls, v: Any) -> str:
        return _check_id(v, "item id")

    @field_validator("session_id", "key", mode="before")
    @classmethod
    def _opt_id(cls, v: Any) -> str | None:
        return None if v in (None, "") else _check_id(v, "session id / key")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> InteractionType:
        return v if isinstance(v, InteractionType) else InteractionType.parse(v)

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, v: Any, info: ValidationInfo) -> float:
        ts = parse_ts(v)
        limits: RowLimits = (info.context or {}).get("limits", DEFAULT_LIMITS)
        if ts > limits.latest_ts():
            raise ValueError(f"timestamp {v!r} is in the future (more than {limits.max_clock_skew_s:g} s past now)")
        return ts

    @field_validator("value", "dwell_seconds", mode="before")
    @classmethod
    def _num(cls, v: Any) -> float | None:
        if v in (None, ""):
            return None
        if isinstance(v, bool):
            raise ValueError("must be a number")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{str(v)[:20]!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError("must be a finite number")
        return f

    @model_validator(mode="after")
    def _ranges(self, info: ValidationInfo) -> InteractionRow:
        limits: RowLimits = (info.context or {}).get("limits", DEFAULT_LIMITS)
        if self.type is InteractionType.RATE:
            if self.value is None:
                raise ValueError("a RATE interaction needs a value")
            if not limits.rating_min <= self.value <= limits.rating_max:
                raise ValueError(f"value: a rating must be between {limits.rating_min:g} and {limits.rating_max:g}")
        elif self.value is not None and not 0.0 <= self.value <= limits.other_value_max:
            raise ValueError(f"value: a {self.type.name} value must be between 0 and {limits.other_value_max:g}")
        if self.dwell_seconds is not None and not 0 <= self.dwell_seconds <= 86400 * 7:
            raise ValueError("dwellSeconds must be between 0 and 604800")
        return self

    @property
    def idempotency_key(self) -> str:
        """The client's key, else one derived from what the interaction is."""
        return self.key or interaction_key(self.user_id, self.item_id, self.type.value, self.ts, self.session_id)

    def to_param(self) -> dict[str, Any]:
        return {"key": self.idempotency_key, "user": self.user_id, "item": self.item_id, "ts": self.ts,
                "value": self.value, "dwell": self.dwell_seconds, "session": self.session_id}


def interaction_key(user: str, item: str, type: str, ts: float, session: str | None) -> str:
    """The idempotency key of an interaction that came without one: a hash of what it is (who,
    what, which kind, when, in which session), so loading the same event twice finds it."""
    raw = "\x1f".join([user, item, type, repr(ts), session or ""])
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def validate(model: type[_Row], data: dict[str, Any], limits: RowLimits | None = None) -> Any:
    """Validate one row, turning pydantic's error into ours with the field named (``value`` for
    an out-of-range value)."""
    try:
        return model.model_validate(data, context={"limits": limits or DEFAULT_LIMITS})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        if field is None and msg.startswith("value: "):
            field, msg = "value", msg.removeprefix("value: ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise ValidationError(msg, field=field) from None
