"""What every vector engine provides, and the types it speaks.

The contract, the same for every engine (``tests/vectors/test_contract.py`` checks it on each):

- ``search`` returns at most ``k`` hits, best first, ``score`` = cosine similarity, every hit
  satisfying the filter. Engines may be approximate (HNSW); on data below their indexing
  threshold, or before ``finalize``, they search exactly.
- ids are graphrec's string ids. Engines that need integer point ids use :func:`point_id` (a
  stable 63-bit hash) and keep the string under ``PAYLOAD_ID`` in the payload.
- A collection is built once (``create_collection``, ``upsert`` in batches, ``finalize``) and
  then read; to change it, build a new one and move the alias. ``set_alias`` is atomic: a reader
  sees the old collection or the new one, never a half-built one.
- Vectors are stored L2-normalised (cosine), so ``get_vectors`` returns unit vectors.
- Failures are :class:`~graphrec.core.errors.VectorStoreError`: ``CollectionNotFound`` for an unknown
  name or alias, ``VectorStoreUnavailable`` when the engine cannot be reached (retryable).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

PAYLOAD_ID = "gid"
"""The payload key holding graphrec's string id."""

PAYLOAD_FIELDS = ("categories", "tags", "available", "popularity", "year")
"""The payload graphrec stores per item: categories/tags ``list[str]``, available ``bool``,
popularity ``float``, year ``int | None``. Filters use categories, available and year."""


def point_id(item_id: str) -> int:
    """A stable unsigned point id for a graphrec id: blake2b-64, top bit cleared (fits int64 too).

    Collisions: ~n²/2⁶⁴ — about 3·10⁻⁸ for a million items."""
    return int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest(), "big") >> 1


def clean_payload(item_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as engines store it: ``None`` values dropped, ``available`` always present
    (missing → true), ``year`` an int, categories and tags lists of str, the id under ``PAYLOAD_ID``.

    Filters match on the stored type (a keyword index does not match ints), hence the coercion."""
    out = {k: v for k, v in payload.items() if v is not None}
    out["available"] = bool(payload.get("available", True))
    if "year" in out:
        out["year"] = int(out["year"])
    for key in ("categories", "tags"):
        if key in out:
            out[key] = [str(c) for c in out[key]]
    out[PAYLOAD_ID] = item_id
    return out


@dataclass(frozen=True)
class VectorFilter:
    """Which items a search may return. Every set condition must hold (AND).

    Args:
        categories_any: the item has at least one of these categories.
        exclude_categories: the item has none of these categories.
        exclude_ids: graphrec ids never returned.
        available_only: only items whose ``available`` is true (items without it count as available).
        year_min, year_max: inclusive bounds on ``year``; an item without a year fails any bound.
    """

    categories_any: list[str] | None = None
    exclude_categories: list[str] | None = None
    exclude_ids: list[str] = field(default_factory=list)
    available_only: bool = True
    year_min: int | None = None
    year_max: int | None = None

    def matches(self, item_id: str, payload: dict[str, Any]) -> bool:
        """The reference semantics, in plain Python (tests and exact fallbacks use it)."""
        cats = set(payload.get("categories") or ())
        if self.categories_any and not cats & set(self.categories_any):
            return False
        if self.exclude_categories and cats & set(self.exclude_categories):
            return False
        if item_id in self.exclude_ids:
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
    """One search result: graphrec id, cosine similarity, and the payload when asked for."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VectorIndex(Protocol):
    """A cosine ANN index over item vectors with payload filters and aliases.

    ``name`` arguments accept a collection name or an alias (aliases resolve at call time).
    """

    def create_collection(self, name: str, dim: int) -> None:
        """Create an empty collection with its payload indexes; ``VectorStoreError`` if it exists."""

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        """Insert or replace points (``vectors``: float32, shape ``(len(ids), dim)``)."""

    def finalize(self, collection: str) -> None:
        """Build indexes and make the collection durable. Blocks; call it before ``set_alias``."""

    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]:
        """The ``k`` nearest items by cosine similarity, best first."""

    def search_batch(self, name: str, vectors: np.ndarray, k: int, filter: VectorFilter | None = None,
                     with_payload: bool = False) -> list[list[Hit]]:
        """``search`` for each row of ``vectors`` (one filter for all), in one engine call."""

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored (unit) vectors of the ids that exist; unknown ids are left out."""

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` atomically (creates or moves it)."""

    def get_alias(self, alias: str) -> str | None:
        """The collection behind ``alias``, or None."""

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""

    def delete_collection(self, name: str) -> None:
        """Drop a collection; ``VectorStoreError`` while an alias points at it."""

    def count(self, name: str) -> int:
        """Number of points."""

    def warm(self, name: str) -> None:
        """Open ``name`` and run one search so that the first request does not pay for it (an
        embedded engine maps the collection's files on first use: seconds at 1M points)."""

    def healthy(self) -> bool:
        """True when the engine answers."""

    def close(self) -> None:
        """Release files, connections and threads."""
