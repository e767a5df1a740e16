"""Top-k cosine neighbours (gnn.neighbours): the sparse, chunked computation against a dense
brute force, and the frequent-feature cap of the content matrix."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from gnn.neighbours import content_matrix, top_k_cosine


def brute_force(x: sp.csr_matrix, k: int) -> dict[int, list[tuple[int, float]]]:
    d = x.toarray().astype(np.float64)
    n = np.linalg.norm(d, axis=1)
    n[n == 0] = 1
    s = (d / n[:, None]) @ (d / n[:, None]).T
    out = {}
    for i in range(len(d)):
        row = [(j, s[i, j]) for j in range(len(d)) if j != i and s[i, j] > 1e-6]
        out[i] = sorted(row, key=lambda t: (-round(t[1], 5), t[0]))[:k]
    return out


def test_sparse_top_k_matches_brute_force_in_any_chunking() -> None:
    x = sp.random(300, 40, density=0.08, random_state=4, format="csr", dtype=np.float32)
    x.data = np.round(x.data * 4) + 1  # small integers: plenty of ties
    x = sp.vstack([x[:5], sp.csr_matrix((1, 40), dtype=np.float32), x[6:]]).tocsr()  # row 5 empty
    want = brute_force(x, 7)
    runs = []
    for chunk, budget in ((2048, 50_000_000), (16, 50_000_000), (64, 500)):
        got = {i: list(zip(c.tolist(), s.tolist(), strict=True)) for i, c, s in top_k_cosine(x, 7, chunk, budget)}
        assert set(got) == set(range(300)) and got[5] == []
        for i in range(300):
            assert np.allclose([s for _, s in got[i]], [s for _, s in want[i]], atol=1e-5)  # the same top scores
            ids = [j for j, _ in got[i]]
            assert i not in ids and len(set(ids)) == len(ids)
            if want[i]:  # everything clearly above the k-th score is in, whatever the ties below
                kth = want[i][-1][1]
                assert {j for j, s in want[i] if s > kth + 1e-5} <= set(ids)
        runs.append(got)
    assert runs[0] == runs[1] == runs[2]  # chunking never changes an answer, ties included


def test_content_matrix_drops_features_held_by_too_many_items() -> None:
    items = [SimpleNamespace(categories=("common",), tags=("t1",) if i < 3 else ("t2",), entities=()) for i in range(10)]
    x = content_matrix(SimpleNamespace(items=items, num_items=10), max_feature_items=8)  # type: ignore[arg-type]
    assert x.shape[0] == 10
    cols = {tuple(x[i].indices.tolist()) for i in range(10)}
    assert len(cols) == 2  # only t1 and t2 remain: "common" (10 items) links nothing
    full = content_matrix(SimpleNamespace(items=items, num_items=10), max_feature_items=100)  # type: ignore[arg-type]
    assert full.nnz == x.nnz  # a feature every item holds has idf log(11/11) = 0: never stored either
