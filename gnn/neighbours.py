"""Materialised item→item neighbours: the nearline half of the collaborative Cypher paths.

Walking user→item→user→item paths at request time (the live queries in
``cypher/recs/co_interaction.cypher``) costs tens to hundreds of milliseconds per user, far over a
request's budget. So, as Gorse does with its item-neighbour cache, the expensive part runs off the request
path: ``graphrec refresh-neighbours`` reads a snapshot, computes for every item its top-K

- ``CO_INTERACTED`` neighbours: cosine similarity of item columns of the user×item matrix whose
  entries are interaction-type weights × recency decay (ratings below 3 and skips count 0),
  each user damped by 1/log2(2 + their activity);
- ``SIMILAR_CONTENT`` neighbours: cosine similarity of IDF-weighted categories, tags and KG entities,

and writes them back to the graph as relationships with ``score`` and ``rank``, and the same lists
as memory-mapped files for the API processes (:mod:`graphrec.core.recs.neighbour_index`). At
request time the engine sums the neighbours of the user's recent items, from those files or
(``cypher/recs/neighbour_lists.cypher``) from the graph; ``cypher/explore/neighbours_of.cypher``
is the same sum in Cypher, and the result is still a path anyone can open in Neo4j Browser.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from graphrec.core.graph.store import GraphStore
from graphrec.core.recs import neighbour_index
from graphrec.core.snapshot import KINDS, Snapshot


def interaction_matrix(snap: Snapshot, type_weights: Mapping[str, float], now: float | None = None,
                       half_life_days: float = 180.0) -> sp.csr_matrix:
    """Users × items, entries = Σ type weight (``type_weights``: the ``[interactions]
    score_weights`` setting) × 2^(-age/half-life), ratings scaled by (value-2)/3."""
    kind_w = np.array([type_weights.get(k, 0.0) for k in KINDS], dtype=np.float32)
    w = kind_w[snap.kind.astype(np.int64)]
    rated = snap.kind == KINDS.index("RATED")
    w = np.where(rated, np.clip((snap.value - 2.0) / 3.0, 0.0, 1.0), w).astype(np.float32)
    now = float(snap.ts.max()) if now is None and snap.num_interactions else (now or time.time())
    age = np.maximum(0.0, now - snap.ts) / (half_life_days * 86400.0)
    w = w * np.power(2.0, -age).astype(np.float32)
    m = sp.csr_matrix((w, (snap.user, snap.item)), shape=(snap.num_users, snap.num_items), dtype=np.float32)
    m.eliminate_zeros()
    activity = np.diff(m.indptr).astype(np.float32)
    damp = 1.0 / np.log2(2.0 + activity)
    return sp.diags(damp) @ m


def content_matrix(snap: Snapshot, max_feature_items: int = 1000) -> sp.csr_matrix:
    """Items × features (categories, tags, KG entities), IDF-weighted.

    A feature held by more than ``max_feature_items`` items is left out: it ties thousands of
    items at the same score (no top-50 can be told apart by it), and it makes the item×item
    product quadratic (at 1M synthetic items a tag is held by ~2,000 items: ~6,000 co-holders per
    item, 6e9 products). On MovieLens-100K this drops two KG entities held by 1,435 and 1,278 of
    the 1,682 films (idf 0.16 and 0.27); every genre (Drama: 725) stays."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, it in enumerate(snap.items):
        feats = [f"c:{c}" for c in it.categories] + [f"t:{t}" for t in it.tags] + [f"e:{e}" for e in it.entities]
        for f in set(feats):
            rows.append(i)
            cols.append(vocab.setdefault(f, len(vocab)))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(snap.num_items, max(1, len(vocab))))
    df = np.asarray((x > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + snap.num_items) / (1.0 + df)).astype(np.float32)
    idf[df <= 1] = 0.0  # a feature of one item links nothing
    idf[df > max_feature_items] = 0.0
    x = (x @ sp.diags(idf)).tocsr()
    x.eliminate_zeros()
    return x


