"""CSV and JSON Lines readers for users, items and interactions.

Each reader yields ``(row, Source)`` pairs where ``row`` is a validated record or a
:class:`BadRowError` naming the file, the line and the reason (invalid UTF-8, malformed CSV or
JSON, a missing or wrongly typed field). The writer decides whether to skip or stop.

CSV columns (header required; unknown columns become attributes for users and items):

- users: ``id``, ``created_at``, any attribute columns;
- items: ``id``, ``title``, ``year``, ``available``, ``description``, ``categories`` and ``tags``
  (``|``-separated), ``created_at``, any attribute columns;
- interactions: ``user_id``, ``item_id``, ``type`` (VIEW, CLICK, PURCHASE, RATE, SKIP), ``ts``
  (epoch seconds or ISO-8601), ``value``, ``dwell_seconds``, ``session_id``, ``key``.

JSON Lines: one object per line with the same field names (``categories``/``tags`` as arrays,
``attributes`` as an object; ``userId``/``itemId``-style camelCase names are accepted too).

Forgiving: an invalid value of an optional field (an item's ``year`` = ``unkonwn``, a user's
``created_at`` = ``soon``) drops that field with a :class:`FieldWarning` (file, line, field,
value, reason) appended to the reader's ``warnings`` list; the row is kept. Items read from a file
without ``created_at`` are marked "created: unknown" (never fresh) until ``graphrec load``
sets it to their first interaction (``load/created_from_first_interaction``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from graphrec.core.errors import BadRowError, ValidationError
from graphrec.core.records import InteractionRow, ItemRow, RowLimits, UserRow, validate
from loaders.writer import Item, Source

Kind = Literal["users", "items", "interactions"]
MODELS: dict[Kind, type[UserRow] | type[ItemRow] | type[InteractionRow]] = {
    "users": UserRow, "items": ItemRow, "interactions": InteractionRow}
KNOWN = {
    "users": {"id", "created_at"},
    "items": {"id", "title", "year", "available", "description", "categories", "tags", "created_at"},
    "interactions": {"user_id", "item_id", "type", "ts", "value", "dwell_seconds", "session_id", "key"},
}
#: Fields dropped with a warning when their value is invalid (the row is kept without them).
OPTIONAL: dict[Kind, frozenset[str]] = {
    "users": frozenset({"created_at"}),
    "items": frozenset({"year", "available", "description", "created_at"}),
    "interactions": frozenset({"dwell_seconds"}),
}
MAX_LINE = 1 << 20  # 1 MiB per line


@dataclass(frozen=True)
class FieldWarning:
    """An optional field's invalid value, dropped; the row was loaded without it."""

    file: str
    line: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: dropped {self.field}={self.value!r} ({self.reason})"


class FileItemRow(ItemRow):
    """An item read from a file: without ``created_at`` its creation time is unknown (not "now"),
    so the ``fresh`` source never calls it new; its first interaction supplies it later."""

    def to_param(self) -> dict[str, Any]:
        return {**super().to_param(), "created_unknown": self.created_at is None}


