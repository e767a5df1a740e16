"""Qdrant Edge: the Qdrant engine in-process, graphrec's default vector index on one machine.

Layout under the root directory::

    <root>/aliases.json        alias -> collection, replaced atomically (temp, fsync, os.replace)
    <root>/aliases.lock        flock held while an alias is changed (two publishers never lose one)
    <root>/<collection>/       one Edge shard per collection
    <root>/<collection>/.ready written by ``finalize`` once the shard is optimised and flushed

Readers stat ``aliases.json`` on every call (one syscall) and re-read it when it changed, so a
switch made by the publishing process is seen by the API processes at their next search. A
search resolves the alias once and runs on that one shard: it sees the old collection or the new.

What Qdrant Edge 0.9 does (its ``qdrant_edge/__init__.pyi`` is the documentation; checked here):

- Point ids are unsigned ints or UUIDs: we use :func:`~graphrec.core.vectors.base.point_id` and keep
  the string id in the payload (``gid``); payload comes back only when asked for. Reading ``gid``
  back with every hit is a measurable share of a top-100 search at 1M, so ``finalize`` also writes the id map (``ids.*.npy``: sorted
  point ids, offsets into a UTF-8 blob) and searches map point ids back in memory (the arrays are
  memory-mapped: the API's processes share one copy). Points missing from it (written after
  ``finalize``, or a shard built before the map existed) are looked up by their payload.
- Nothing is HNSW-indexed until ``optimize()``, which blocks for a time that grows with the
  collection (``python -m bench.ann`` measures it). Collections are therefore built aside
  (a shadow shard), optimised, then switched in through the alias. Before that, or below the indexing threshold (~10 MB of vectors), search is
  exact, and so is a filtered search whose matches hold under ``full_scan_threshold`` KB of
  vectors (it then reads the payload index instead of walking the graph).
- Payload indexes are created before any point and before ``optimize``, so the HNSW graph gets
  the extra per-category links that keep filtered search accurate.
- The default search ``ef`` is too low for top-100: ``hnsw_ef`` (default 256) is sent with every
  search and never below ``k`` (recall against ef: ``python -m bench.ann``, docs/vectors.md).
- Match values must have the field's stored type. ``MatchValue(True)`` on a bool field matched
  nothing (with or without a bool index), so availability is also stored as the integer ``avail``
  (1/0) and filtered on that.
- A shard with a write-ahead log can be opened by one process only (the second ``load`` fails
  with "Can't init WAL: WouldBlock"). Shards here are created with ``wal_enabled=False``: writes
  are durable once ``flush()`` returns (``finalize`` flushes), and several processes (the API
  workers) can then load the same finished shard for reading. A collection has one writer, the
  process that builds it; points written after ``finalize`` are not seen by processes that
  loaded it earlier. To share a *mutable* index between processes, use a Qdrant server.

One module over 400 lines: the adapter of one engine, with the engine's observed behaviour
documented beside the code that depends on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np

from graphrec.core.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from graphrec.core.vectors.base import PAYLOAD_ID, Hit, VectorFilter, clean_payload, point_id

try:
    import qdrant_edge as qe
except ImportError:  # pragma: no cover - a declared dependency
    qe = None  # type: ignore[assignment]

_READY = ".ready"
_ID_FILES = ("ids.points.npy", "ids.offsets.npy", "ids.blob.npy")  # see IdMap
_AVAIL = "avail"  # integer twin of "available" (see the module docstring)
_INTERNAL = (PAYLOAD_ID, _AVAIL)


def _edge_filter(f: VectorFilter | None) -> Any:
    if f is None:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if f.categories_any:
        must.append(qe.FieldCondition("categories", match=qe.MatchAny([str(c) for c in f.categories_any])))
    if f.exclude_categories:
        must_not.append(qe.FieldCondition("categories", match=qe.MatchAny([str(c) for c in f.exclude_categories])))
    if f.exclude_ids:
        must_not.append(qe.HasIdCondition({point_id(i) for i in f.exclude_ids}))
    if f.available_only:
        must.append(qe.FieldCondition(_AVAIL, match=qe.MatchValue(1)))
    if f.year_min is not None or f.year_max is not None:
        must.append(qe.FieldCondition("year", range=qe.RangeFloat(
            gte=None if f.year_min is None else float(f.year_min),
            lte=None if f.year_max is None else float(f.year_max))))
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


def _hit(point: Any, with_payload: bool) -> Hit:
    payload = point.payload or {}
    extra = {k: v for k, v in payload.items() if k not in _INTERNAL} if with_payload else {}
    return Hit(str(payload[PAYLOAD_ID]), float(point.score), extra)


class IdMap:
    """Point id -> graphrec id for a finished shard, in three arrays: the point ids sorted, and for
    each the span of its id in one UTF-8 blob. 1M ids of ~8 characters take ~24 MB, memory-mapped."""

    def __init__(self, points: np.ndarray, offsets: np.ndarray, blob: np.ndarray) -> None:
        # Plain ndarray views of the memory maps: slicing a np.memmap makes a memmap per slice.
        self.points, self.offsets = points.view(np.ndarray), offsets.view(np.ndarray)
        self.blob = blob.view(np.ndarray)
        self._bytes = self.blob.data  # the memoryview of the blob (the same as memoryview(self.blob))

    @classmethod
    def build(cls, pairs: dict[int, str]) -> IdMap:
        pids = np.fromiter(pairs, dtype=np.uint64, count=len(pairs))
        pids.sort()
        encoded = [pairs[int(p)].encode() for p in pids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(pids, offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8))

    def save(self, d: Path) -> None:
        for name, arr in zip(_ID_FILES, (self.points, self.offsets, self.blob), strict=True):
            tmp = d / f".{name}.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, d / name)

    @classmethod
    def load(cls, d: Path) -> IdMap | None:
        try:
            return cls(*(np.load(d / name, mmap_mode="r") for name in _ID_FILES))
        except (OSError, ValueError):
            return None  # no map (an older shard): ids come from the payload

    def lookup(self, pids: list[int]) -> list[str | None]:
        """The graphrec id of each point id, or None when the map does not hold it."""
        if not pids or len(self.points) == 0:
            return [None] * len(pids)
        want = np.asarray(pids, dtype=np.uint64)
        pos = np.minimum(np.searchsorted(self.points, want), len(self.points) - 1)
        found = self.points[pos] == want
        starts, ends = self.offsets[pos], self.offsets[pos + 1]
        mv = self._bytes
        return [str(mv[a:b], "utf-8") if ok else None
                for ok, a, b in zip(found.tolist(), starts.tolist(), ends.tolist(), strict=True)]


class EdgeIndex:
    """Qdrant Edge shards under ``root``, one per collection.

    Args:
        root: directory holding the shards and ``aliases.json`` (created if missing).
        hnsw_ef: search-time beam width (raised to ``k`` when smaller).
        m, ef_construct: HNSW graph degree and build beam (Qdrant's defaults are 16/100).
        payload_m: degree of the extra links built per payload value (category) so that filtered
            search stays connected. Qdrant builds them only for values holding fewer than about
            ``4 × segment size / average level-0 degree`` points, so a larger ``m`` leaves a
            category of 10% of the items without them and filtered recall collapses; the default
            ``m`` keeps them (docs/vectors.md; ``python -m bench.ann`` measures it).
        quantization: ``"scalar"`` keeps int8 copies of the vectors; searches walk the graph on
            them and rescore 1.5× the asked-for hits with the originals: ``optimize`` is faster at the
            same filtered recall (``python -m bench.ann --quantization scalar``).
        full_scan_threshold: in KB of vectors; a filter leaving fewer is searched exactly.
        indexing_threshold: in KB of vectors; smaller segments get no HNSW (None = engine default,
            about 10 MB; tests lower it so that small collections exercise the HNSW path).
        indexing_threads: threads ``optimize`` may use (0 = all cores).
        search_threads: threads per search (None = number of cores).
        read_only: refuse every write (API processes open the index this way).
    """

    def __init__(self, root: str | os.PathLike[str], *, hnsw_ef: int = 256, m: int = 16, ef_construct: int = 128,
                 payload_m: int | None = 16, quantization: str = "none", full_scan_threshold: int = 10_000, indexing_threshold: int | None = None, indexing_threads: int = 0,
                 search_threads: int | None = None, read_only: bool = False) -> None:
        if qe is None:
            raise VectorStoreUnavailable("qdrant-edge-py is not installed")
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreUnavailable(f"cannot create {self.root}: {exc}") from exc
        self.hnsw_ef = hnsw_ef
        self.m = m
        self.ef_construct = ef_construct
        self.payload_m = payload_m
        if quantization not in ("none", "scalar"):
            raise VectorStoreError(f"unknown quantization {quantization!r} (none, scalar)")
        self.quantization = quantization
        self.full_scan_threshold = full_scan_threshold
        self.indexing_threshold = indexing_threshold
        self.indexing_threads = indexing_threads
        self.search_threads = search_threads
        self.read_only = read_only
        self._lock = threading.RLock()
        self._shards: dict[str, Any] = {}  # open shards by collection
        self._idmaps: dict[str, IdMap | None] = {}  # their id maps (None: none on disk)
        self._written: dict[str, dict[int, str]] = {}  # point id -> graphrec id, per collection built here
        self._building: set[str] = set()  # collections created by this instance (kept open)
        self._aliases: dict[str, str] = {}
        self._aliases_stamp: tuple[int, ...] | None = None
        self._pinned: str | None = None  # the collection last warmed: kept open (see _drop_unused)

    #: Searches are in-process CPU work of a millisecond or two: callers run them inline rather
    #: than on a thread (see Engine._vectors).
    inline = True

    def __repr__(self) -> str:
        return f"EdgeIndex(root={str(self.root)!r}, hnsw_ef={self.hnsw_ef}, m={self.m}, read_only={self.read_only})"

    # ---- paths and aliases -----------------------------------------------------------------
    @property
    def _alias_file(self) -> Path:
        return self.root / "aliases.json"

    def _dir(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith(".") or name.endswith((".json", ".lock")):
            raise VectorStoreError(f"bad collection name {name!r}")
        return self.root / name

    def _writable(self) -> None:
        if self.read_only:
            raise VectorStoreError(f"{self!r} is read-only")

    def _read_aliases(self) -> dict[str, str]:
        """The alias map, re-read only when the file changed (inode, size, mtime, ctime)."""
        try:
            st = self._alias_file.stat()
        except FileNotFoundError:
            stamp: tuple[int, ...] | None = ()
        else:
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if stamp == self._aliases_stamp:
                return self._aliases
            try:
                aliases = json.loads(self._alias_file.read_text()) if stamp else {}
            except FileNotFoundError:
                aliases = {}
            except (OSError, ValueError) as exc:
                raise VectorStoreError(f"unreadable alias file {self._alias_file}: {exc}") from exc
            self._aliases, self._aliases_stamp = aliases, stamp
            self._drop_unused()
            return aliases

    def _drop_unused(self) -> None:
        """Close shards no alias points at any more, unless built here or pinned by ``warm`` (the
        engine's live model searches its own collection, which may lag the alias by a poll): a
        reader process keeps only what it serves open. A search still running on one keeps its
        reference. Call with the lock held."""
        keep = set(self._aliases.values()) | self._building | ({self._pinned} if self._pinned else set())
        for coll in [c for c in self._shards if c not in keep]:
            del self._shards[coll]
            self._idmaps.pop(coll, None)

    def _resolve(self, name: str) -> str:
        return self._read_aliases().get(name, name)

    @contextmanager
    def _alias_lock(self) -> Iterator[None]:
        with open(self.root / "aliases.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        tmp = self.root / f".aliases.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(aliases, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._alias_file)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the rename itself survives a crash
        finally:
            os.close(dfd)

    def _shard(self, name: str) -> tuple[str, Any]:
        coll = self._resolve(name)
        with self._lock:
            sh = self._shards.get(coll)
            if sh is not None:
                return coll, sh
            d = self._dir(coll)
            if not (d / "edge_config.json").exists():
                raise CollectionNotFound(f"no collection or alias {name!r}")
            try:
                sh = qe.EdgeShard.load(str(d))
            except Exception as exc:  # noqa: BLE001 - the engine raises bare Exceptions
                raise VectorStoreUnavailable(f"cannot open collection {coll!r}: {exc}") from exc
            self._shards[coll] = sh
            return coll, sh

    # ---- building --------------------------------------------------------------------------
    def create_collection(self, name: str, dim: int) -> None:
        self._writable()
        d = self._dir(name)
        if d.exists():
            raise VectorStoreError(f"collection {name!r} already exists")
        if name in self._read_aliases():
            raise VectorStoreError(f"{name!r} is an alias; a collection cannot shadow it")
        cfg = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(
                size=int(dim), distance=qe.Distance.Cosine,
                quantization_config=(qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
                                     if self.quantization == "scalar" else None)),
            hnsw_config=qe.HnswIndexConfig(m=self.m, ef_construct=self.ef_construct,
                                           full_scan_threshold=self.full_scan_threshold,
                                           max_indexing_threads=self.indexing_threads, payload_m=self.payload_m),
            optimizers=(qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold)
                        if self.indexing_threshold is not None else None),
            max_search_threads=self.search_threads,
            wal_enabled=False,
        )
        with self._lock:
            try:
                sh = qe.EdgeShard.create(str(d), cfg)
                for fld, schema in (("categories", qe.PayloadSchemaType.Keyword),
                                    ("year", qe.PayloadSchemaType.Integer),
                                    (_AVAIL, qe.PayloadSchemaType.Integer)):
                    sh.update(qe.UpdateOperation.create_field_index(fld, schema))
            except Exception as exc:  # noqa: BLE001
                shutil.rmtree(d, ignore_errors=True)
                raise VectorStoreError(f"cannot create collection {name!r}: {exc}") from exc
            self._shards[name] = sh
            self._building.add(name)
            self._written[name] = {}

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self._writable()
        _, sh = self._shard(collection)
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(ids) or len(payloads) != len(ids):
            raise VectorStoreError(f"upsert: {len(ids)} ids, vectors {vecs.shape}, {len(payloads)} payloads")
        points, pids = [], {}
        for gid, vec, pl in zip(ids, vecs.tolist(), payloads, strict=True):
            p = clean_payload(gid, pl)
            p[_AVAIL] = int(p["available"])
            pid = point_id(gid)
            pids[pid] = gid
            points.append(qe.Point(id=pid, vector=vec, payload=p))
        try:
            sh.update(qe.UpdateOperation.upsert_points(points))
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"upsert into {collection!r} failed: {exc}") from exc
        written = self._written.get(self._resolve(collection))
        if written is not None:
            written.update(pids)

    def finalize(self, collection: str) -> None:
        """Optimise (builds HNSW and payload indexes; blocks for minutes at 1M), flush, mark ready."""
        self._writable()
        coll, sh = self._shard(collection)
        try:
            sh.optimize()
            sh.flush()
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"finalize {coll!r} failed: {exc}") from exc
        written = self._written.pop(coll, None)
        if written is not None:  # built by this instance: it knows every id
            IdMap.build(written).save(self._dir(coll))
        self._idmaps.pop(coll, None)  # a search before finalize cached "no map"
        (self._dir(coll) / _READY).write_text("optimized\n")

    # ---- reading ---------------------------------------------------------------------------
    def _params(self, k: int) -> Any:
        # Rescoring is explicit: without it Edge returns the int8 scores, and recall drops.
        # An oversampling factor above 1.5 does not raise recall further.
        # No-op on a collection built without quantization.
        quant = qe.QuantizationSearchParams(rescore=True, oversampling=1.5) if self.quantization == "scalar" else None
        return qe.SearchParams(hnsw_ef=max(int(self.hnsw_ef), int(k)), quantization=quant)

    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]:
        coll, sh = self._shard(name)
        idmap = None if with_payload else self._idmap(coll)
        req = qe.SearchRequest(query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()), limit=int(k),
                               filter=_edge_filter(filter), params=self._params(k),
                               with_payload=True if with_payload else (False if idmap else [PAYLOAD_ID]))
        try:
            res = sh.search(req)
            return self._hits(coll, sh, idmap, res, with_payload)
        except VectorStoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"search on {coll!r} failed: {exc}") from exc

    def _idmap(self, coll: str) -> IdMap | None:
        try:
            return self._idmaps[coll]
        except KeyError:
            m = IdMap.load(self._dir(coll)) if (self._dir(coll) / _READY).exists() else None
            with self._lock:
                return self._idmaps.setdefault(coll, m)

    def _hits(self, coll: str, sh: Any, idmap: IdMap | None, points: list[Any], with_payload: bool) -> list[Hit]:
        if idmap is None:
            return [_hit(p, with_payload) for p in points]
        gids = idmap.lookup([p.id for p in points])
        if None in gids:  # written after the map: ask the shard
            unknown = [p.id for p, g in zip(points, gids, strict=True) if g is None]
            named = {r.id: str(r.payload[PAYLOAD_ID]) for r in sh.retrieve(unknown, with_payload=[PAYLOAD_ID], with_vector=False)}
            gids = [g if g is not None else named[p.id] for p, g in zip(points, gids, strict=True)]
        known = cast("list[str]", gids)  # every None was replaced just above
        return [Hit(g, float(p.score), {}) for p, g in zip(points, known, strict=True)]

    def search_batch(self, name: str, vectors: np.ndarray, k: int, filter: VectorFilter | None = None,
                     with_payload: bool = False) -> list[list[Hit]]:
        coll, sh = self._shard(name)
        flt, params = _edge_filter(filter), self._params(k)
        idmap = None if with_payload else self._idmap(coll)
        sel: Any = True if with_payload else (False if idmap else [PAYLOAD_ID])
        reqs = [qe.QueryRequest(limit=int(k), query=qe.Query.Nearest(v), filter=flt, params=params, with_payload=sel)
                for v in np.atleast_2d(np.asarray(vectors, dtype=np.float32)).tolist()]
        if not reqs:
            return []
        try:
            res = sh.query_batch(qe.QueryBatchRequest(reqs))
            return [self._hits(coll, sh, idmap, r, with_payload) for r in res]
        except VectorStoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"batch search on {coll!r} failed: {exc}") from exc

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        coll, sh = self._shard(name)
        try:
            recs = sh.retrieve([point_id(i) for i in ids], with_payload=[PAYLOAD_ID], with_vector=True)
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"retrieve from {coll!r} failed: {exc}") from exc
        out: dict[str, np.ndarray] = {}
        for r in recs:
            v = r.vector
            if isinstance(v, dict):  # named-vector form: our only vector is the default ""
                v = next(iter(v.values()))
            out[str(r.payload[PAYLOAD_ID])] = np.asarray(v, dtype=np.float32)
        return out

    def count(self, name: str) -> int:
        _, sh = self._shard(name)
        return int(sh.info().points_count)

    def is_ready(self, name: str) -> bool:
        """Whether the collection (or the alias's target) has been finalised."""
        return (self._dir(self._resolve(name)) / _READY).exists()

    # ---- aliases and lifecycle -------------------------------------------------------------
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at a finalised collection; readers in every process see it at their next call."""
        self._writable()
        d = self._dir(collection)
        if not d.is_dir():
            raise CollectionNotFound(f"no collection {collection!r}")
        if not (d / _READY).exists():
            raise VectorStoreError(f"collection {collection!r} is not finalized; finalize it before switching")
        self._dir(alias)  # same naming rules
        if (self.root / alias).is_dir():
            raise VectorStoreError(f"{alias!r} is a collection name; an alias cannot shadow it")
        with self._alias_lock():
            self._aliases_stamp = None  # read what is on disk, not our cache
            aliases = dict(self._read_aliases())
            aliases[alias] = collection
            self._write_aliases(aliases)

    def get_alias(self, alias: str) -> str | None:
        return self._read_aliases().get(alias)

    def list_collections(self) -> list[str]:
        """Every shard directory, finalised or not (a half-built one can then be deleted)."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete_collection(self, name: str) -> None:
        self._writable()
        d = self._dir(name)
        with self._alias_lock():
            self._aliases_stamp = None
            behind = [a for a, c in self._read_aliases().items() if c == name]
            if behind:
                raise VectorStoreError(f"collection {name!r} is behind alias {behind[0]!r}; switch it first")
            if not d.is_dir():
                raise CollectionNotFound(f"no collection {name!r}")
            with self._lock:
                sh = self._shards.pop(name, None)
                self._idmaps.pop(name, None)
                self._written.pop(name, None)
                self._building.discard(name)
                if sh is not None:
                    try:
                        sh.close()
                    except Exception:  # noqa: BLE001,S110 - closing is best effort
                        pass
            shutil.rmtree(d, ignore_errors=True)

    def warm(self, name: str) -> None:
        """Open ``name`` (EdgeShard.load, seconds for a large collection), its id map, run one
        search, and keep it open even when no alias points at it; the collection warmed before is
        released."""
        coll, _ = self._shard(name)
        self._idmap(coll)
        try:
            dim = int(json.loads((self._dir(coll) / "edge_config.json").read_text())["vectors"][""]["size"])
        except (OSError, ValueError, KeyError) as exc:
            raise VectorStoreError(f"unreadable config of {coll!r}: {exc}") from exc
        self.search(coll, np.random.default_rng(0).standard_normal(dim).astype(np.float32), 100)
        with self._lock:
            self._pinned = coll
            self._drop_unused()

    def healthy(self) -> bool:
        try:
            self._read_aliases()
        except VectorStoreError:
            return False
        return self.root.is_dir() and os.access(self.root, os.R_OK)

    def close(self) -> None:
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
            self._idmaps.clear()
            self._written.clear()
            self._building.clear()
        for sh in shards:
            try:
                sh.close()
            except Exception:  # noqa: BLE001,S110 - closing is best effort
                pass
