"""What every vector engine provides, and the types it speaks.

Results contract, the same for every engine: ``search`` returns at most ``k`` hits, best first,
``score`` = cosine similarity, every hit satisfying the filter; ids are graphrec's string ids
(engines that need integer or UUID point ids keep the string in the payload and map it back).
Collections are addressed by name or by alias; ``set_alias`` switches atomically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

PAYLOAD_ID = "gid"  # the payload key holding graphrec's string id


def point_id(item_id: str) -> int:
    """A stable unsigned 63-bit point id for a graphrec id (blake2b)."""
    return int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class VectorFilter:
    categories_any: list[str] | None = None
    exclude_categories: list[str] | None = None
    exclude_ids: list[str] = field(default_factory=list)
    available_only: bool = True
    year_min: int | None = None
    year_max: int | None = None

    def matches(self, item_id: str, payload: dict[str, Any]) -> bool:
        """The reference semantics (used by tests and by brute-force fallbacks)."""
        cats = set(payload.get("categories") or ())
        if self.categories_any and not cats & set(self.categories_any):
            return False
        if self.exclude_categories and cats & set(self.exclude_categories):
            return False
        if item_id in set(self.exclude_ids):
            return False
        if self.available_only and not payload.get("available", True):
            return False
        year = payload.get("year")
        if self.year_min is not None and (year is None or year < self.year_min):
            return False
        if self.year_max is not None and (year is None or year > self.year_max):
            return False
        return True


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


class VectorIndex(Protocol):
    def create_collection(self, name: str, dim: int) -> None: ...
    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None: ...
    def finalize(self, collection: str) -> None: ...
    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]: ...
    def get_vectors(self, name: str, ids: list[str]) -> dict[str, np.ndarray]: ...
    def set_alias(self, alias: str, collection: str) -> None: ...
    def get_alias(self, alias: str) -> str | None: ...
    def list_collections(self) -> list[str]: ...
    def delete_collection(self, name: str) -> None: ...
    def count(self, name: str) -> int: ...
    def healthy(self) -> bool: ...
    def close(self) -> None: ...