def top_k_cosine(x: sp.csr_matrix, k: int, chunk: int = 2048, max_chunk_nnz: int = 50_000_000
                 ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each row of ``x`` (items × dims): its k most cosine-similar other rows (best first,
    ties by row index), chunk by chunk.

    The chunk's similarities stay sparse (a 1M-item catalogue would need 8 GB per dense chunk of
    2,048 rows); a chunk is halved while its product would exceed ``max_chunk_nnz`` entries
    (estimated from the rows' and the columns' counts)."""
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    xn = (sp.diags(1.0 / norms) @ x).tocsr().astype(np.float32)
    xt = xn.T.tocsr()
    col_nnz = np.diff(xt.indptr).astype(np.int64)
    # Upper bound of row i's products: Σ over its dims of how many rows hold that dim.
    row_work = np.add.reduceat(np.append(col_nnz[xn.indices], 0), xn.indptr[:-1]) if xn.nnz else np.zeros(x.shape[0], np.int64)
    row_work[np.diff(xn.indptr) == 0] = 0
    n = x.shape[0]
    kk = min(k, n - 1)
    if kk <= 0:
        return
    lo = 0
    while lo < n:
        hi = min(n, lo + chunk)
        while hi - lo > 1 and row_work[lo:hi].sum() > max_chunk_nnz:
            hi = lo + (hi - lo) // 2
        sims = (xn[lo:hi] @ xt).tocsr()
        for r in range(hi - lo):
            a, b = sims.indptr[r], sims.indptr[r + 1]
            cand, s = sims.indices[a:b], sims.data[a:b]
            keep = (s > 1e-6) & (cand != lo + r)
            cand, s = cand[keep], s[keep]
            if len(cand) > kk:
                part = np.argpartition(-s, kk - 1)[:kk]
                # whatever argpartition kept at the boundary, the ties below it are by index
                cut = s[part].min()
                sel = s >= cut
                cand, s = cand[sel], s[sel]
            order = np.lexsort((cand, -s))[:kk]
            yield lo + r, cand[order], s[order]
        lo = hi


def refresh(store: GraphStore, snap: Snapshot, type_weights: Mapping[str, float], k: int = 50, batch_items: int = 500,
            progress: bool = True, index_dir: Path | None = None) -> dict[str, int]:
    """Compute and write both neighbour kinds for every item; returns edges written per kind.
    ``type_weights``: the ``[interactions] score_weights`` setting (the engine's). With
    ``index_dir`` the same lists are also written there as files the API processes map
    (:mod:`graphrec.core.recs.neighbour_index`); the graph then names this refresh's version
    (the ``neighbours`` GraphrecMeta node), the last step, so that an engine never takes a
    version whose edges are not all written."""
    version = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{secrets.token_hex(2)}"  # two in one second differ
    written: dict[str, int] = {}
    kept: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}

    def flush(rel: str, ids: list[str], rows: list[dict[str, object]]) -> int:
        counters = store.write_many([
            ("neighbours/delete_batch", {"nrel": rel}, {"ids": ids}),
            ("neighbours/write_batch", {"nrel": rel}, {"rows": rows, "version": version}),
        ])
        return int(counters[1]["relationships_created"])

    for rel, x in (("CO_INTERACTED", interaction_matrix(snap, type_weights).T.tocsr()), ("SIMILAR_CONTENT", content_matrix(snap))):
        total = 0
        ids: list[str] = []
        rows: list[dict[str, object]] = []

        with tqdm(total=snap.num_items, desc=f"neighbours {rel}", unit=" items", disable=not progress,
                  leave=False) as bar:  # one bar at a time; the command prints each relation's count
            kept[rel] = []
            for i, nbrs, scores in top_k_cosine(x, k):
                if index_dir is not None:
                    kept[rel].append((i, nbrs, scores))
                ids.append(snap.item_ids[i])
                rows.extend({"src": snap.item_ids[i], "dst": snap.item_ids[j], "score": float(s), "rank": r}
                            for r, (j, s) in enumerate(zip(nbrs.tolist(), scores.tolist(), strict=True)))
                if len(ids) >= batch_items:
                    total += flush(rel, ids, rows)
                    bar.update(len(ids))
                    ids, rows = [], []
            if ids:
                total += flush(rel, ids, rows)
                bar.update(len(ids))
        written[rel] = total
    if index_dir is not None:
        neighbour_index.write(index_dir, version, list(snap.item_ids), kept)
    store.write("load/meta_set", key="neighbours", props={"version": version})
    return written
