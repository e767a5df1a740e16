"""The neighbour lists' files (graphrec.core.recs.neighbour_index): what refresh-neighbours writes
is what the engine reads back, ids found by binary search whatever their width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.core.recs.neighbour_index import KEEP, NeighbourIndex, write

IDS = ["m10", "b", "a-long-item-id", "z", "m9"]  # rows 0..4, not sorted, of several widths


def rows(spec: dict[int, list[tuple[int, float]]]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [(i, np.array([j for j, _ in nb], dtype=np.int64), np.array([s for _, s in nb], dtype=np.float32))
            for i, nb in spec.items()]


def test_lists_come_back_as_written_by_id_with_their_scores(tmp_path: Path) -> None:
    co = {0: [(1, 0.875), (4, 0.5), (2, 0.25)], 1: [(0, 0.875)], 2: [], 4: [(3, 0.125)]}
    content = {3: [(2, 0.75)]}
    path = write(tmp_path, "v1", IDS, {"CO_INTERACTED": rows(co), "SIMILAR_CONTENT": rows(content)})
    idx = NeighbourIndex.open(path)
    assert idx.version == "v1" and len(idx) == 5
    got = idx.lists("CO_INTERACTED", ["m10", "z", "a-long-item-id", "ghost", "m1", "m100"], per_item=50)
    # An item held with no neighbours (z: no row; a-long-item-id: an empty one) is an empty list;
    # ids not held (ghost, and m1 / m100 around m10 in the sorted order) are left out.
    assert {i: lst.pairs() for i, lst in got.items()} == {
        "m10": (("b", 0.875), ("m9", 0.5), ("a-long-item-id", 0.25)), "z": (), "a-long-item-id": ()}
    assert got["m10"].scores.dtype == np.float64
    assert idx.lists("CO_INTERACTED", ["m10"], per_item=2)["m10"].ids == ("b", "m9")  # at most per_item
    assert idx.lists("SIMILAR_CONTENT", ["z", "b"], per_item=50)["z"].pairs() == (("a-long-item-id", 0.75),)
    assert idx.positions([]).shape == (0,)
    assert (idx.positions(["b", "nope", "z"]) >= 0).tolist() == [True, False, True]


def test_a_version_appears_whole_and_old_ones_are_pruned(tmp_path: Path) -> None:
    for v in ("v1", "v2", "v3"):
        write(tmp_path, v, IDS, {"CO_INTERACTED": rows({0: [(1, 1.0)]})})
    assert KEEP == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["v2", "v3"]
    idx = NeighbourIndex.open(tmp_path / "v3")
    assert idx.lists("SIMILAR_CONTENT", ["m10"], per_item=5)["m10"].ids == ()  # a kind not written: held, empty


def test_a_directory_that_is_not_whole_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "v1", IDS, {"CO_INTERACTED": rows({0: [(1, 1.0)]})})
    np.save(path / "CO_INTERACTED.indptr.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="do not match"):
        NeighbourIndex.open(path)
    with pytest.raises(OSError):
        NeighbourIndex.open(tmp_path / "v9")
    with pytest.raises(ValueError, match="unknown neighbour kind"):
        write(tmp_path, "v2", IDS, {"LIKES": []})


def test_an_empty_catalogue(tmp_path: Path) -> None:
    idx = NeighbourIndex.open(write(tmp_path, "v1", [], {"CO_INTERACTED": []}))
    assert len(idx) == 0 and idx.lists("CO_INTERACTED", ["a"], 10) == {}
