"""One contract, every engine that runs here: Qdrant Edge and qdrant-client local mode.

Answers are compared with exact cosine search in NumPy (:class:`Data.exact`) and filters with
:meth:`VectorFilter.matches`, the reference semantics.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from graphrec.core.errors import CollectionNotFound, VectorStoreError
from graphrec.core.vectors.base import Hit, VectorFilter, VectorIndex

from .conftest import D, Data, build, make_data, open_engine

K = 20


def _queries(n: int, seed: int = 7) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _check(hits: list[Hit], data: Data, q: np.ndarray, k: int, f: VectorFilter | None) -> None:
    """Hits are best first, scored by cosine, satisfy the filter, and are the exact top-k (HNSW
    may swap at most one near-tie at the boundary)."""
    want = data.exact(q, k, f)
    assert len(hits) == len(want)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert abs(h.score - data.cosine(h.id, q)) < 1e-4
        if f is not None:
            assert f.matches(h.id, data.payloads[data.pos[h.id]])
    assert len({h.id for h in hits} & set(want)) >= len(want) - 1
    assert hits[0].id == want[0]


def test_is_a_vector_index(index: VectorIndex) -> None:
    assert isinstance(index, VectorIndex)


def test_topk_equals_exact_cosine(built: tuple[VectorIndex, Data]) -> None:
    index, data = built
    f = VectorFilter(available_only=False)
    for q in _queries(10):
        _check(index.search("items_v1", q, K, f), data, q, K, f)
    # top-100 too, where a low default ef would show
    q = _queries(1, seed=99)[0]
    _check(index.search("items_v1", q, 100, f), data, q, 100, f)


@pytest.mark.parametrize("f", [
    None,  # no filter at all: unavailable items are returned too
    VectorFilter(),  # the default: available only
    VectorFilter(categories_any=["comedy"]),
    VectorFilter(categories_any=["horror", "doc"], available_only=False),
    VectorFilter(exclude_categories=["drama", "sci-fi"]),
    VectorFilter(year_min=1990, year_max=2000),
    VectorFilter(year_min=2010),
    VectorFilter(year_max=1955, available_only=False),
    VectorFilter(exclude_ids=[f"item:{k}/ü é#{k % 3}" for k in range(0, 2000, 2)]),
    VectorFilter(categories_any=["drama", "doc"], exclude_categories=["horror"], year_min=1960, year_max=1999,
                 exclude_ids=[f"item:{k}/ü é#{k % 3}" for k in range(0, 600, 3)]),
], ids=["none", "default", "cat", "cats-any-all", "exclude-cats", "year-range", "year-min", "year-max",
        "exclude-ids", "combined"])
def test_filters_match_brute_force(built: tuple[VectorIndex, Data], f: VectorFilter | None) -> None:
    index, data = built
    for q in _queries(3, seed=11):
        _check(index.search("items_v1", q, K, f), data, q, K, f)


def test_payload_returned_only_when_asked_and_ids_round_trip(built: tuple[VectorIndex, Data]) -> None:
    index, data = built
    q = data.vectors[13]
    plain = index.search("items_v1", q, 5, VectorFilter(available_only=False))
    assert plain[0].id == data.ids[13] and plain[0].payload == {}  # odd characters survive
    full = index.search("items_v1", q, 5, VectorFilter(available_only=False), with_payload=True)
    p = full[0].payload
    want = data.payloads[13]
    assert p["categories"] == want["categories"] and p["tags"] == want["tags"]
    assert p.get("year") == want["year"] and p["available"] is True and p["popularity"] == want["popularity"]
    assert set(p) <= {"categories", "tags", "available", "popularity", "year"}  # no engine internals


def test_search_batch_equals_search(built: tuple[VectorIndex, Data]) -> None:
    index, data = built
    qs = _queries(6, seed=3)
    f = VectorFilter(categories_any=["sci-fi", "drama"])
    batch = index.search_batch("items_v1", qs, K, f)
    assert len(batch) == len(qs)
    for q, hits in zip(qs, batch, strict=True):
        assert [h.id for h in hits] == [h.id for h in index.search("items_v1", q, K, f)]
        _check(hits, data, q, K, f)
    assert index.search_batch("items_v1", np.zeros((0, D), np.float32), K) == []


def test_get_vectors_and_count(built: tuple[VectorIndex, Data]) -> None:
    index, data = built
    want = [data.ids[0], data.ids[1999], data.ids[777]]
    got = index.get_vectors("items_v1", [*want, "no-such-item"])
    assert set(got) == set(want)
    for i in want:
        assert got[i].dtype == np.float32
        np.testing.assert_allclose(got[i], data.vectors[data.pos[i]], atol=1e-5)
    assert index.count("items_v1") == 2000


def test_unfinalized_collection_searches_exactly(index: VectorIndex) -> None:
    data = make_data(1200, seed=5, prefix="raw")
    build(index, "raw", data, finalize=False)
    assert "raw" in index.list_collections() and index.count("raw") == 1200
    f = VectorFilter(categories_any=["doc"], year_min=1970)
    for q in _queries(3, seed=5):
        hits = index.search("raw", q, K, f)
        assert [h.id for h in hits] == data.exact(q, K, f)
    index.finalize("raw")
    q = _queries(1, seed=6)[0]
    _check(index.search("raw", q, K, f), data, q, K, f)


def test_upsert_replaces_a_point(index: VectorIndex) -> None:
    data = make_data(50, seed=1, prefix="u")
    build(index, "u", data, finalize=False)
    index.upsert("u", [data.ids[0]], -data.vectors[:1], [{"categories": ["doc"], "available": True, "year": 2001}])
    index.finalize("u")
    assert index.count("u") == 50
    hit = index.search("u", -data.vectors[0], 1, with_payload=True)[0]
    assert hit.id == data.ids[0] and hit.payload["categories"] == ["doc"] and hit.payload["year"] == 2001


def test_alias_switch_is_atomic_under_concurrent_reads(index: VectorIndex) -> None:
    a, b = make_data(600, seed=1, prefix="A"), make_data(600, seed=2, prefix="B")
    build(index, "col_a", a)
    build(index, "col_b", b)
    assert index.get_alias("live") is None
    index.set_alias("live", "col_a")
    assert index.get_alias("live") == "col_a"
    seen: list[set[str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    q = np.ones(D, np.float32) / np.sqrt(D)

    def reader() -> None:
        while not stop.is_set():
            try:
                hits = index.search("live", q, 10, VectorFilter(categories_any=["drama", "comedy"]))
                assert len(hits) == 10
                seen.append({h.id.split(":")[0] for h in hits})
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for k in range(8):
            index.set_alias("live", "col_b" if k % 2 == 0 else "col_a")
            assert index.get_alias("live") == ("col_b" if k % 2 == 0 else "col_a")
            n = len(seen)
            while len(seen) < n + 3 and not errors:  # let the readers search between switches
                stop.wait(0.001)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors[0]
    assert all(len(s) == 1 for s in seen)  # every answer comes wholly from one collection
    assert {"A", "B"} <= set().union(*seen)  # and both were served
    assert index.get_alias("live") == "col_a"
    assert index.search("live", a.vectors[3], 1)[0].id == a.ids[3]


def test_missing_collections_raise_collection_not_found(index: VectorIndex) -> None:
    q = np.ones(D, np.float32)
    calls = [
        lambda: index.search("nope", q, 5),
        lambda: index.search_batch("nope", q[None, :], 5),
        lambda: index.get_vectors("nope", ["x"]),
        lambda: index.count("nope"),
        lambda: index.upsert("nope", ["x"], q[None, :], [{}]),
        lambda: index.set_alias("live", "nope"),
        lambda: index.delete_collection("nope"),
        lambda: index.warm("nope"),
    ]
    for call in calls:
        with pytest.raises(CollectionNotFound):
            call()
    assert issubclass(CollectionNotFound, VectorStoreError)


def test_lifecycle_list_delete_and_alias_guard(index: VectorIndex) -> None:
    data = make_data(100, seed=3, prefix="L")
    build(index, "l1", data)
    build(index, "l2", data)
    with pytest.raises(VectorStoreError):
        index.create_collection("l1", D)  # exists
    assert index.list_collections() == ["l1", "l2"]
    index.set_alias("live", "l1")
    with pytest.raises(VectorStoreError):
        index.delete_collection("l1")  # behind an alias
    index.set_alias("live", "l2")
    index.delete_collection("l1")
    assert index.list_collections() == ["l2"] and index.count("live") == 100
    assert index.healthy()


def test_reopen_keeps_collections_aliases_and_answers(engine: str, scratch: Path) -> None:
    data = make_data(800, seed=4, prefix="P")
    first = open_engine(engine, scratch)
    build(first, "p1", data)
    first.set_alias("live", "p1")
    q = _queries(1, seed=8)[0]
    before = [h.id for h in first.search("live", q, K)]
    first.close()
    again = open_engine(engine, scratch)
    try:
        assert again.list_collections() == ["p1"] and again.get_alias("live") == "p1"
        assert again.count("live") == 800
        assert [h.id for h in again.search("live", q, K)] == before
        np.testing.assert_allclose(again.get_vectors("p1", [data.ids[5]])[data.ids[5]], data.vectors[5], atol=1e-5)
    finally:
        again.close()


def test_categories_are_keywords(built: tuple[VectorIndex, Data]) -> None:
    """A filter on a category nobody has returns nothing (not everything)."""
    index, _ = built
    assert index.search("items_v1", np.ones(D, np.float32), 5, VectorFilter(categories_any=["western"])) == []
