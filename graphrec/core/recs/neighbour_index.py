"""The materialised neighbour lists as files every API process maps: the request path's lists
without a Neo4j round trip.

``graphrec refresh-neighbours`` writes the lists to the graph (``CO_INTERACTED`` and
``SIMILAR_CONTENT`` edges, the record Neo4j Browser shows) and, beside them, the same lists as
one directory per refresh, ``<var>/neighbours/<version>/``:

- ``ids.npy``: every item of the refreshed snapshot, sorted (fixed-width unicode), so that an id
  is found by binary search and no process builds a dictionary of the catalogue;
- per kind, CSR columns over those sorted positions: ``<kind>.indptr.npy`` (int64, items + 1),
  ``<kind>.rows.npy`` (int32 positions of the neighbours, best first) and
  ``<kind>.scores.npy`` (float32, the scores written to the edges);
- ``meta.json``: version, kinds, items, neighbours per item.

The arrays are opened memory-mapped: the processes on one machine share one copy in the page
cache (at 1M items and 20 neighbours per kind, ~360 MB in all), and opening is instant. The graph
names the version in force (the ``neighbours`` GraphrecMeta node, set by the refresh after both
kinds are written); the engine uses a directory only when its version is that one, and reads the
lists from Neo4j otherwise (no directory on this machine, another version) and for items the
directory does not hold (created since the refresh: they have no edges yet either).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphrec.core.recs.merge import NO_NEIGHBOURS, NeighbourList

KINDS = ("CO_INTERACTED", "SIMILAR_CONTENT")
KEEP = 2  # versions kept on disk: the newest, and the one processes may still be mapping


def write(root: Path, version: str, item_ids: list[str],
          lists: Mapping[str, Iterable[tuple[int, np.ndarray, np.ndarray]]]) -> Path:
    """Write ``lists`` (per kind: ``(item row, neighbour rows, scores)`` best first, rows indexing
    ``item_ids``) as ``root/version``; older versions beyond :data:`KEEP` are removed. The
    directory appears whole (written under a temporary name, then renamed)."""
    n = len(item_ids)
    ids = np.asarray(item_ids, dtype=str) if n else np.zeros(0, dtype="<U1")
    order = np.argsort(ids, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    tmp = root / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "ids.npy", ids[order])
    per_item = 0
    for kind, rows in lists.items():
        if kind not in KINDS:
            raise ValueError(f"unknown neighbour kind {kind!r}")
        counts = np.zeros(n, dtype=np.int64)
        parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, nbrs, scores in rows:
            p = int(pos[i])
            parts[p] = (pos[np.asarray(nbrs, dtype=np.int64)].astype(np.int32), np.asarray(scores, dtype=np.float32))
            counts[p] = len(nbrs)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        flat_rows = np.empty(int(indptr[-1]), dtype=np.int32)
        flat_scores = np.empty(int(indptr[-1]), dtype=np.float32)
        for p, (r, s) in parts.items():
            flat_rows[indptr[p]:indptr[p + 1]] = r
            flat_scores[indptr[p]:indptr[p + 1]] = s
        np.save(tmp / f"{kind}.indptr.npy", indptr)
        np.save(tmp / f"{kind}.rows.npy", flat_rows)
        np.save(tmp / f"{kind}.scores.npy", flat_scores)
        per_item = max(per_item, int(counts.max()) if n else 0)
    (tmp / "meta.json").write_text(json.dumps({"version": version, "kinds": sorted(lists), "items": n,
                                               "per_item": per_item}))
    final = root / version
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass(frozen=True)
class NeighbourIndex:
    """One refresh's lists, memory-mapped (see the module docstring)."""

    version: str
    ids: np.ndarray  # sorted item ids
    kinds: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # kind -> (indptr, rows, scores)

    @classmethod
    def open(cls, path: Path) -> NeighbourIndex:
        """Map the directory ``path`` (raises OSError, ValueError, KeyError or EOFError when it is
        missing or not whole)."""
        meta = json.loads((path / "meta.json").read_text())
        ids = _mapped(path / "ids.npy")
        kinds = {}
        for kind in meta["kinds"]:
            indptr = _mapped(path / f"{kind}.indptr.npy")
            rows = _mapped(path / f"{kind}.rows.npy")
            scores = _mapped(path / f"{kind}.scores.npy")
            if len(indptr) != len(ids) + 1 or len(rows) != len(scores) or (len(indptr) and indptr[-1] != len(rows)):
                raise ValueError(f"neighbour index {path}: {kind} columns do not match its {len(ids)} items")
            kinds[kind] = (indptr, rows, scores)
        return cls(str(meta["version"]), ids, kinds)

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, item_ids: list[str]) -> np.ndarray:
        """Each id's sorted position, -1 for an id this index does not hold."""
        if not item_ids or not len(self.ids):
            return np.full(len(item_ids), -1, dtype=np.int64)
        want = np.asarray(item_ids, dtype=str)  # as wide as the longest: compared whole below
        pos = np.minimum(np.searchsorted(self.ids, want), len(self.ids) - 1)
        return np.where(self.ids[pos] == want, pos, -1)

    def lists(self, kind: str, item_ids: list[str], per_item: int) -> dict[str, NeighbourList]:
        """The ``kind`` lists (at most ``per_item`` neighbours each) of the ids this index holds
        (an item held with no neighbours maps to an empty list); ids not held are left out. All
        the ids' lists are gathered at once (one fancy index, one conversion to str)."""
        pos = self.positions(item_ids)
        held = np.flatnonzero(pos >= 0)
        if not len(held):
            return {}
        col = self.kinds.get(kind)
        if col is None:
            return {item_ids[k]: NO_NEIGHBOURS for k in held.tolist()}
        indptr, rows, scores = col
        p = pos[held]
        start = indptr[p]
        count = np.minimum(indptr[p + 1] - start, per_item)
        ends = np.cumsum(count)
        # Every entry of every list in one index array: start of its list + its offset in it.
        at = np.repeat(start - (ends - count), count) + np.arange(int(ends[-1]))
        names = self.ids[rows[at]].tolist()
        values = scores[at].astype(np.float64)
        out: dict[str, NeighbourList] = {}
        for k, e, n in zip(held.tolist(), ends.tolist(), count.tolist(), strict=True):
            out[item_ids[k]] = NeighbourList(tuple(names[e - n:e]), values[e - n:e]) if n else NO_NEIGHBOURS
        return out


def _mapped(path: Path) -> np.ndarray:
    """``path`` (a .npy file) memory-mapped, as a plain ndarray: ``np.memmap``'s own indexing
    wraps every result in Python code, a cost paid per request."""
    return np.load(path, mmap_mode="r").view(np.ndarray)
