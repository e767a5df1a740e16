"""Business rules: pure functions over scored candidates (no I/O), each tested on its own.

Order in the engine: hard filters → consumed-item exclusion and down-weights → (ranking) →
promotions → MMR diversity with a per-category cap → exploration. The engine's pipeline and the
offline replay (``gnn.ranking.offline``) both take the active promotions from
:func:`active_promotions` and run the steps after them as one function, :func:`finish`, with the
engine's settings.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from graphrec.core.recs.types import CatalogItem, RecFilter

if TYPE_CHECKING:
    from graphrec.core.config import EngineSettings

#: Interaction types after which an item is never recommended again on excluding surfaces.
EXCLUDING_TYPES = frozenset({"CLICKED", "PURCHASED", "RATED"})
#: Interaction types that only down-weight an item (multiplier).
DOWNWEIGHTS = {"VIEWED": 0.5, "SKIPPED": 0.1}


def excluded_items(consumed: Mapping[str, AbstractSet[str]], exclude: bool) -> set[str]:
    """The consumed items a request must not recommend: those clicked, bought or rated, on a
    surface that excludes consumed items (``exclude``); none on the others."""
    return {i for i, t in consumed.items() if t & EXCLUDING_TYPES} if exclude else set()


@dataclass(slots=True)
class Scored:
    item_id: str
    score: float
    sources: dict[str, tuple[float, int]]  # source -> (its score, its rank)
    because: tuple[str, ...] = ()
    via: tuple[str, ...] = ()


def passes_filter(item: CatalogItem | None, f: RecFilter) -> bool:
    """Hard filters. An item missing from the catalogue passes only when nothing is asked of it."""
    if item is None:
        return not (f.categories or f.exclude_categories or f.year_min or f.year_max)
    if f.available_only and not item.available:
        return False
    if item.id in f.exclude_item_ids:
        return False
    if f.categories and not set(item.categories) & set(f.categories):
        return False
    if f.exclude_categories and set(item.categories) & set(f.exclude_categories):
        return False
    if f.year_min is not None and (item.year is None or item.year < f.year_min):
        return False
    if f.year_max is not None and (item.year is None or item.year > f.year_max):
        return False
    return True


def availability_only(f: RecFilter, ids_apart: bool = False) -> bool:
    """Does ``f`` ask nothing but (perhaps) availability? Then an item passes it when it is not
    known to be unavailable (:func:`passes_filter`), which the engine answers from one set.
    ``ids_apart``: the caller checks ``f.exclude_item_ids`` itself (they do not count)."""
    return (not (f.categories or f.exclude_categories or (f.exclude_item_ids and not ids_apart))
            and f.year_min is None and f.year_max is None)


def consumed_excluded(types: AbstractSet[str] | None, exclude: bool) -> bool:
    """Is an item the user interacted with in these ``types`` left out (on a surface that
    excludes consumed items, ``exclude``): clicked, purchased or rated."""
    return bool(exclude and types and types & EXCLUDING_TYPES)


def downweighted(score: float, types: AbstractSet[str]) -> float:
    """``score`` of an item the user viewed or skipped, down-weighted (:data:`DOWNWEIGHTS`)."""
    for t, m in DOWNWEIGHTS.items():
        if t in types:
            score *= m
    return score


def apply_consumed(cands: list[Scored], consumed: Mapping[str, AbstractSet[str]], exclude: bool) -> list[Scored]:
    """Drop items the user clicked, purchased or rated (when ``exclude``); down-weight viewed/skipped."""
    out = []
    for c in cands:
        types = consumed.get(c.item_id)
        if types:
            if consumed_excluded(types, exclude):
                continue
            c.score = downweighted(c.score, types)
        out.append(c)
    return out


def downweight_consumed(pos: dict[str, int], scores: np.ndarray, consumed: Mapping[str, AbstractSet[str]]) -> None:
    """:func:`apply_consumed`'s down-weights on a column of scores (``pos``: item -> its row; in
    place). Excluding consumed items is left to the caller (:func:`consumed_excluded`)."""
    for i, types in consumed.items():
        k = pos.get(i)
        if k is not None and types:
            scores[k] = downweighted(float(scores[k]), types)


def active_promotions(promotions: Sequence[object], now: float | None = None) -> dict[str, float]:
    """Promoted item -> its boost, for the promotions that have not expired (wall-clock time)."""
    t = time.time() if now is None else now
    return {p.item_id: p.boost for p in promotions if p.expires_at > t}  # type: ignore[attr-defined]


def promote(pos: dict[str, int], scores: np.ndarray, active: dict[str, float]) -> None:
    """:func:`apply_promotions` on a column of scores (``pos``: item -> its row; in place)."""
    for i, boost in active.items():
        k = pos.get(i)
        if k is not None:
            scores[k] *= boost


def pool_size(n: int) -> int:
    """How many of the best candidates the diversity step chooses ``n`` items from."""
    return max(n * 5, 50)


def apply_promotions(cands: list[Scored], promotions: Sequence[object], now: float | None = None) -> None:
    """Multiply the score of promoted items whose promotion has not expired (wall-clock time)."""
    active = active_promotions(promotions, now)
    for c in cands:
        if c.item_id in active:
            c.score *= active[c.item_id]
            c.sources.setdefault("promotion", (active[c.item_id], 0))


def diversify(cands: list[Scored], n: int, lam: float, max_per_category: int,
              categories: Callable[[str], tuple[str, ...]], emb: Callable[[str], np.ndarray | None] | None = None) -> list[Scored]:
    """Greedy MMR: pick ``argmax lam·rel − (1−lam)·max_sim(selected)``, at most ``max_per_category``
    items per category (0 = no cap). Similarity is embedding cosine when every pooled item has
    a vector, otherwise category Jaccard. Vectorised: one similarity matrix per call
    (:func:`diversify_order` on the candidates' columns)."""
    order = diversify_order([c.item_id for c in cands], np.array([c.score for c in cands], dtype=np.float64), n, lam,
                            max_per_category, categories, emb)
    return [cands[k] for k in order]


def diversify_order(ids: Sequence[str], scores: np.ndarray, n: int, lam: float, max_per_category: int,
                    categories: Callable[[str], tuple[str, ...]],
                    emb: Callable[[str], np.ndarray | None] | None = None,
                    vectors: Callable[[list[str]], np.ndarray | None] | None = None) -> list[int]:
    """:func:`diversify` on columns (the candidates' ids and scores): the positions chosen, in
    order. The pool is the :func:`pool_size` best by score (ties: the given order). ``vectors``
    (ids -> their vectors stacked, None when one has none) stands for ``emb`` on a whole pool."""
    if not len(ids):
        return []
    pool = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[: pool_size(n)].tolist()
    pool_ids = [ids[k] for k in pool]
    m = len(pool)
    rel = np.asarray(scores, dtype=np.float64)[pool]
    rel = rel / (np.abs(rel).max() or 1.0)
    stacked = vectors(pool_ids) if (emb and vectors) else None
    vecs = [] if (stacked is not None or not emb) else [emb(i) for i in pool_ids]
    by_emb = stacked is not None or (bool(emb) and all(v is not None for v in vecs))
    # Categories: for the cap, and for the similarity when some item has no vector.
    cats = [categories(i) for i in pool_ids] if (max_per_category or not by_emb) else [()] * m
    names = sorted({c for cs in cats for c in cs})
    col = {c: k for k, c in enumerate(names)}
    onehot = np.zeros((m, max(1, len(names))))  # pool item × category
    for r, cs in enumerate(cats):
        for c in cs:
            onehot[r, col[c]] = 1.0
    if by_emb:
        x = stacked if stacked is not None else np.stack(vecs)  # type: ignore[arg-type]
        sim = x @ x.T
    else:
        inter = onehot @ onehot.T
        sizes = onehot.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - inter
        sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    lam_rel = lam * rel
    max_sim = np.zeros(m)
    val = np.empty(m)
    blocked = np.zeros(m, dtype=bool)  # taken, or in a category at its cap
    per_cat = np.zeros(onehot.shape[1], dtype=np.int64)
    chosen: list[int] = []
    while len(chosen) < n:
        np.subtract(lam_rel, (1.0 - lam) * max_sim, out=val)
        val[blocked] = -np.inf
        k = int(np.argmax(val))
        if not np.isfinite(val[k]):
            break
        blocked[k] = True
        chosen.append(pool[k])
        np.maximum(max_sim, sim[k], out=max_sim)
        if max_per_category and cats[k]:
            per_cat += onehot[k].astype(np.int64)
            full = per_cat >= max_per_category
            if full.any():
                blocked |= onehot[:, full].any(axis=1)
    return chosen


def explore(chosen: list[Scored], pool: list[str], epsilon: float, seed: int) -> list[Scored]:
    """Epsilon-greedy: each slot after the first three is, with probability ``epsilon``, given
    to a random item from ``pool`` (popular items the user has not seen). Deterministic for a seed."""
    if epsilon <= 0 or not pool:
        return chosen
    rng = random.Random(seed)
    present = {c.item_id for c in chosen}
    fresh = [i for i in pool if i not in present]
    out = list(chosen)
    for k in range(3, len(out)):
        if fresh and rng.random() < epsilon:
            pick = fresh.pop(rng.randrange(len(fresh)))
            out[k] = Scored(pick, out[k].score, {"explore": (0.0, 0)})
    return out


@dataclass(frozen=True, slots=True)
class Exploration:
    """What one request's exploration draws from: ``pool`` (popular items the user has not
    consumed) with the request's ``seed`` (:func:`exploration_seed`)."""

    pool: list[str]
    seed: int


def exploration_seed(seed: int, user_id: str | None, clock: float) -> int:
    """The draw of one user on one day of the request's ``clock`` (``seed``: the configured
    ``seed``): the same answer all day, another the next."""
    day = int(clock // 86400)
    return int(hashlib.blake2b(f"{seed}:{user_id}:{day}".encode(), digest_size=8).hexdigest(), 16)


#: How many of the most popular items exploration draws from (those the user has not consumed).
EXPLORATION_POOL = 200


def exploration_pool(popular: Iterable[str], consumed: Container[str], excluded: Container[str],
                     keep: Callable[[str], bool], size: int = EXPLORATION_POOL) -> list[str]:
    """The ``size`` most popular items (``popular``: best first) the user has not consumed, that
    the request does not exclude and that pass its filter (``keep``)."""
    out = []
    for k, i in enumerate(popular):
        if k >= size:
            break
        if i not in consumed and i not in excluded and keep(i):
            out.append(i)
    return out


def finish(cands: list[Scored], first: int, cfg: EngineSettings, categories: Callable[[str], tuple[str, ...]],
           emb: Callable[[str], np.ndarray | None] | None, exploration: Exploration | None) -> list[Scored]:
    """The rules after ranking and promotions (:func:`active_promotions`, applied by the rank
    step), in order: MMR diversity with the category cap, then, given an ``exploration``,
    epsilon-greedy exploration. Returns the ``first`` items chosen."""
    return finish_columns([c.item_id for c in cands], np.array([c.score for c in cands], dtype=np.float64),
                          lambda which: [cands[k] for k in which], first, cfg, categories, emb, exploration)


def finish_columns(ids: Sequence[str], scores: np.ndarray, records: Callable[[list[int]], list[Scored]], first: int,
                   cfg: EngineSettings, categories: Callable[[str], tuple[str, ...]],
                   emb: Callable[[str], np.ndarray | None] | None, exploration: Exploration | None,
                   vectors: Callable[[list[str]], np.ndarray | None] | None = None) -> list[Scored]:
    """:func:`finish` on the candidates' columns (``ids``, ``scores``): ``records(positions)``
    gives the records of the candidates chosen, the only ones built (the engine's shortlist);
    ``vectors``: see :func:`diversify_order`."""
    chosen = records(diversify_order(ids, scores, first, cfg.mmr_lambda, cfg.max_per_category, categories, emb, vectors))
    if exploration is not None:
        chosen = explore(chosen, exploration.pool, cfg.explore_epsilon, exploration.seed)
    return chosen
