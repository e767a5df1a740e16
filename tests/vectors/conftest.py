"""Fixtures for the vector-index tests: each real engine that runs here, on a scratch directory.

Scratch directories live on ``/dev/shm`` when it exists: qdrant-client's local mode commits one
SQLite transaction per point (≈9 ms each on disk, ≈60 µs on tmpfs); the engines behave the same.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec.core.vectors.base import VectorFilter, VectorIndex
from graphrec.core.vectors.edge import EdgeIndex
from graphrec.core.vectors.qdrant_server import QdrantIndex

ENGINES = ["edge", "qdrant-local"]
D = 16
CATS = ["drama", "comedy", "horror", "sci-fi", "doc"]


def open_engine(engine: str, root: Path, **kw: Any) -> VectorIndex:
    """An engine on ``root``. Edge gets tiny thresholds so that even 2,000 points are HNSW-indexed
    (with payload-aware links) and filtered searches walk the graph, as they do at scale."""
    if engine == "edge":
        return EdgeIndex(root / "edge", indexing_threshold=1, full_scan_threshold=1, **kw)
    return QdrantIndex(path=str(root / "qdrant-local"), **kw)


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    d = Path(tempfile.mkdtemp(prefix="graphrec-vec-", dir=base))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(engine: str, scratch: Path) -> Iterator[VectorIndex]:
    idx = open_engine(engine, scratch)
    yield idx
    idx.close()


@dataclass
class Data:
    """Items with unit vectors and payloads, and the exact answer for any query and filter."""

    ids: list[str]
    vectors: np.ndarray
    payloads: list[dict[str, Any]]

    def exact(self, q: np.ndarray, k: int, f: VectorFilter | None = None) -> list[str]:
        scores = self.vectors @ (q / np.linalg.norm(q))
        keep = [i for i in np.argsort(-scores) if f is None or f.matches(self.ids[i], self.payloads[i])]
        return [self.ids[i] for i in keep[:k]]

    def cosine(self, item_id: str, q: np.ndarray) -> float:
        return float(self.vectors[self.pos[item_id]] @ (q / np.linalg.norm(q)))

    @property
    def pos(self) -> dict[str, int]:
        return {i: k for k, i in enumerate(self.ids)}


def make_data(n: int, seed: int, prefix: str) -> Data:
    """Ids with characters an engine might choke on; a few items without year, some unavailable."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, D)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = [f"{prefix}:{k}/ü é#{k % 3}" for k in range(n)]
    payloads = []
    for k in range(n):
        cats = [CATS[k % 5]] + ([CATS[(k + 2) % 5]] if k % 3 == 0 else [])
        payloads.append({"categories": cats, "tags": [f"t{k % 11}"], "available": k % 7 != 0,
                         "popularity": float(k % 100), "year": None if k % 13 == 0 else 1950 + k % 70})
    return Data(ids, v, payloads)


def build(index: VectorIndex, name: str, data: Data, batch: int = 700, finalize: bool = True) -> None:
    index.create_collection(name, D)
    for s in range(0, len(data.ids), batch):
        index.upsert(name, data.ids[s:s + batch], data.vectors[s:s + batch], data.payloads[s:s + batch])
    if finalize:
        index.finalize(name)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest) -> Iterator[tuple[VectorIndex, Data]]:
    """One finished 2,000 × 16 collection per engine, shared by the read-only tests of a module."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="graphrec-vec-", dir=base))
    idx = open_engine(str(request.param), root)
    data = make_data(2000, seed=0, prefix="item")
    build(idx, "items_v1", data)
    yield idx, data
    idx.close()
    shutil.rmtree(root, ignore_errors=True)

