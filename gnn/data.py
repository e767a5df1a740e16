"""The in-memory snapshot the GNN trains on.

A :class:`Snapshot` is what :mod:`gnn.export` streams out of Neo4j (or what a test builds by
hand): stable id maps, the interactions as parallel arrays, and the raw content of every item.
Everything downstream (features, random walks, training, evaluation) reads only this.

Interaction kinds are small integers, in the order of :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Interaction kinds, in the order of their integer code in ``Snapshot.kind``.
KINDS: tuple[str, ...] = ("RATED", "VIEWED", "CLICKED", "PURCHASED", "SKIPPED")
KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(KINDS)}


@dataclass
class ItemContent:
    """Raw content of one item, as stored in the graph."""

    title: str | None = None
    year: int | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)  # KG entity ids linked to the item (and 1 hop)
    available: bool = True
    created_at: float | None = None  # epoch seconds


@dataclass
class Snapshot:
    """Interactions and content exported from the graph of record.

    Attributes:
        user_ids: graphrec user id (string) of each user index.
        item_ids: graphrec item id (string) of each item index.
        user: user index of each interaction, ``int64[n]``.
        item: item index of each interaction, ``int64[n]``.
        ts: epoch seconds of each interaction, ``float64[n]``.
        kind: interaction kind code (see :data:`KINDS`), ``int8[n]``.
        value: rating value (or dwell seconds for views; 0 otherwise), ``float32[n]``.
        items: content of every item, aligned with ``item_ids``.
        user_attrs: optional per-user attributes (e.g. MovieLens demographics).
    """

    user_ids: list[str]
    item_ids: list[str]
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    kind: np.ndarray
    value: np.ndarray
    items: list[ItemContent]
    user_attrs: list[dict[str, str]] | None = None

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return int(self.user.shape[0])

    def stats(self) -> dict[str, float]:
        """Summary recorded with every model version."""
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "max_ts": float(self.ts.max()) if self.num_interactions else 0.0,
        }
