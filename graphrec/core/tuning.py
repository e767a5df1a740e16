"""Settings a user sets versus internal tuning.

Tuning fields (declared with :func:`tuning`) are overridable like any other setting (the file,
``GRAPHREC_<SECTION>_<KEY>``), but the reference config lists them apart, in a ``[<section>.tuning]``
table: values measured on benchmarks (scan duty cycles, pool sizes, GC thresholds, training
hyper-parameters), to change with a benchmark at hand. A config file may put them in either
place; :func:`fold_tuning` merges the tables before validation.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

from graphrec.core.errors import ConfigError

TABLE = "tuning"


def tuning(default: Any, **constraints: Any) -> Any:
    """A field for internal tuning (``ge``/``le``... as for :func:`pydantic.Field`)."""
    return Field(default, json_schema_extra={TABLE: True}, **constraints)


def is_tuning(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(TABLE))


def fold_tuning(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``data`` with every ``tuning`` table merged into the table that holds it (nested tables too)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == TABLE and isinstance(value, dict):
            continue
        out[key] = fold_tuning(value, f"{where}{key}.") if isinstance(value, dict) else value
    inner = data.get(TABLE)
    if isinstance(inner, dict):
        for key, value in inner.items():
            if key in out:
                raise ConfigError(f"{where}{key} is set both in [{where}{TABLE}] and beside it: keep one")
            out[key] = fold_tuning(value, f"{where}{key}.") if isinstance(value, dict) else value
    return out
