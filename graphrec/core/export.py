"""Export a :class:`~graphrec.core.snapshot.Snapshot` from the graph of record, streamed page by page.

Items and users are read in id order, a page at a time (``cypher/export/*.cypher``), so the id
maps are stable for a given graph: item ``k`` is the ``k``-th item id in lexicographic order.
Interactions are read per page of users and appended to growing numpy arrays, so memory holds
the arrays, not Python records, even at 20M interactions.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from graphrec.core.graph.store import GraphStore
from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot


class _Growing:
    """An append-only numpy array that doubles its capacity."""

    def __init__(self, dtype: type, capacity: int = 1 << 16) -> None:
        self.buf: np.ndarray = np.empty(capacity, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.buf):
            cap = len(self.buf)
            while cap < need:
                cap *= 2
            new = np.empty(cap, dtype=self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n:need] = values
        self.n = need

    def array(self) -> np.ndarray:
        return self.buf[: self.n].copy()


def export_snapshot(store: GraphStore, page: int = 5000, max_entities: int = 64, progress: bool = True) -> Snapshot:
    """Read every item, user and interaction into a :class:`Snapshot`."""
    item_ids: list[str] = []
    contents: list[ItemContent] = []
    after = ""
    with tqdm(desc="export items", unit=" items", disable=not progress, leave=False) as bar:
        while True:
            rows = store.read("export/items", after=after, limit=page, max_entities=max_entities)
            if not rows:
                break
            for r in rows:
                item_ids.append(r["id"])
                contents.append(ItemContent(title=r["title"], year=r["year"], categories=list(r["categories"]),
                                            tags=list(r["tags"]), entities=list(r["entities"]),
                                            available=bool(r["available"]), created_at=r["created_at"]))
            after = rows[-1]["id"]
            bar.update(len(rows))
    item_index = {iid: k for k, iid in enumerate(item_ids)}

    user_ids: list[str] = []
    attrs: list[dict[str, str]] = []
    cols = {"user": _Growing(np.int64), "item": _Growing(np.int64), "ts": _Growing(np.float64),
            "kind": _Growing(np.int8), "value": _Growing(np.float32)}
    sessions: list[str | None] = []
    after = ""
    with tqdm(desc="export interactions", unit=" users", disable=not progress, leave=False) as bar:
        while True:
            users = store.read("export/users", after=after, limit=page)
            if not users:
                break
            base = len(user_ids)
            page_index = {}
            for k, u in enumerate(users):
                user_ids.append(u["id"])
                page_index[u["id"]] = base + k
                attrs.append({key: str(v) for key, v in u["props"].items() if key not in ("id", "created_at")})
            rows = store.read("export/interactions", user_ids=[u["id"] for u in users])
            if rows:
                cols["user"].extend(np.fromiter((page_index[r["user_id"]] for r in rows), np.int64, len(rows)))
                cols["item"].extend(np.fromiter((item_index[r["item_id"]] for r in rows), np.int64, len(rows)))
                cols["ts"].extend(np.fromiter((r["ts"] for r in rows), np.float64, len(rows)))
                cols["kind"].extend(np.fromiter((KIND_CODE[r["type"]] for r in rows), np.int8, len(rows)))
                cols["value"].extend(np.fromiter((r["value"] or 0.0 for r in rows), np.float32, len(rows)))
                sessions.extend(r.get("session") for r in rows)
            after = users[-1]["id"]
            bar.update(len(users))
    arr = {k: v.array() for k, v in cols.items()}
    order = np.lexsort((arr["item"], arr["ts"], arr["user"]))  # by user, then time: deterministic
    return Snapshot(user_ids=user_ids, item_ids=item_ids, user=arr["user"][order], item=arr["item"][order],
                    ts=arr["ts"][order], kind=arr["kind"][order], value=arr["value"][order], items=contents,
                    user_attrs=attrs if any(attrs) else None,
                    session=np.array(sessions, dtype=object)[order] if any(x is not None for x in sessions) else None)
