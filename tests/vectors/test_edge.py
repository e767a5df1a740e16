"""What only the embedded engine has to get right: files, processes and the HNSW build."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from graphrec.core.errors import VectorStoreError
from graphrec.core.vectors.base import VectorFilter
from graphrec.core.vectors.edge import EdgeIndex

from .conftest import D, build, make_data, open_engine

READER = textwrap.dedent("""
    import sys
    import numpy as np
    from graphrec.core.vectors.edge import EdgeIndex

    idx = EdgeIndex(sys.argv[1], read_only=True)
    q = np.ones(int(sys.argv[2]), np.float32)
    for line in sys.stdin:
        hits = idx.search("live", q, 10, None)
        print(",".join(sorted({h.id.split(":")[0] for h in hits})), flush=True)
""")


def test_another_process_reads_the_shards_and_follows_the_alias(scratch: Path) -> None:
    """API workers are separate processes: each loads the finished shards (no WAL lock) and sees
    an alias switch at its next search, even after the old collection is deleted."""
    idx = open_engine("edge", scratch)
    build(idx, "v1", make_data(300, seed=1, prefix="A"))
    build(idx, "v2", make_data(300, seed=2, prefix="B"))
    idx.set_alias("live", "v1")
    child = subprocess.Popen([sys.executable, "-c", READER, str(idx.root), str(D)],  # type: ignore[attr-defined]
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None

    def ask() -> str:
        child.stdin.write("search\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        line = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert line, child.stderr.read() if child.poll() is not None else "no answer"  # type: ignore[union-attr]
        return line

    try:
        assert ask() == "A"
        idx.set_alias("live", "v2")
        assert ask() == "B"
        idx.delete_collection("v1")
        assert ask() == "B"
        build(idx, "v3", make_data(300, seed=3, prefix="C"))
        idx.set_alias("live", "v3")
        assert ask() == "C"
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        idx.close()
    assert child.returncode == 0


def test_alias_file_is_replaced_atomically_and_read_only_refuses_writes(scratch: Path) -> None:
    idx = EdgeIndex(scratch)
    build(idx, "c1", make_data(50, seed=1, prefix="c"))
    idx.set_alias("live", "c1")
    assert (scratch / "aliases.json").read_text().strip().startswith("{")
    assert not list(scratch.glob(".aliases.*.tmp"))  # no temp file left behind
    reader = EdgeIndex(scratch, read_only=True)
    assert reader.get_alias("live") == "c1" and reader.count("live") == 50
    for write in (lambda: reader.create_collection("c2", D), lambda: reader.set_alias("live", "c1"),
                  lambda: reader.delete_collection("c1"), lambda: reader.finalize("c1"),
                  lambda: reader.upsert("c1", ["x"], np.ones((1, D), np.float32), [{}])):
        with pytest.raises(VectorStoreError, match="read-only"):
            write()
    (scratch / "aliases.json").write_text("{not json")
    assert not reader.healthy()
    with pytest.raises(VectorStoreError):
        reader.search("live", np.ones(D, np.float32), 3)
    reader.close()
    idx.close()


def test_only_finalized_collections_go_live_and_names_do_not_clash(scratch: Path) -> None:
    idx = EdgeIndex(scratch)
    build(idx, "half", make_data(50, seed=1, prefix="h"), finalize=False)
    with pytest.raises(VectorStoreError, match="not finalized"):
        idx.set_alias("live", "half")
    idx.finalize("half")
    idx.set_alias("live", "half")
    with pytest.raises(VectorStoreError):
        idx.create_collection("live", D)  # an alias already has that name
    with pytest.raises(VectorStoreError):
        idx.set_alias("half", "half")  # a collection already has that name
    for bad in ("", "../x", ".hidden", "aliases.json"):
        with pytest.raises(VectorStoreError):
            idx.create_collection(bad, D)
    idx.close()


def test_finalize_builds_the_hnsw_and_ef_reaches_top_100(scratch: Path) -> None:
    idx = EdgeIndex(scratch, indexing_threshold=1, full_scan_threshold=1, hnsw_ef=8)
    data = make_data(3000, seed=9, prefix="H")
    build(idx, "h", data)
    _, shard = idx._shard("h")
    assert shard.info().indexed_vectors_count == 3000  # searched through HNSW, not brute force
    q = np.random.default_rng(1).standard_normal(D).astype(np.float32)
    f = VectorFilter(available_only=False)
    hits = idx.search("h", q, 100, f)  # ef is raised to k: a full, sorted top-100
    assert len(hits) == 100
    assert len({h.id for h in hits} & set(data.exact(q, 100, f))) >= 95
    assert repr(idx).startswith("EdgeIndex(") and "hnsw_ef=8" in repr(idx)
    idx.close()


def test_scalar_quantization_rescores_with_the_original_vectors(scratch: Path) -> None:
    idx = EdgeIndex(scratch, indexing_threshold=1, full_scan_threshold=1, quantization="scalar")
    data = make_data(3000, seed=11, prefix="Q")
    build(idx, "q", data)
    q = np.random.default_rng(2).standard_normal(D).astype(np.float32)
    f = VectorFilter(available_only=False)
    hits = idx.search("q", q, 50, f)
    assert len({h.id for h in hits} & set(data.exact(q, 50, f))) >= 47
    # Scores are the exact cosines (rescored), not the int8 approximations.
    vecs = idx.get_vectors("q", [h.id for h in hits[:5]])
    qn = q / np.linalg.norm(q)
    for h in hits[:5]:
        v = vecs[h.id] / np.linalg.norm(vecs[h.id])
        assert abs(h.score - float(v @ qn)) < 1e-4
    with pytest.raises(VectorStoreError):
        EdgeIndex(scratch, quantization="pq")
    idx.close()


def test_hits_are_named_from_the_id_map_and_from_the_payload_when_it_lacks_them(scratch: Path) -> None:
    from graphrec.core.vectors.edge import IdMap

    idx = EdgeIndex(scratch, indexing_threshold=1, full_scan_threshold=1)
    data = make_data(1500, seed=13, prefix="M")
    build(idx, "m", data, finalize=False)
    assert idx.search("m", data.vectors[0], 1, None)[0].id == data.ids[0]  # before finalize: no map yet
    idx.finalize("m")
    assert idx._idmap("m") is not None  # the builder uses the map it wrote, not the "no map" it saw before
    assert all((scratch / "m" / f).exists() for f in ("ids.points.npy", "ids.offsets.npy", "ids.blob.npy"))
    q = np.random.default_rng(3).standard_normal(D).astype(np.float32)
    f = VectorFilter(available_only=False)
    want = set(data.exact(q, 20, f))
    assert len({h.id for h in idx.search("m", q, 20, f)} & want) >= 19  # unicode ids round-trip
    # A point written after finalize is not in the map: its id comes from its payload.
    idx.upsert("m", ["late/ü"], q[None, :], [{"available": True}])
    hits = idx.search("m", q, 5, f)
    assert hits[0].id == "late/ü" and abs(hits[0].score - 1.0) < 1e-4
    assert [h.id for h in idx.search_batch("m", q[None, :], 5, f)[0]] == [h.id for h in hits]
    idx.close()
    # A shard without a map (built before it existed) answers from the payload, in another instance.
    for name in ("ids.points.npy", "ids.offsets.npy", "ids.blob.npy"):
        (scratch / "m" / name).unlink()
    reader = EdgeIndex(scratch, read_only=True)
    assert [h.id for h in reader.search("m", q, 5, f)] == [h.id for h in hits]
    reader.close()
    m = IdMap.build({7: "seven", 3: "three", 2**62: "big/ü"})
    assert m.lookup([3, 2**62, 5, 7]) == ["three", "big/ü", None, "seven"]
    assert IdMap.build({}).lookup([1]) == [None]


def test_warm_opens_the_shard_and_its_id_map_before_the_first_search(scratch: Path) -> None:
    """A reader maps a shard on first use (3.4 s at 1M points, inline in the API's event loop):
    ``warm`` does it up front, through an alias too, and leaves searches unchanged."""
    builder = EdgeIndex(scratch, indexing_threshold=1, full_scan_threshold=1)
    data = make_data(500, seed=21, prefix="W")
    build(builder, "w1", data)
    builder.set_alias("live", "w1")
    builder.close()
    reader = EdgeIndex(scratch, read_only=True)
    assert reader._shards == {}
    reader.warm("live")
    assert set(reader._shards) == {"w1"} and reader._idmaps["w1"] is not None
    q = data.vectors[7]
    assert reader.search("live", q, 1, None)[0].id == data.ids[7]
    # The alias moves on (a promotion): the warmed collection stays open until another is warmed
    # (the engine's live model searches it until its next poll; reopening it would stall).
    builder = EdgeIndex(scratch, indexing_threshold=1, full_scan_threshold=1)
    build(builder, "w2", make_data(500, seed=22, prefix="V"))
    builder.set_alias("live", "w2")
    builder.close()
    assert reader.search("live", q, 1, None)[0].id.startswith("V")
    assert set(reader._shards) == {"w1", "w2"}
    assert reader.search("w1", q, 1, None)[0].id == data.ids[7]
    reader.warm("w2")
    assert set(reader._shards) == {"w2"}
    reader.close()
