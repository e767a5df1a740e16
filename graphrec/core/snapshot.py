"""The in-memory snapshot the GNN trains on.

A :class:`Snapshot` is what :mod:`graphrec.core.export` streams out of Neo4j (or what a test builds by
hand): stable id maps, the interactions as parallel arrays, and the raw content of every item.
Everything downstream (features, random walks, training, evaluation) reads only this.

Interaction kinds are small integers, in the order of :data:`KINDS`.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
        session: optional session id of each interaction (object array, None where there is none).
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
    session: np.ndarray | None = None

    @classmethod
    def from_rows(cls, users: Iterable[Any], items: Iterable[Any], interactions: Iterable[Any]) -> Snapshot:
        """A snapshot straight from validated loader rows (``UserRow``, ``ItemRow``,
        ``InteractionRow``), without the graph: for benchmarks and offline experiments.

        Ids keep the order of the rows; a user first seen in an interaction is added, as the
        loader does; an interaction naming an unknown item is an error. ``value`` is the rating,
        else the dwell seconds, else 0 (as :mod:`graphrec.core.export` reads it). Interactions are sorted by
        user, time and item, like the export. Columns grow in compact arrays, so 10M rows fit."""
        user_ids = [u.id for u in users]
        uidx = {u: k for k, u in enumerate(user_ids)}
        item_ids: list[str] = []
        contents: list[ItemContent] = []
        intern = sys.intern  # categories and tags repeat across items: store each string once
        for it in items:
            item_ids.append(it.id)
            contents.append(ItemContent(title=it.title, year=it.year,
                                        categories=[intern(c) for c in it.categories or ()],
                                        tags=[intern(t) for t in it.tags or ()],
                                        available=it.available is not False, created_at=it.created_at))
        iidx = {i: k for k, i in enumerate(item_ids)}
        cols: dict[str, array[Any]] = {"user": array("q"), "item": array("q"), "ts": array("d"), "kind": array("b"),
                                       "value": array("f")}
        for r in interactions:
            u = uidx.get(r.user_id)
            if u is None:
                u = uidx[r.user_id] = len(user_ids)
                user_ids.append(r.user_id)
            i = iidx.get(r.item_id)
            if i is None:
                raise ValueError(f"interaction names unknown item {r.item_id!r}")
            cols["user"].append(u)
            cols["item"].append(i)
            cols["ts"].append(r.ts)
            cols["kind"].append(KIND_CODE[getattr(r.type, "value", r.type)])
            cols["value"].append(r.value if r.value is not None else (r.dwell_seconds or 0.0))
        # int64, int64, float64, int8, float32 (fancy indexing copies out of the array buffers).
        arr = {k: np.frombuffer(v, dtype=v.typecode) for k, v in cols.items()}
        order = np.lexsort((arr["item"], arr["ts"], arr["user"]))
        return cls(user_ids=user_ids, item_ids=item_ids, user=arr["user"][order], item=arr["item"][order],
                   ts=arr["ts"][order], kind=arr["kind"][order], value=arr["value"][order], items=contents)

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
