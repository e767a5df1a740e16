"""Qdrant Edge: the Qdrant engine in-process, graphrec's default vector index on one machine.

Layout under the root directory: one shard directory per collection (``<root>/<name>/``), a
``.ready`` marker once it is built and optimised, and ``aliases.json`` mapping alias → collection,
replaced atomically (temp file, fsync, ``os.replace``). Readers re-read it when its mtime changes,
so a switch made by the publishing process is seen by the API processes within one request.

What we learned about Qdrant Edge 0.9 (its ``.pyi`` stub is the documentation):
- point ids are unsigned ints or UUIDs: we use a 63-bit hash of the graphrec id and keep the id
  in the payload (``gid``);
- nothing is indexed until ``optimize()``, which blocks (minutes at 1M items): collections are
  built off the request path and switched in through the alias;
- payload indexes are created BEFORE optimising (categories keyword, year integer, availability);
- a boolean ``MatchValue(True)`` matched nothing in our tests, so availability is stored as the
  integer field ``avail`` (1/0) with an integer index;
- the default search ``ef`` is too low for top-100: ``hnsw_ef`` is set on every search;
- shards are created without a WAL (``wal_enabled=False``, durable after ``flush()``, which
  ``finalize`` calls): a built collection is read-only, and several API processes can then load
  the same shard (with a WAL the second open fails with WouldBlock).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from graphrec.vectors.base import PAYLOAD_ID, Hit, VectorFilter, point_id

try:
    import qdrant_edge as qe
except ImportError:  # pragma: no cover - a declared dependency
    qe = None


def _filter(f: VectorFilter | None) -> Any:
    if f is None:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if f.categories_any:
        must.append(qe.FieldCondition("categories", match=qe.MatchAny(list(f.categories_any))))
    if f.exclude_categories:
        must_not.append(qe.FieldCondition("categories", match=qe.MatchAny(list(f.exclude_categories))))
    if f.exclude_ids:
        must_not.append(qe.HasIdCondition({point_id(i) for i in f.exclude_ids}))
    if f.available_only:
        must.append(qe.FieldCondition("avail", match=qe.MatchValue(1)))
    if f.year_min is not None or f.year_max is not None:
        must.append(qe.FieldCondition("year", range=qe.RangeFloat(
            gte=float(f.year_min) if f.year_min is not None else None,
            lte=float(f.year_max) if f.year_max is not None else None)))
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


class EdgeIndex:
    def __init__(self, root: Path, hnsw_ef: int = 256, m: int = 16, ef_construct: int = 128,
                 full_scan_threshold: int = 10_000, read_only: bool = False) -> None:
        if qe is None:
            raise VectorStoreUnavailable("qdrant-edge-py is not installed")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hnsw_ef = hnsw_ef
        self.m = m
        self.ef_construct = ef_construct
        self.full_scan_threshold = full_scan_threshold
        self.read_only = read_only
        self._shards: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._aliases: dict[str, str] = {}
        self._aliases_mtime = -1.0

    # ---- paths and aliases -----------------------------------------------------------------
    @property
    def _alias_file(self) -> Path:
        return self.root / "aliases.json"

    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise VectorStoreError(f"bad collection name {name!r}")
        return self.root / name

    def _read_aliases(self) -> dict[str, str]:
        try:
            mtime = self._alias_file.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != self._aliases_mtime:
            self._aliases = json.loads(self._alias_file.read_text() or "{}")
            self._aliases_mtime = mtime
        return self._aliases

    def _resolve(self, name: str) -> str:
        return self._read_aliases().get(name, name)

    def _shard(self, name: str) -> Any:
        coll = self._resolve(name)
        with self._lock:
            sh = self._shards.get(coll)
            if sh is None:
                d = self._dir(coll)
                if not (d / ".ready").exists() and not d.exists():
                    raise CollectionNotFound(f"no collection or alias {name!r}")
                try:
                    sh = qe.EdgeShard.load(str(d))
                except Exception as exc:  # noqa: BLE001 - the engine's errors are untyped
                    raise VectorStoreUnavailable(f"cannot open collection {coll!r}: {exc}") from exc
                self._shards[coll] = sh
            return sh

    # ---- building --------------------------------------------------------------------------
    def create_collection(self, name: str, dim: int) -> None:
        d = self._dir(name)
        if d.exists():
            raise VectorStoreError(f"collection {name!r} already exists")
        cfg = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=self.m, ef_construct=self.ef_construct,
                                           full_scan_threshold=self.full_scan_threshold),
            wal_enabled=False,
        )
        with self._lock:
            sh = qe.EdgeShard.create(str(d), cfg)
            for field, schema in (("categories", qe.PayloadSchemaType.Keyword), ("year", qe.PayloadSchemaType.Integer),
                                  ("avail", qe.PayloadSchemaType.Integer), (PAYLOAD_ID, qe.PayloadSchemaType.Keyword)):
                sh.update(qe.UpdateOperation.create_field_index(field, schema))
            self._shards[name] = sh

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        sh = self._shard(collection)
        pts = []
        for gid, vec, pl in zip(ids, np.asarray(vectors, dtype=np.float32), payloads, strict=True):
            p = {k: v for k, v in pl.items() if v is not None}
            p[PAYLOAD_ID] = gid
            p["avail"] = 1 if pl.get("available", True) else 0
            if p.get("year") is not None:
                p["year"] = int(p["year"])
            pts.append(qe.Point(id=point_id(gid), vector=vec.tolist(), payload=p))
        sh.update(qe.UpdateOperation.upsert_points(pts))

    def finalize(self, collection: str) -> None:
        """Build the HNSW and payload indexes (blocking) and make the collection durable."""
        sh = self._shard(collection)
        sh.optimize()
        sh.flush()
        (self._dir(self._resolve(collection)) / ".ready").write_text("ok")

    # ---- reading ---------------------------------------------------------------------------
    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]:
        sh = self._shard(name)
        req = qe.SearchRequest(query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()), limit=int(k),
                               filter=_filter(filter), params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, int(k))),
                               with_payload=True if with_payload else [PAYLOAD_ID])
        try:
            res = sh.search(req)
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreUnavailable(f"search failed: {exc}") from exc
        return [Hit(r.payload[PAYLOAD_ID], float(r.score),
                    {k2: v for k2, v in r.payload.items() if k2 not in (PAYLOAD_ID, "avail")} if with_payload else {})
                for r in res]

    def get_vectors(self, name: str, ids: list[str]) -> dict[str, np.ndarray]:
        sh = self._shard(name)
        recs = sh.retrieve([point_id(i) for i in ids], with_payload=[PAYLOAD_ID], with_vector=True)
        out = {}
        for r in recs:
            v = r.vector
            if isinstance(v, dict):
                v = next(iter(v.values()))
            out[r.payload[PAYLOAD_ID]] = np.asarray(v, dtype=np.float32)
        return out

    def count(self, name: str) -> int:
        return int(self._shard(name).info().points_count)

    # ---- aliases and lifecycle -------------------------------------------------------------
    def set_alias(self, alias: str, collection: str) -> None:
        if not (self._dir(collection) / ".ready").exists():
            raise CollectionNotFound(f"collection {collection!r} is not built (finalize it first)")
        aliases = dict(self._read_aliases())
        aliases[alias] = collection
        tmp = self._alias_file.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as fh:
            json.dump(aliases, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._alias_file)

    def get_alias(self, alias: str) -> str | None:
        return self._read_aliases().get(alias)

    def list_collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / ".ready").exists())

    def delete_collection(self, name: str) -> None:
        if name in self._read_aliases().values():
            raise VectorStoreError(f"collection {name!r} is behind an alias; switch the alias first")
        with self._lock:
            sh = self._shards.pop(name, None)
            if sh is not None:
                sh.close()
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def healthy(self) -> bool:
        return self.root.is_dir()

    def close(self) -> None:
        with self._lock:
            for sh in self._shards.values():
                try:
                    sh.close()
                except Exception:  # noqa: BLE001,S110 - closing is best effort
                    pass
            self._shards.clear()
