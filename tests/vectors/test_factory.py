"""Which engine the settings (or explicit arguments) open."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from graphrec.core.config import Settings
from graphrec.core.errors import ConfigError
from graphrec.core.vectors import VectorIndex, open_vector_index
from graphrec.core.vectors.edge import EdgeIndex
from graphrec.core.vectors.qdrant_server import QdrantIndex


def _settings(tmp_path: Path, **qdrant: object) -> Settings:
    s = Settings(var_dir=tmp_path)
    return s.model_copy(update={"qdrant": s.qdrant.model_copy(update=qdrant)})


def test_settings_pick_the_engine(tmp_path: Path) -> None:
    edge = open_vector_index(_settings(tmp_path, hnsw_ef=300))
    assert isinstance(edge, EdgeIndex) and isinstance(edge, VectorIndex)
    assert edge.root == tmp_path / "vectors" and edge.hnsw_ef == 300
    local = open_vector_index(_settings(tmp_path, backend="qdrant"))
    assert isinstance(local, QdrantIndex) and local.local and (tmp_path / "qdrant-local").is_dir()
    local.close()
    remote = open_vector_index(_settings(tmp_path, backend="qdrant", url="https://127.0.0.1:9",
                                         api_key=SecretStr("k"), shards=4, replicas=2, quantization="scalar"))
    assert isinstance(remote, QdrantIndex) and not remote.local
    assert (remote.shards, remote.replicas, remote.quantization) == (4, 2, "scalar")
    # A url alone moves graphrec to the server (docs/scaling.md).
    assert isinstance(open_vector_index(_settings(tmp_path, url="http://127.0.0.1:9")), QdrantIndex)


def test_explicit_arguments(tmp_path: Path) -> None:
    idx = open_vector_index(backend="edge", path=tmp_path / "e", hnsw_ef=64, read_only=True, m=24)
    assert isinstance(idx, EdgeIndex) and idx.read_only and idx.m == 24 and idx.hnsw_ef == 64
    mem = open_vector_index(backend="qdrant", path=":memory:")
    assert isinstance(mem, QdrantIndex) and mem.list_collections() == []
    # arguments override settings
    over = open_vector_index(_settings(tmp_path, backend="qdrant"), backend="edge", path=tmp_path / "o")
    assert isinstance(over, EdgeIndex) and over.root == tmp_path / "o"
    with pytest.raises(ConfigError):
        open_vector_index(backend="edge")  # nowhere to put the shards
    with pytest.raises(ConfigError):
        open_vector_index(backend="faiss", path=tmp_path)  # type: ignore[arg-type]
