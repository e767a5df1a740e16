"""The hybrid's ``next`` network (gnn.nextk): its training pairs, what it learns on a case whose
answer is known, its numpy forward pass and its artifacts."""

from __future__ import annotations

import numpy as np

from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot


def _snap(sequences: list[list[int]], n_items: int) -> Snapshot:
    user, item, ts = [], [], []
    t = 0.0
    for u, seq in enumerate(sequences):
        for k in seq:
            t += 10.0
            user.append(u)
            item.append(k)
            ts.append(t)
    n = len(user)
    return Snapshot([f"u{u}" for u in range(len(sequences))], [f"i{i}" for i in range(n_items)], np.array(user),
                    np.array(item), np.array(ts), np.full(n, KIND_CODE["RATED"], dtype=np.int8),
                    np.ones(n, dtype=np.float32), [ItemContent(title=f"t{i}") for i in range(n_items)])


def test_pairs_are_a_prefix_and_the_items_after_it() -> None:
    """A 10-item sequence cut at half: the prefix's 5 items weighted by position back from the
    cut, the target the next max(3, ⌈0.25 · 5⌉) = 3 items; a repeated item counts once."""
    from gnn import nextk

    snap = _snap([[0, 1, 2, 3, 1, 4, 5, 6, 7, 8, 9]], 12)
    x, y = nextk.pairs(snap, np.ones(snap.num_interactions, dtype=bool), 1.0, cuts=(0.5,))
    assert x.shape == y.shape == (1, 12)
    np.testing.assert_allclose(x.toarray()[0, :5], [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0])
    assert x.toarray()[0, 5:].sum() == 0.0
    assert sorted(y.indices.tolist()) == [5, 6, 7]
    # Only the 3 newest prefix items with history=3; no pair when the prefix is under MIN_PREFIX.
    x, _ = nextk.pairs(snap, np.ones(snap.num_interactions, dtype=bool), None, history=3, cuts=(0.5, 0.2))
    assert x.shape[0] == 1 and sorted(x.indices.tolist()) == [2, 3, 4]


def test_the_network_learns_what_comes_next() -> None:
    """Users who start with items 0-2 go on to 3-5, those who start with 6-8 go on to 9-11: from
    a history of the first group's items the network ranks 3-5 first, and the other way round."""
    from gnn import nextk
    from graphrec.core.recs.hybrid import next_scores

    rng = np.random.default_rng(0)
    seqs = []
    for u in range(40):
        a, b = ([0, 1, 2], [3, 4, 5]) if u % 2 == 0 else ([6, 7, 8], [9, 10, 11])
        seqs.append(list(rng.permutation(a)) + list(rng.permutation(b)))
    snap = _snap(seqs, 12)
    x, y = nextk.pairs(snap, np.ones(snap.num_interactions, dtype=bool), 2.0, cuts=(0.5,))
    net = nextk.fit_dae(x, y, hidden=16, epochs=60, lr=1e-2, dropout=0.0)
    # A fit is reproducible (dropout's masks come from the seed, not torch's global RNG).
    a, b = (nextk.fit_dae(x, y, hidden=4, epochs=2, dropout=0.5, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a["w2"], b["w2"])
    assert net["w1"].shape == (12, 16) and net["w2"].shape == (16, 12) and net["b2"].shape == (12,)
    s = next_scores(np.array([[1.0, 0.5, 0.25]]), net, [2, 1, 0])
    assert s.shape == (1, 12)
    assert set(np.argsort(-s[0])[:3].tolist()) == {3, 4, 5}
    s = next_scores(np.array([[1.0, 0.5]]), net, [7, 8])
    assert set(np.argsort(-s[0])[:3].tolist()) == {9, 10, 11}
    # The sparse form (the offline evaluation's rows over the whole catalogue) equals the dense one.
    import scipy.sparse as sp

    row = sp.csr_matrix((np.array([1.0, 0.5]), (np.array([0, 0]), np.array([7, 8]))), shape=(1, 12))
    np.testing.assert_allclose(next_scores(row, net), s, rtol=1e-6)


def test_the_network_is_saved_with_the_hybrid(tmp_path) -> None:
    from graphrec.core.recs.hybrid import HybridScorer

    rng = np.random.default_rng(0)
    net = {"w1": rng.standard_normal((4, 3)).astype(np.float32), "b1": np.zeros(3, np.float32),
           "w2": rng.standard_normal((3, 4)).astype(np.float32), "b2": np.ones(4, np.float32)}
    h = HybridScorer(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), np.ones(4, np.float32),
                     {"next": 1.0}, {"next_half": 5.0}, next=net)
    h.save(tmp_path)
    got = HybridScorer.load(tmp_path)
    assert got is not None and got.next is not None
    for k in ("w1", "b1", "w2", "b2"):
        np.testing.assert_array_equal(got.next[k], net[k])
    recent = [{"item_id": "b", "type": "RATED", "ts": 2.0}, {"item_id": "a", "type": "RATED", "ts": 1.0}]
    index = {"a": 0, "b": 1, "c": 2, "d": 3}
    from graphrec.core.recs.hybrid import next_scores, position_weights, zscore

    expected = zscore(next_scores(position_weights(np.arange(2), 5.0)[None, :], net, [1, 0]))[0]
    np.testing.assert_allclose(got.scores(recent, index, None, None), expected, rtol=1e-6)


