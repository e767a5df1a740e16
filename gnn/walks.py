"""PinSage importance neighbourhoods from random walks over the user–item graph.

From every item, ``walks`` random walks with restart hop item → user → item (each hop uniform
over the current node's edges); after every hop the walk restarts at its start item with
probability ``restart``. An item's neighbourhood is the ``top_t`` items visited most often
(the start excluded), and the visit counts, normalised to sum to 1, are kept as importance
weights. Vectorised over all walks of a chunk of start items, so it scales to 1M items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def importance_neighbourhoods(user: np.ndarray, item: np.ndarray, num_users: int, num_items: int, top_t: int = 20,
                              walks: int = 200, length: int = 3, restart: float = 0.5, seed: int = 0,
                              chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(nbr [num_items, top_t] int64, weight [num_items, top_t] float32)``; missing
    neighbours are ``-1`` with weight 0 (an item nobody interacted with has none)."""
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix((np.ones(len(user), np.int8), (item, user)), shape=(num_items, num_users))
    m.data[:] = 1
    i2u = m.tocsr()
    u2i = m.T.tocsr()
    nbr = np.full((num_items, top_t), -1, dtype=np.int64)
    wgt = np.zeros((num_items, top_t), dtype=np.float32)
    deg_i = np.diff(i2u.indptr)
    deg_u = np.diff(u2i.indptr)
    for lo in range(0, num_items, chunk):
        hi = min(num_items, lo + chunk)
        starts = np.repeat(np.arange(lo, hi), walks)
        starts = starts[deg_i[starts] > 0]
        if len(starts) == 0:
            continue
        cur = starts.copy()
        visits_from: list[np.ndarray] = []
        visits_to: list[np.ndarray] = []
        for _ in range(length):
            d = deg_i[cur]
            u = i2u.indices[i2u.indptr[cur] + (rng.random(len(cur)) * d).astype(np.int64)]
            du = deg_u[u]
            nxt = u2i.indices[u2i.indptr[u] + (rng.random(len(u)) * du).astype(np.int64)]
            keep = nxt != starts
            visits_from.append(starts[keep])
            visits_to.append(nxt[keep])
            back = rng.random(len(cur)) < restart
            cur = np.where(back, starts, nxt)
        f = np.concatenate(visits_from)
        t = np.concatenate(visits_to)
        counts = sp.csr_matrix((np.ones(len(f), np.float32), (f - lo, t)), shape=(hi - lo, num_items))
        counts.sum_duplicates()
        for r in range(hi - lo):
            s, e = counts.indptr[r], counts.indptr[r + 1]
            if s == e:
                continue
            cols, vals = counts.indices[s:e], counts.data[s:e]
            k = min(top_t, e - s)
            top = np.argpartition(-vals, k - 1)[:k]
            top = top[np.lexsort((cols[top], -vals[top]))]
            nbr[lo + r, :k] = cols[top]
            wgt[lo + r, :k] = vals[top] / vals[top].sum()
    return nbr, wgt