def _validate(kind: Kind, data: dict[str, Any], path: Path, n: int, warnings: list[FieldWarning] | None,
              limits: RowLimits | None = None) -> Any:
    """Validate a shaped row; an optional field's bad value is dropped with a warning."""
    model = FileItemRow if kind == "items" else MODELS[kind]
    for _ in range(len(OPTIONAL[kind]) + 1):
        try:
            return validate(model, data, limits)
        except ValidationError as exc:
            field = exc.field
            if field not in OPTIONAL[kind] or data.get(field) is None:
                raise
            reason = str(exc).removeprefix(f"{field}: ")
            if warnings is not None:
                warnings.append(FieldWarning(str(path), n, field, str(data[field])[:80], reason))
            data = {**data, field: None}
    return validate(model, data, limits)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _shape(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """Map a raw record onto the row model: known fields as they are, the rest as attributes."""
    data = {_snake(str(k)).strip(): v for k, v in data.items()}
    if kind == "interactions":
        if "timestamp" in data and "ts" not in data:
            data["ts"] = data.pop("timestamp")
        if "dwell" in data and "dwell_seconds" not in data:
            data["dwell_seconds"] = data.pop("dwell")
        return data
    known = KNOWN[kind]
    out = {k: v for k, v in data.items() if k in known}
    attrs = dict(data.get("attributes") or {}) if isinstance(data.get("attributes"), dict) else {}
    if "attributes" in data and not isinstance(data["attributes"], dict | type(None)):
        out["attributes"] = data["attributes"]  # let validation refuse it
    else:
        for k, v in data.items():
            if k not in known and k != "attributes" and v not in (None, ""):
                attrs[k] = v
        out["attributes"] = attrs
    return out


def _lines(path: Path) -> Iterator[tuple[int, str | BadRowError]]:
    """Decoded lines with their 1-based numbers; undecodable lines become errors."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if len(raw) > MAX_LINE:
                yield n, BadRowError(str(path), n, f"line longer than {MAX_LINE} bytes")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, BadRowError(str(path), n, f"invalid UTF-8 at byte {exc.start}")
                continue
            if n == 1:
                text = text.removeprefix("\ufeff")
            yield n, text


def read_jsonl(path: Path, kind: Kind, warnings: list[FieldWarning] | None = None,
               limits: RowLimits | None = None) -> Iterator[Item]:
    for n, line in _lines(path):
        src = Source(str(path), n)
        if isinstance(line, BadRowError):
            yield line, src
            continue
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadRowError(str(path), n, f"malformed JSON: {exc.msg}"), src
            continue
        if not isinstance(data, dict):
            yield BadRowError(str(path), n, "expected a JSON object"), src
            continue
        try:
            yield _validate(kind, _shape(kind, data), path, n, warnings, limits), src
        except ValidationError as exc:
            yield BadRowError(str(path), n, str(exc)), src


def read_csv(path: Path, kind: Kind, warnings: list[FieldWarning] | None = None,
             limits: RowLimits | None = None) -> Iterator[Item]:
    lines = _lines(path)
    header: list[str] | None = None
    for n, line in lines:
        src = Source(str(path), n)
        if isinstance(line, BadRowError):
            if header is None:
                raise line
            yield line, src
            continue
        if not line.strip():
            continue
        try:
            fields = next(csv.reader(io.StringIO(line), strict=True))
        except (csv.Error, StopIteration) as exc:
            yield BadRowError(str(path), n, f"malformed CSV: {exc}"), src
            continue
        if header is None:
            header = [_snake(h.strip()) for h in fields]
            required = {"users": {"id"}, "items": {"id"}, "interactions": {"user_id", "item_id", "type", "ts"}}[kind]
            missing = required - set(header)
            if missing:
                raise BadRowError(str(path), n, f"header lacks column(s) {sorted(missing)}")
            continue
        if len(fields) != len(header):
            yield BadRowError(str(path), n, f"expected {len(header)} fields, found {len(fields)}"), src
            continue
        data = {k: (v if v != "" else None) for k, v in zip(header, fields, strict=True)}
        try:
            yield _validate(kind, _shape(kind, data), path, n, warnings, limits), src
        except ValidationError as exc:
            yield BadRowError(str(path), n, str(exc)), src


def read_file(path: Path, kind: Kind, warnings: list[FieldWarning] | None = None,
              limits: RowLimits | None = None) -> Iterator[Item]:
    """Read a ``.csv`` or ``.jsonl``/``.ndjson`` file of ``kind`` rows (dropped optional fields:
    ``warnings``; interactions checked against ``limits``, default the code defaults: see
    graphrec.core.records)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", field="path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, kind, warnings, limits)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, kind, warnings, limits)
    raise ValidationError(f"unsupported file type {suffix!r} (use .csv or .jsonl)", field="path")


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