def test_the_network_reads_the_whole_history_online_as_offline() -> None:
    """``fit_next``'s network reads the recent items and the whole prefix (``w1``: a row per item
    for each part); the engine's input (recent items by position, every consumed positive, skipped
    ones left out) gives the scores the offline rows give (:func:`next_rows`), and without the
    consumed items it reads the recent ones for both parts. A network fit before it (one part)
    is served as it was fit."""
    import scipy.sparse as sp

    from gnn import nextk
    from graphrec.core.recs.hybrid import (
        HybridScorer,
        next_rows,
        next_scores,
        position_weights,
        reads_whole,
        zscore,
    )

    rng = np.random.default_rng(1)
    snap = _snap([list(rng.permutation(12)[:9]) for _ in range(30)], 12)
    every = np.ones(snap.num_interactions, dtype=bool)
    net = nextk.fit_next(snap, every, 2.0, history=3, seed=0)
    assert net["w1"].shape == (24, nextk.HIDDEN) and reads_whole(net)
    h = HybridScorer(np.eye(12, dtype=np.float32), np.eye(12, dtype=np.float32), np.ones(12, np.float32),
                     {"next": 1.0}, {"next_half": 2.0, "history": 3}, next=net)
    index = {f"i{i}": i for i in range(12)}
    seq = [4, 9, 1, 7, 0]  # oldest first
    recent = [{"item_id": f"i{k}", "type": "RATED", "ts": float(t)} for t, k in enumerate(seq)][::-1]
    consumed = {f"i{k}": {"RATED"} for k in seq} | {"i11": {"SKIPPED"}}
    r = sp.csr_matrix((position_weights(np.arange(3), 2.0), (np.zeros(3, int), [0, 7, 1])), shape=(1, 12))
    a = sp.csr_matrix((np.ones(5), (np.zeros(5, int), seq)), shape=(1, 12))
    expected = zscore(next_scores(next_rows(r, a), net))[0]
    np.testing.assert_allclose(h.scores(recent, index, None, None, consumed=consumed), expected, rtol=1e-5, atol=1e-6)
    a3 = sp.csr_matrix((np.ones(3), (np.zeros(3, int), [0, 7, 1])), shape=(1, 12))
    np.testing.assert_allclose(h.scores(recent, index, None, None), zscore(next_scores(next_rows(r, a3), net))[0],
                               rtol=1e-5, atol=1e-6)
    old = {"w1": net["w1"][:12], "b1": net["b1"], "w2": net["w2"], "b2": net["b2"]}
    assert not reads_whole(old)
    h.next = old
    np.testing.assert_allclose(h.scores(recent, index, None, None, consumed=consumed),
                               zscore(next_scores(r, old))[0], rtol=1e-5, atol=1e-6)
