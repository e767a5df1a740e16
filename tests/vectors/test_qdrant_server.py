"""The server adapter's requests and error mapping, through an httpx ``MockTransport`` that plays
the Qdrant REST API (no server runs here; the contract suite covers the engine via local mode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from graphrec.core.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from graphrec.core.vectors.base import PAYLOAD_ID, VectorFilter, point_id
from graphrec.core.vectors.qdrant_server import QdrantIndex

Handler = Callable[[httpx.Request], httpx.Response]


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"result": result, "status": "ok", "time": 0.0})


def server(handler: Handler, **kw: Any) -> QdrantIndex:
    return QdrantIndex(url="https://qdrant.test:6333", api_key="k3y", client_options={"transport": httpx.MockTransport(handler)}, **kw)


def test_create_collection_sends_layout_quantization_and_payload_indexes() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content) if req.content else None
        seen.append((req.method, req.url.path, body))
        assert req.headers["api-key"] == "k3y"
        if req.url.path.endswith("/exists"):
            return ok({"exists": False})
        if req.url.path.endswith("/index"):
            return ok({"operation_id": 1, "status": "completed"})
        return ok(True)

    server(handler, shards=6, replicas=2, quantization="scalar", m=32).create_collection("items_v2", 64)
    create = next(b for m, p, b in seen if m == "PUT" and p == "/collections/items_v2")
    assert create["vectors"] == {"size": 64, "distance": "Cosine"}
    assert create["shard_number"] == 6 and create["replication_factor"] == 2
    assert create["quantization_config"]["scalar"]["type"] == "int8"
    assert create["hnsw_config"]["m"] == 32
    indexes = {b["field_name"]: b["field_schema"] for m, p, b in seen if p.endswith("/index")}
    assert indexes == {"categories": "keyword", "year": "integer", "available": "bool"}


def test_search_sends_filter_ef_and_maps_ids_back() -> None:
    bodies: list[Any] = []

    def handler(req: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(req.content))
        return ok({"points": [{"id": point_id("i/1"), "version": 1, "score": 0.9, "payload": {PAYLOAD_ID: "i/1"}}]})

    f = VectorFilter(categories_any=["a"], exclude_ids=["i/2"], year_min=1990)
    hits = server(handler, hnsw_ef=300).search("live", np.ones(4, np.float32), 10, f)
    assert [(h.id, h.score, h.payload) for h in hits] == [("i/1", 0.9, {})]
    body = bodies[0]
    assert body["params"]["hnsw_ef"] == 300 and body["limit"] == 10 and body["with_payload"] == [PAYLOAD_ID]
    flt = body["filter"]
    assert {"key": "categories", "match": {"any": ["a"]}} in flt["must"]
    assert {"key": "available", "match": {"value": True}} in flt["must"]
    assert {"has_id": [point_id("i/2")]} in flt["must_not"]


def test_alias_switch_is_one_request_with_delete_and_create() -> None:
    posts: list[Any] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/aliases":
            return ok({"aliases": [{"alias_name": "live", "collection_name": "old"}]})
        if req.url.path.endswith("/exists"):
            return ok({"exists": True})
        posts.append(json.loads(req.content))
        return ok(True)

    server(handler).set_alias("live", "new")
    assert posts == [{"actions": [{"delete_alias": {"alias_name": "live"}},
                                  {"create_alias": {"collection_name": "new", "alias_name": "live"}}]}]


@pytest.mark.parametrize(("response", "error"), [
    (httpx.Response(404, json={"status": {"error": "Not found: Collection `x` doesn't exist!"}}), CollectionNotFound),
    (httpx.Response(503, text="overloaded"), VectorStoreUnavailable),
    (httpx.Response(429, text="slow down"), VectorStoreUnavailable),
    (httpx.Response(400, json={"status": {"error": "Wrong input: vector dimension error"}}), VectorStoreError),
    (httpx.ConnectError("connection refused"), VectorStoreUnavailable),
    (httpx.ReadTimeout("timed out"), VectorStoreUnavailable),
])
def test_errors_are_typed(response: httpx.Response | Exception, error: type[Exception]) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    idx = server(handler)
    with pytest.raises(error) as info:
        idx.search("x", np.ones(4, np.float32), 5)
    assert type(info.value) is error
    assert idx.healthy() is False  # the same failure on the health probe


def test_an_unreachable_server_is_unhealthy_not_an_exception() -> None:
    idx = QdrantIndex(url="http://127.0.0.1:9", timeout=1)  # nothing listens on the discard port
    assert idx.healthy() is False
    with pytest.raises(VectorStoreUnavailable):
        idx.list_collections()
    idx.close()


def _collection_info(status: str) -> dict[str, Any]:
    from qdrant_client import models as m

    info = m.CollectionInfo(
        status=m.CollectionStatus(status), optimizer_status=m.OptimizersStatusOneOf.OK, segments_count=1,
        points_count=10, indexed_vectors_count=10, payload_schema={},
        config=m.CollectionConfig(
            params=m.CollectionParams(vectors=m.VectorParams(size=4, distance=m.Distance.COSINE)),
            hnsw_config=m.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            optimizer_config=m.OptimizersConfig(deleted_threshold=0.2, vacuum_min_vector_number=1000,
                                                default_segment_number=0, flush_interval_sec=5),
        ),
    )
    return info.model_dump(mode="json", exclude_none=True)


def test_finalize_waits_for_the_server_to_finish_indexing() -> None:
    statuses = iter(["yellow", "green", "yellow", "grey", "green", "green"])
    calls: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.method)
        if req.method == "PATCH":  # the nudge for a grey collection
            return ok(True)
        return ok(_collection_info(next(statuses)))

    idx = server(handler)
    idx.poll_interval = 0.0
    idx.finalize("items_v2")
    assert calls.count("GET") == 6 and calls.count("PATCH") == 1

    idx = server(lambda req: ok(_collection_info("red")))
    with pytest.raises(VectorStoreError, match="red"):
        idx.finalize("items_v2")
