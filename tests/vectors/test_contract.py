"""One contract, every engine that runs here: Qdrant Edge and qdrant-client local mode."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec.errors import CollectionNotFound
from graphrec.vectors.base import VectorFilter
from graphrec.vectors.edge import EdgeIndex
from graphrec.vectors.qdrant_server import QdrantIndex

N, D = 1500, 16
CATS = ["a", "b", "c", "d"]


@pytest.fixture(params=["edge", "qdrant-local"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    idx = EdgeIndex(tmp_path / "edge") if request.param == "edge" else QdrantIndex(path=str(tmp_path / "ql"))
    yield idx
    idx.close()


def _data(seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((N, D)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = [f"item-{seed}-{k}" for k in range(N)]
    pl = [{"categories": [CATS[k % 4]] + ([CATS[(k + 1) % 4]] if k % 7 == 0 else []), "tags": [],
           "available": k % 9 != 0, "popularity": float(k), "year": 1950 + k % 70} for k in range(N)]
    return ids, v, pl


def _build(index: Any, name: str, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    ids, v, pl = _data(seed)
    index.create_collection(name, D)
    for s in range(0, N, 500):
        index.upsert(name, ids[s:s + 500], v[s:s + 500], pl[s:s + 500])
    index.finalize(name)
    return ids, v, pl


def _exact(ids: list[str], v: np.ndarray, pl: list[dict[str, Any]], q: np.ndarray, k: int, f: VectorFilter | None) -> list[str]:
    s = v @ q
    order = np.argsort(-s)
    return [ids[i] for i in order if f is None or f.matches(ids[i], pl[i])][:k]


def test_topk_matches_exact_cosine(index: Any) -> None:
    ids, v, pl = _build(index, "c1")
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = rng.standard_normal(D).astype(np.float32)
        q /= np.linalg.norm(q)
        hits = index.search("c1", q, 20)
        want = _exact(ids, v, pl, q, 20, None)
        assert len(set(h.id for h in hits) & set(want)) >= 19  # ANN may miss one at most here
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert abs(hits[0].score - float(v[ids.index(hits[0].id)] @ q)) < 1e-4


@pytest.mark.parametrize("f", [
    VectorFilter(categories_any=["b"]),
    VectorFilter(exclude_categories=["a", "c"]),
    VectorFilter(available_only=True, year_min=1990, year_max=2000),
    VectorFilter(categories_any=["a", "d"], exclude_ids=[f"item-0-{k}" for k in range(0, 400, 4)]),
    VectorFilter(available_only=False),
])
def test_filters_match_brute_force(index: Any, f: VectorFilter) -> None:
    ids, v, pl = _build(index, "c2")
    q = v[7]
    hits = index.search("c2", q, 30, f, with_payload=True)
    want = _exact(ids, v, pl, q, 30, f)
    assert all(f.matches(h.id, pl[ids.index(h.id)]) for h in hits)
    assert len(set(h.id for h in hits) & set(want)) >= 28
    assert set(hits[0].payload) >= {"categories", "year"}


def test_alias_switch_is_atomic_under_concurrent_reads(index: Any) -> None:
    _build(index, "v1", seed=1)
    _build(index, "v2", seed=2)
    index.set_alias("live", "v1")
    assert index.get_alias("live") == "v1"
    seen: list[set[str]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        q = np.ones(D, np.float32) / np.sqrt(D)
        while not stop.is_set():
            try:
                seen.append({h.id.split("-")[1] for h in index.search("live", q, 10)})
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for k in range(6):
        index.set_alias("live", "v2" if k % 2 == 0 else "v1")
    stop.set()
    t.join()
    assert not errors and seen
    assert all(len(s) == 1 for s in seen)  # every answer comes wholly from one collection
    assert index.get_alias("live") == "v1"


def test_missing_collection_and_lifecycle(index: Any) -> None:
    with pytest.raises(CollectionNotFound):
        index.search("nope", np.ones(D, np.float32), 5)
    ids, v, _ = _build(index, "c3")
    assert index.count("c3") == N
    got = index.get_vectors("c3", ids[:3])
    assert set(got) == set(ids[:3]) and np.allclose(got[ids[1]], v[1], atol=1e-5)
    assert "c3" in index.list_collections()
    index.delete_collection("c3")
    assert "c3" not in index.list_collections()


def test_edge_reopens_and_sees_other_writers_alias(tmp_path: Path) -> None:
    a = EdgeIndex(tmp_path / "e")
    _build(a, "x1", seed=3)
    _build(a, "x2", seed=4)
    a.set_alias("live", "x1")
    b = EdgeIndex(tmp_path / "e")  # another process would do the same
    q = np.ones(D, np.float32)
    assert b.search("live", q, 3)[0].id.startswith("item-3-")
    a.set_alias("live", "x2")
    assert b.search("live", q, 3)[0].id.startswith("item-4-")
    a.close()
    b.close()
