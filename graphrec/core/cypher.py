"""The Cypher library: every query is a file ``cypher/<area>/<name>.cypher``, loaded by name.

Values are always ``$parameters``. The few identifiers that Cypher cannot take as parameters
(relationship types of interactions, labels) are written ``{{rel}}`` / ``{{label}}`` in the file
and filled by :meth:`Query.render` only from the allowlists below, backtick-escaped. User input
never reaches a query string.

Each file starts with a header of ``//`` comments: what it returns and its parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from graphrec.core.errors import ValidationError

CYPHER_DIR = Path(__file__).resolve().parent.parent / "cypher"

#: Interaction relationship types, the only relationship types a template may receive.
INTERACTION_TYPES: tuple[str, ...] = ("RATED", "VIEWED", "CLICKED", "PURCHASED", "SKIPPED")
#: Node labels a template may receive.
LABELS: tuple[str, ...] = ("User", "Item", "Tag", "Category", "Session", "Entity")
#: Materialised item→item neighbour relationship types (written by ``graphrec refresh-neighbours``).
NEIGHBOUR_TYPES: tuple[str, ...] = ("CO_INTERACTED", "SIMILAR_CONTENT")
ALLOWED_IDENTIFIERS: dict[str, tuple[str, ...]] = {"rel": INTERACTION_TYPES, "label": LABELS, "nrel": NEIGHBOUR_TYPES}

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SLOT = re.compile(r"\{\{(\w+)\}\}")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


@dataclass(frozen=True)
class Query:
    """One Cypher file: its name, text and the ``$parameters`` it expects."""

    name: str
    text: str
    header: str

    @property
    def params(self) -> frozenset[str]:
        body = _STRING.sub("''", _strip_comments(self.text))
        return frozenset(_PARAM.findall(body))

    @property
    def slots(self) -> frozenset[str]:
        return frozenset(_SLOT.findall(self.text))

    def render(self, **identifiers: str) -> str:
        """The query text with its ``{{slot}}`` identifiers filled from the allowlists."""
        missing = self.slots - identifiers.keys()
        if missing:
            raise ValidationError(f"query {self.name} needs identifiers {sorted(missing)}")

        def fill(m: re.Match[str]) -> str:
            slot = m.group(1)
            value = identifiers[slot]
            if value not in ALLOWED_IDENTIFIERS.get(slot, ()):
                raise ValidationError(f"{value!r} is not an allowed {slot}", field=slot)
            return f"`{value}`"

        return _SLOT.sub(fill, self.text)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] if not line.lstrip().startswith("//") else "" for line in text.splitlines())


@cache
def load(name: str) -> Query:
    """Load ``cypher/<name>.cypher``; ``name`` is e.g. ``"recs/co_interaction"``."""
    if not re.fullmatch(r"[a-z0-9_]+(/[a-z0-9_]+)*", name):
        raise ValidationError(f"bad query name {name!r}")
    path = CYPHER_DIR / f"{name}.cypher"
    if not path.is_file():
        raise ValidationError(f"no query named {name!r} ({path})")
    text = path.read_text(encoding="utf-8")
    header = "\n".join(
        line[2:].strip() for line in text.splitlines() if line.startswith("//")
    )
    return Query(name=name, text=text, header=header)


def all_queries() -> list[Query]:
    """Every query in the library, sorted by name."""
    names = sorted(
        str(p.relative_to(CYPHER_DIR).with_suffix("")) for p in CYPHER_DIR.rglob("*.cypher")
    )
    return [load(n) for n in names]
