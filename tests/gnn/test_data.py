"""Snapshot.from_rows: loader rows → the arrays the GNN trains on, without the graph."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.core.records import InteractionRow, ItemRow, UserRow
from graphrec.core.snapshot import KIND_CODE, Snapshot


def _rows() -> tuple[list[UserRow], list[ItemRow], list[InteractionRow]]:
    users = [UserRow(id="u1"), UserRow(id="u2")]
    items = [ItemRow(id="b", title="Bee", year=2001, categories=["x"], tags=["t1", "t2"]),
             ItemRow(id="a", title="Ay", available=False)]
    inter = [InteractionRow(user_id="u2", item_id="a", type="VIEW", ts=30, dwell_seconds=12.5),
             InteractionRow(user_id="u1", item_id="a", type="RATE", ts=20, value=4),
             InteractionRow(user_id="u1", item_id="b", type="CLICK", ts=10),
             InteractionRow(user_id="u3", item_id="b", type="PURCHASE", ts=5)]
    return users, items, inter


def test_from_rows_maps_ids_kinds_values_and_sorts_like_the_export() -> None:
    snap = Snapshot.from_rows(*_rows())
    assert snap.user_ids == ["u1", "u2", "u3"]  # row order; u3 added on first sight, like the loader
    assert snap.item_ids == ["b", "a"]
    assert snap.items[0].categories == ["x"] and snap.items[0].tags == ["t1", "t2"] and snap.items[0].year == 2001
    assert snap.items[1].available is False and snap.items[1].categories == []
    # Sorted by user, then time.
    assert snap.user.tolist() == [0, 0, 1, 2]
    assert snap.item.tolist() == [0, 1, 1, 0]
    assert snap.ts.tolist() == [10.0, 20.0, 30.0, 5.0]
    assert snap.kind.tolist() == [KIND_CODE[k] for k in ("CLICKED", "RATED", "VIEWED", "PURCHASED")]
    assert snap.value.tolist() == [0.0, 4.0, 12.5, 0.0]  # rating, else dwell seconds, else 0
    assert [a.dtype for a in (snap.user, snap.item, snap.ts, snap.kind, snap.value)] == \
        [np.int64, np.int64, np.float64, np.int8, np.float32]
    assert snap.stats() == {"users": 3, "items": 2, "interactions": 4, "max_ts": 30.0}


def test_from_rows_refuses_an_unknown_item() -> None:
    users, items, inter = _rows()
    with pytest.raises(ValueError, match="unknown item 'zz'"):
        Snapshot.from_rows(users, items, [*inter, InteractionRow(user_id="u1", item_id="zz", type="CLICK", ts=1)])


def test_eval_sample_keeps_whole_users_and_is_seeded() -> None:
    from types import SimpleNamespace

    from gnn.lifecycle import eval_sample

    rng = np.random.default_rng(0)
    user = rng.integers(0, 50, size=2000)
    snap = SimpleNamespace(user=user, num_users=50)
    va, te = rng.random(2000) < 0.1, rng.random(2000) < 0.1
    te &= ~va
    same = eval_sample(snap, va, te, 0, 1)  # type: ignore[arg-type]
    assert same[0] is va and same[1] is te
    sv, st = eval_sample(snap, va, te, 10, 1)  # type: ignore[arg-type]
    kept = set(user[sv | st].tolist())
    assert len(kept) == 10
    for u in kept:  # a sampled user keeps all of its validation and test interactions
        assert (sv[user == u] == va[user == u]).all() and (st[user == u] == te[user == u]).all()
    assert not (sv & ~va).any() and not (st & ~te).any()
    again = eval_sample(snap, va, te, 10, 1)  # type: ignore[arg-type]
    assert (again[0] == sv).all() and (again[1] == st).all()
