"""Strong, simple baselines on the same split: MostPopular, ItemKNN, ALS (``implicit``), EASE.

Each has ``fit(train)`` on a user×item 0/1 CSR matrix and ``score(users) -> [len(users), n_items]``.
Hyperparameters are chosen on the validation split by :func:`gnn.evaluate.run`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

#: EASE solutions kept by :func:`ease_weights` (bytes; least recently used dropped first).
EASE_CACHE_BYTES = 256 * 2**20
_EASE_CACHE: OrderedDict[tuple[str, float], np.ndarray] = OrderedDict()


def _fingerprint(x: sp.csr_matrix) -> str:
    h = hashlib.sha1(repr((x.shape, x.dtype.str)).encode())
    for a in (x.indptr, x.indices, x.data):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def ease_weights(x: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE's item-item weights for ``x`` (user×item) and ``lam``: B = I - P·diag(1/diag(P)) with
    P = (XᵀX + λI)⁻¹, zero diagonal (float32). One run solves the same matrix and λ several times
    (the baselines' validation grid, the hybrid's reference and its own grid, their refits on
    train + validation): each (content of ``x``, λ) is solved once, the solutions kept up to
    :data:`EASE_CACHE_BYTES`. Callers must not write to the array returned."""
    key = (_fingerprint(x), float(lam))
    b = _EASE_CACHE.get(key)
    if b is not None:
        _EASE_CACHE.move_to_end(key)
        return b
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    w = -p / np.diag(p)
    np.fill_diagonal(w, 0.0)
    b = w.astype(np.float32)
    b.flags.writeable = False
    _EASE_CACHE[key] = b
    while sum(v.nbytes for v in _EASE_CACHE.values()) > EASE_CACHE_BYTES and len(_EASE_CACHE) > 1:
        _EASE_CACHE.popitem(last=False)
    if b.nbytes > EASE_CACHE_BYTES:
        _EASE_CACHE.pop(key)
    return b


class MostPopular:
    name = "MostPopular"

    def fit(self, train: sp.csr_matrix, ts_weight: np.ndarray | None = None) -> MostPopular:
        self.pop = np.asarray(train.sum(axis=0)).ravel() if ts_weight is None else ts_weight
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.pop, (len(users), 1))


class ItemKNN:
    name = "ItemKNN"

    def __init__(self, k: int = 100, shrink: float = 10.0) -> None:
        self.k = k
        self.shrink = shrink

    def fit(self, train: sp.csr_matrix) -> ItemKNN:
        self.train = train
        x = train.T.tocsr().astype(np.float64)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        sim = (x @ x.T).toarray()
        sim /= np.outer(norms, norms) + self.shrink
        np.fill_diagonal(sim, 0.0)
        if self.k < sim.shape[0]:
            thresh = -np.partition(-sim, self.k - 1, axis=1)[:, self.k - 1 : self.k]
            sim[sim < thresh] = 0.0
        self.sim = sim.astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.train[users] @ self.sim)


class EASE:
    """Steck, *Embarrassingly Shallow Autoencoders for Sparse Data* (WWW 2019)."""

    name = "EASE"

    def __init__(self, lam: float = 500.0) -> None:
        self.lam = lam

    def fit(self, train: sp.csr_matrix) -> EASE:
        self.train = train
        self.b = ease_weights(train, self.lam)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.train[users] @ self.b)


class ALS:
    """Implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008) via ``implicit``, on CPU."""

    name = "ALS"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 20, alpha: float = 20.0,
                 seed: int = 0) -> None:
        self.params = dict(factors=factors, regularization=regularization, iterations=iterations, alpha=alpha)
        self.seed = seed

    def fit(self, train: sp.csr_matrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; nested BLAS threads slow it down (its constructor checks
        # and warns, so it is built inside the limit too).
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(random_state=self.seed, **self.params)
            self.model.fit(train.tocsr(), show_progress=False)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.user_factors[users] @ self.model.item_factors.T)
