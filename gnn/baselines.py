"""Strong, simple baselines on the same split: MostPopular, ItemKNN, ALS (``implicit``), EASE.

Each has ``fit(train)`` on a user×item 0/1 CSR matrix and ``score(users) -> [len(users), n_items]``.
Hyperparameters are chosen on the validation split by :func:`gnn.evaluate.run`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
        g = (train.T @ train).toarray().astype(np.float64)
        g[np.diag_indices_from(g)] += self.lam
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.b = b.astype(np.float32)
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
