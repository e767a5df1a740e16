"""qdrant-client: a Qdrant server or cluster (``url``), or qdrant-client's local mode (``path``).

Against a server: shards, replicas, HNSW parameters and int8 scalar quantization come from the
caller (the settings); payload indexes are created for the filtered fields (categories keyword,
available bool, year integer) before any point is written; ``finalize`` waits until the server
has indexed the collection (status green), so the alias never moves to a collection that would
answer by brute force; aliases switch with one ``update_collection_aliases`` call (delete +
create in one request, which Qdrant applies atomically).

Local mode (``path=`` or ``":memory:"``) is qdrant-client's pure-Python engine: exact search in
NumPy, payload filters checked point by point in Python and, with a ``path``, one SQLite commit
per point on upsert. It serves tests and tiny data only; it ignores payload indexes and search
parameters.

Errors: 404 and "not found" → ``CollectionNotFound``; transport failures, timeouts, 5xx and 429
→ ``VectorStoreUnavailable``; anything else the server refuses → ``VectorStoreError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from graphrec.core.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from graphrec.core.vectors.base import PAYLOAD_ID, Hit, VectorFilter, clean_payload, point_id

T = TypeVar("T")


def _models() -> Any:
    from qdrant_client import models

    return models


def _server_filter(f: VectorFilter | None) -> Any:
    if f is None:
        return None
    m = _models()
    must: list[Any] = []
    must_not: list[Any] = []
    if f.categories_any:
        must.append(m.FieldCondition(key="categories", match=m.MatchAny(any=[str(c) for c in f.categories_any])))
    if f.exclude_categories:
        must_not.append(m.FieldCondition(key="categories", match=m.MatchAny(any=[str(c) for c in f.exclude_categories])))
    if f.exclude_ids:
        must_not.append(m.HasIdCondition(has_id=[point_id(i) for i in f.exclude_ids]))
    if f.available_only:
        must.append(m.FieldCondition(key="available", match=m.MatchValue(value=True)))
    if f.year_min is not None or f.year_max is not None:
        must.append(m.FieldCondition(key="year", range=m.Range(gte=f.year_min, lte=f.year_max)))
    return m.Filter(must=must or None, must_not=must_not or None) if (must or must_not) else None


def _is_not_found(text: str) -> bool:
    text = text.lower()
    return "not found" in text or "doesn't exist" in text or "does not exist" in text


def _hit(point: Any, with_payload: bool) -> Hit:
    payload = point.payload or {}
    extra = {k: v for k, v in payload.items() if k != PAYLOAD_ID} if with_payload else {}
    return Hit(str(payload[PAYLOAD_ID]), float(point.score), extra)


class QdrantIndex:
    """A Qdrant server/cluster (``url``) or qdrant-client local mode (``path``; ``":memory:"`` or None).

    Args:
        url, api_key: the server; ``api_key`` is sent as the ``api-key`` header.
        path: local mode storage directory, or ``":memory:"``.
        hnsw_ef: search-time beam width (raised to ``k`` when smaller); server only.
        shards, replicas: collection layout on a cluster.
        quantization: ``"scalar"`` stores int8 copies of the vectors in RAM (searches rescore
            with the originals); ``"none"``.
        m, ef_construct: HNSW parameters (the same defaults as the Edge engine, see there).
        timeout: seconds per request.
        finalize_timeout: seconds ``finalize`` waits for the server to finish indexing.
        client_options: passed to ``QdrantClient`` (e.g. ``prefer_grpc``, or an httpx
            ``transport`` in tests).
    """

    def __init__(self, url: str | None = None, path: str | None = None, api_key: str | None = None, *,
                 hnsw_ef: int = 256, shards: int = 1, replicas: int = 1,
                 quantization: Literal["none", "scalar"] = "none", m: int = 16, ef_construct: int = 128,
                 payload_m: int | None = 32, timeout: float = 10.0, finalize_timeout: float = 3600.0,
                 client_options: dict[str, Any] | None = None) -> None:
        from qdrant_client import QdrantClient

        self.url = url
        self.hnsw_ef = hnsw_ef
        self.shards = shards
        self.replicas = replicas
        self.quantization = quantization
        self.m = m
        self.payload_m = payload_m
        self.ef_construct = ef_construct
        self.finalize_timeout = finalize_timeout
        self.poll_interval = 1.0
        self.local = url is None
        try:
            if url:
                self.client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout),
                                           **{"check_compatibility": False, **(client_options or {})})
            else:
                self.client = QdrantClient(path=path) if path and path != ":memory:" else QdrantClient(":memory:")
        except Exception as exc:  # noqa: BLE001 - qdrant-client raises many kinds
            raise VectorStoreUnavailable(f"cannot open Qdrant ({url or path}): {exc}") from exc

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self.url else "local"
        return f"QdrantIndex({where}, hnsw_ef={self.hnsw_ef}, shards={self.shards}, replicas={self.replicas})"

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call, turning its errors into ours."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            return fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            code = exc.status_code or 0
            if code == 404 or _is_not_found(str(exc)):
                raise CollectionNotFound(str(exc)) from exc
            if code >= 500 or code == 429:
                raise VectorStoreUnavailable(f"Qdrant answered {code}") from exc
            raise VectorStoreError(str(exc)) from exc
        except ResponseHandlingException as exc:  # transport error, timeout
            raise VectorStoreUnavailable(f"Qdrant unreachable: {exc.source!r}") from exc
        except (ValueError, KeyError) as exc:  # local mode reports missing collections this way
            if _is_not_found(str(exc)):
                raise CollectionNotFound(str(exc)) from exc
            raise VectorStoreError(str(exc)) from exc
        except VectorStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - gRPC RpcError, httpx, OSError, …
            if _is_not_found(str(exc)):
                raise CollectionNotFound(str(exc)) from exc
            raise VectorStoreUnavailable(f"Qdrant failed: {type(exc).__name__}: {exc}") from exc

    # ---- building --------------------------------------------------------------------------
    def create_collection(self, name: str, dim: int) -> None:
        m = _models()
        quant = (m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True))
                 if self.quantization == "scalar" else None)
        if self._call(self.client.collection_exists, name):
            raise VectorStoreError(f"collection {name!r} already exists")
        self._call(self.client.create_collection, name,
                   vectors_config=m.VectorParams(size=int(dim), distance=m.Distance.COSINE),
                   hnsw_config=m.HnswConfigDiff(m=self.m, ef_construct=self.ef_construct, payload_m=self.payload_m),
                   shard_number=self.shards, replication_factor=self.replicas, quantization_config=quant)
        if not self.local:  # local mode has no payload indexes
            for fld, schema in (("categories", m.PayloadSchemaType.KEYWORD), ("year", m.PayloadSchemaType.INTEGER),
                                ("available", m.PayloadSchemaType.BOOL)):
                self._call(self.client.create_payload_index, name, field_name=fld, field_schema=schema, wait=True)

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        m = _models()
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(ids) or len(payloads) != len(ids):
            raise VectorStoreError(f"upsert: {len(ids)} ids, vectors {vecs.shape}, {len(payloads)} payloads")
        pts = [m.PointStruct(id=point_id(gid), vector=v, payload=clean_payload(gid, pl))
               for gid, v, pl in zip(ids, vecs.tolist(), payloads, strict=True)]
        self._call(self.client.upsert, collection, points=pts, wait=True)

    def finalize(self, collection: str) -> None:
        """Wait until the server has built the collection's indexes (status green)."""
        if self.local:
            self._call(self.client.get_collection, collection)  # exists?
            return
        m = _models()
        deadline = time.monotonic() + self.finalize_timeout
        greens = 0
        while True:
            info = self._call(self.client.get_collection, collection)
            if info.status == m.CollectionStatus.GREEN:
                greens += 1
                if greens == 2:  # twice, a poll interval apart: the optimiser may start just after a write
                    return
            else:
                greens = 0
            if info.status == m.CollectionStatus.RED:
                raise VectorStoreError(f"collection {collection!r} is red: {info.optimizer_status}")
            if info.status == m.CollectionStatus.GREY:  # optimisations pending but not triggered: nudge
                self._call(self.client.update_collection, collection, optimizers_config=m.OptimizersConfigDiff())
            if time.monotonic() > deadline:
                raise VectorStoreUnavailable(f"collection {collection!r} still indexing after {self.finalize_timeout}s")
            time.sleep(self.poll_interval)

    # ---- reading ---------------------------------------------------------------------------
    def _search_params(self, k: int) -> Any:
        return None if self.local else _models().SearchParams(hnsw_ef=max(int(self.hnsw_ef), int(k)))

    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]:
        res = self._call(self.client.query_points, name, query=np.asarray(vector, dtype=np.float32).tolist(),
                         limit=int(k), query_filter=_server_filter(filter),
                         with_payload=True if with_payload else [PAYLOAD_ID], search_params=self._search_params(k))
        return [_hit(p, with_payload) for p in res.points]

    def search_batch(self, name: str, vectors: np.ndarray, k: int, filter: VectorFilter | None = None,
                     with_payload: bool = False) -> list[list[Hit]]:
        m = _models()
        flt, params = _server_filter(filter), self._search_params(k)
        reqs = [m.QueryRequest(query=v, limit=int(k), filter=flt, params=params,
                               with_payload=True if with_payload else [PAYLOAD_ID])
                for v in np.atleast_2d(np.asarray(vectors, dtype=np.float32)).tolist()]
        if not reqs:
            return []
        res = self._call(self.client.query_batch_points, name, requests=reqs)
        return [[_hit(p, with_payload) for p in r.points] for r in res]

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        recs = self._call(self.client.retrieve, name, ids=[point_id(i) for i in ids], with_vectors=True,
                          with_payload=[PAYLOAD_ID])
        return {str(r.payload[PAYLOAD_ID]): np.asarray(r.vector, dtype=np.float32) for r in recs if r.payload}

    def count(self, name: str) -> int:
        return int(self._call(self.client.count, name, exact=True).count)

    # ---- aliases and lifecycle -------------------------------------------------------------
    def set_alias(self, alias: str, collection: str) -> None:
        m = _models()
        if not self._call(self.client.collection_exists, collection):
            raise CollectionNotFound(f"no collection {collection!r}")
        ops: list[Any] = []
        if self.get_alias(alias) is not None:
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)))
        ops.append(m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=collection, alias_name=alias)))
        self._call(self.client.update_collection_aliases, change_aliases_operations=ops)

    def get_alias(self, alias: str) -> str | None:
        for a in self._call(self.client.get_aliases).aliases:
            if a.alias_name == alias:
                return str(a.collection_name)
        return None

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self._call(self.client.get_collections).collections)

    def delete_collection(self, name: str) -> None:
        for a in self._call(self.client.get_aliases).aliases:
            if a.collection_name == name:
                raise VectorStoreError(f"collection {name!r} is behind alias {a.alias_name!r}; switch it first")
        if not self._call(self.client.delete_collection, name):
            raise CollectionNotFound(f"no collection {name!r}")

    def warm(self, name: str) -> None:
        # The server (or local mode, which reads every collection when the client opens) has
        # nothing to map lazily; this checks that the collection answers.
        self.count(name)

    def healthy(self) -> bool:
        try:
            self._call(self.client.get_collections)
        except VectorStoreError:
            return False
        return True

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001,S110 - closing is best effort
            pass
