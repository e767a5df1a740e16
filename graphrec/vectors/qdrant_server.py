"""qdrant-client: a Qdrant server or cluster (``url``), or qdrant-client's local mode (``path``).

Local mode is brute force in NumPy with payload filters checked point by point in Python (about
10 s per filtered query at 1M items, measured), so it serves tests and tiny data only. Against a
server, shards, replicas and scalar quantization come from the settings, payload indexes are
created for the filtered fields, and aliases switch atomically with one
``update_collection_aliases`` call (delete + create in one request).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from graphrec.vectors.base import PAYLOAD_ID, Hit, VectorFilter, point_id


def _models() -> Any:
    from qdrant_client import models

    return models


def _filter(f: VectorFilter | None) -> Any:
    if f is None:
        return None
    m = _models()
    must: list[Any] = []
    must_not: list[Any] = []
    if f.categories_any:
        must.append(m.FieldCondition(key="categories", match=m.MatchAny(any=list(f.categories_any))))
    if f.exclude_categories:
        must_not.append(m.FieldCondition(key="categories", match=m.MatchAny(any=list(f.exclude_categories))))
    if f.exclude_ids:
        must_not.append(m.HasIdCondition(has_id=[point_id(i) for i in f.exclude_ids]))
    if f.available_only:
        must.append(m.FieldCondition(key="available", match=m.MatchValue(value=True)))
    if f.year_min is not None or f.year_max is not None:
        must.append(m.FieldCondition(key="year", range=m.Range(gte=f.year_min, lte=f.year_max)))
    return m.Filter(must=must or None, must_not=must_not or None) if (must or must_not) else None


class QdrantIndex:
    def __init__(self, url: str | None = None, path: str | None = None, api_key: str | None = None,
                 hnsw_ef: int = 256, shards: int = 1, replicas: int = 1, quantization: str = "none",
                 timeout: float = 5.0) -> None:
        from qdrant_client import QdrantClient

        self.hnsw_ef = hnsw_ef
        self.shards = shards
        self.replicas = replicas
        self.quantization = quantization
        self.local = url is None
        try:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout)) if url else QdrantClient(path=path or ":memory:")
        except Exception as exc:  # noqa: BLE001 - qdrant-client raises many kinds
            raise VectorStoreUnavailable(f"cannot open Qdrant: {exc}") from exc

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, KeyError) as exc:
            if "not found" in str(exc).lower() or "doesn't exist" in str(exc).lower():
                raise CollectionNotFound(str(exc)) from exc
            raise VectorStoreError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001
            text = str(exc).lower()
            if "not found" in text or "doesn't exist" in text:
                raise CollectionNotFound(str(exc)) from exc
            raise VectorStoreUnavailable(f"Qdrant failed: {type(exc).__name__}") from exc

    def create_collection(self, name: str, dim: int) -> None:
        m = _models()
        quant = (m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True))
                 if self.quantization == "scalar" else None)
        self._call(self.client.create_collection, name,
                   vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
                   shard_number=self.shards, replication_factor=self.replicas, quantization_config=quant)
        if not self.local:  # local mode ignores payload indexes
            for field, schema in (("categories", m.PayloadSchemaType.KEYWORD), ("year", m.PayloadSchemaType.INTEGER),
                                  ("available", m.PayloadSchemaType.BOOL)):
                self._call(self.client.create_payload_index, name, field_name=field, field_schema=schema)

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        m = _models()
        pts = [m.PointStruct(id=point_id(gid), vector=np.asarray(v, dtype=np.float32).tolist(),
                             payload={**{k: x for k, x in pl.items() if x is not None}, PAYLOAD_ID: gid})
               for gid, v, pl in zip(ids, vectors, payloads, strict=True)]
        self._call(self.client.upsert, collection, points=pts, wait=True)

    def finalize(self, collection: str) -> None:
        """A server indexes in the background; nothing to wait for before the alias switch
        beyond ``wait=True`` on the writes (searches are exact until the HNSW is built)."""

    def search(self, name: str, vector: np.ndarray, k: int, filter: VectorFilter | None = None,
               with_payload: bool = False) -> list[Hit]:
        m = _models()
        res = self._call(self.client.query_points, name, query=np.asarray(vector, dtype=np.float32).tolist(),
                         limit=int(k), query_filter=_filter(filter), with_payload=True,
                         search_params=m.SearchParams(hnsw_ef=max(self.hnsw_ef, int(k))))
        return [Hit(p.payload[PAYLOAD_ID], float(p.score),
                    {k2: v for k2, v in p.payload.items() if k2 != PAYLOAD_ID} if with_payload else {})
                for p in res.points]

    def get_vectors(self, name: str, ids: list[str]) -> dict[str, np.ndarray]:
        recs = self._call(self.client.retrieve, name, ids=[point_id(i) for i in ids], with_vectors=True, with_payload=True)
        return {r.payload[PAYLOAD_ID]: np.asarray(r.vector, dtype=np.float32) for r in recs}

    def set_alias(self, alias: str, collection: str) -> None:
        m = _models()
        if collection not in self.list_collections():
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
        self._call(self.client.delete_collection, name)

    def count(self, name: str) -> int:
        return int(self._call(self.client.count, name, exact=True).count)

    def healthy(self) -> bool:
        try:
            self.client.get_collections()
            return True
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001,S110
            pass
