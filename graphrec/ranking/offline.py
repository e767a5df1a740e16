"""The request pipeline replayed offline on a temporal split, for ranker training and evaluation.

Everything a source would read at request time is rebuilt from the TRAIN interactions only
(neighbour lists, popularity, item first-seen times, user histories), the sources and the merge
are the engine's own functions, and the result is a candidate list per test user with every
source's score and rank. Three rankings are compared on the same candidates:
``fusion`` (the engine's default), ``embedding`` (similarity to the user vector alone) and
``ranker`` (the learned DCN-v2), each followed by the engine's MMR step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gnn.data import KINDS, Snapshot
from graphrec.engine import rules
from graphrec.engine.merge import merge_candidates, seeds_from_history
from graphrec.engine.model import LiveModel
from graphrec.neighbours import content_matrix, interaction_matrix, top_k_cosine
from graphrec.ranking import features as F
from graphrec.sources.base import Candidate
from graphrec.sources.graph import aggregate_neighbours

WEIGHTS = {"ann": 1.0, "co_interaction": 1.0, "content": 0.4, "popular": 0.3, "fresh": 0.1}


def subset(snap: Snapshot, mask: np.ndarray) -> Snapshot:
    return Snapshot(snap.user_ids, snap.item_ids, snap.user[mask], snap.item[mask], snap.ts[mask], snap.kind[mask],
                    snap.value[mask], snap.items, snap.user_attrs)


@dataclass
class World:
    """What the sources see, rebuilt from one set of (training) interactions."""

    snap: Snapshot
    now: float
    history: dict[int, list[dict[str, Any]]]
    consumed: dict[int, set[str]]
    neighbours: dict[str, dict[str, list[tuple[str, float]]]]
    popular: list[tuple[str, float]]
    fresh: list[tuple[str, float]]
    info: dict[str, tuple[int, float | None, tuple[str, ...]]]
    model: LiveModel | None = None
    cats: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, full: Snapshot, train_mask: np.ndarray, model: LiveModel | None = None, k: int = 50,
              recent: int = 50) -> World:
        tr = subset(full, train_mask)
        now = float(tr.ts.max())
        ids = full.item_ids
        hist: dict[int, list[dict[str, Any]]] = {}
        consumed: dict[int, set[str]] = {}
        order = np.lexsort((-tr.ts, tr.user))
        for j in order:
            u = int(tr.user[j])
            iid = ids[int(tr.item[j])]
            consumed.setdefault(u, set()).add(iid)
            h = hist.setdefault(u, [])
            if len(h) < recent:
                h.append({"item_id": iid, "type": KINDS[int(tr.kind[j])], "ts": float(tr.ts[j]), "value": float(tr.value[j])})
        nb: dict[str, dict[str, list[tuple[str, float]]]] = {}
        for rel, x in (("CO_INTERACTED", interaction_matrix(tr, now=now).T.tocsr()), ("SIMILAR_CONTENT", content_matrix(tr))):
            nb[rel] = {ids[i]: [(ids[j], float(s)) for j, s in zip(nbrs.tolist(), sc.tolist(), strict=True)]
                       for i, nbrs, sc in top_k_cosine(x, k)}
        counts = np.bincount(tr.item, minlength=full.num_items)
        age = np.maximum(0.0, now - tr.ts) / (7 * 86400.0)
        recentw = np.bincount(tr.item, weights=np.power(2.0, -age) * (tr.ts >= now - 30 * 86400), minlength=full.num_items)
        pop_score = recentw + 1e-6 * counts
        top = np.argsort(-pop_score, kind="stable")[:1000]
        popular = [(ids[i], float(pop_score[i])) for i in top if counts[i] > 0]
        first = np.full(full.num_items, np.inf)
        np.minimum.at(first, tr.item, tr.ts)
        fresh = sorted(((ids[i], float(first[i])) for i in range(full.num_items) if np.isfinite(first[i])), key=lambda x: -x[1])[:1000]
        info = {ids[i]: (int(counts[i]), float(first[i]) if np.isfinite(first[i]) else None, tuple(full.items[i].categories))
                for i in range(full.num_items)}
        return cls(tr, now, hist, consumed, nb, popular, fresh, info, model, {k2: v[2] for k2, v in info.items()})

    def candidates(self, u: int, per_source: int = 200) -> tuple[list[rules.Scored], np.ndarray | None]:
        """The engine's sources and merge for user ``u``; consumed items removed."""
        recent = self.history.get(u, [])
        seeds = seeds_from_history(recent, self.now, 90 * 86400.0, 20)
        vec = self.model.user_vector(recent, self.now) if (self.model and recent) else None
        consumed = self.consumed.get(u, set())
        by: dict[str, list[Candidate]] = {
            "co_interaction": aggregate_neighbours(seeds, self.neighbours["CO_INTERACTED"], per_source, "co_interaction"),
            "content": aggregate_neighbours(seeds, self.neighbours["SIMILAR_CONTENT"], per_source, "content"),
            "popular": [Candidate(i, s, "popular") for i, s in self.popular[:per_source]],
            "fresh": [Candidate(i, 1.0 - k / (2 * per_source), "fresh") for k, (i, t) in enumerate(self.fresh[:per_source])
                      if t >= self.now - 14 * 86400.0],
        }
        if vec is not None and self.model is not None:
            by["ann"] = [Candidate(i, s, "ann") for i, s in self.model.nearest(vec, per_source, consumed)]
        merged = merge_candidates(by, WEIGHTS)
        cands = [c for c in merged.values() if c.item_id not in consumed]
        return cands, vec

    def features(self, u: int, cands: list[rules.Scored], vec: np.ndarray | None) -> np.ndarray:
        sims = self.model.scores(vec, [c.item_id for c in cands]) if (vec is not None and self.model) else None
        aff = F.category_affinity([self.cats.get(h["item_id"], ()) for h in self.history.get(u, [])])
        return F.build(cands, sims, None, lambda i: self.info.get(i, (0, None, ())), self.now, aff)


def targets(full: Snapshot, mask: np.ndarray) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for u, i in zip(full.user[mask].tolist(), full.item[mask].tolist(), strict=True):
        out.setdefault(u, set()).add(full.item_ids[i])
    return out


def _metrics(ranked: dict[int, list[str]], truth: dict[int, set[str]], num_items: int) -> dict[str, float]:
    ndcg, r10, r100, hit = [], [], [], []
    seen: set[str] = set()
    for u, rel in truth.items():
        lst = ranked.get(u, [])
        dcg = sum(1.0 / math.log2(k + 2) for k, i in enumerate(lst[:10]) if i in rel)
        idcg = sum(1.0 / math.log2(k + 2) for k in range(min(10, len(rel))))
        ndcg.append(dcg / idcg if idcg else 0.0)
        h10 = len(set(lst[:10]) & rel)
        r10.append(h10 / len(rel))
        r100.append(len(set(lst[:100]) & rel) / len(rel))
        hit.append(1.0 if h10 else 0.0)
        seen.update(lst[:10])
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(r10)), "recall@100": float(np.mean(r100)),
            "hitrate@10": float(np.mean(hit)), "coverage@10": len(seen) / num_items}


def evaluate(world: World, truth: dict[int, set[str]], scorer: Callable[[int, list[rules.Scored], np.ndarray | None], np.ndarray],
             mmr_lambda: float = 0.85) -> dict[str, float]:
    """Rank each user's candidates with ``scorer``, take the top 100 after MMR on the top 10."""
    ranked: dict[int, list[str]] = {}
    for u in truth:
        cands, vec = world.candidates(u)
        if not cands:
            continue
        s = scorer(u, cands, vec)
        for c, v in zip(cands, s.tolist(), strict=True):
            c.score = float(v)
        order = sorted(cands, key=lambda c: -c.score)
        emb = world.model.vector_of if world.model else None
        head = rules.diversify(order[:50], 10, mmr_lambda, 0, lambda i: world.cats.get(i, ()), emb)
        head_ids = [c.item_id for c in head]
        ranked[u] = head_ids + [c.item_id for c in order if c.item_id not in set(head_ids)][:90]
    return _metrics(ranked, truth, world.snap.num_items)


def fusion_scorer(world: World) -> Callable[[int, list[rules.Scored], np.ndarray | None], np.ndarray]:
    def score(u: int, cands: list[rules.Scored], vec: np.ndarray | None) -> np.ndarray:
        base = np.array([c.score for c in cands], dtype=np.float32)
        if vec is not None and world.model is not None:
            base += np.maximum(0.0, world.model.scores(vec, [c.item_id for c in cands]))
        return base
    return score


def embedding_scorer(world: World) -> Callable[[int, list[rules.Scored], np.ndarray | None], np.ndarray]:
    def score(u: int, cands: list[rules.Scored], vec: np.ndarray | None) -> np.ndarray:
        if vec is None or world.model is None:
            return np.array([c.score for c in cands], dtype=np.float32)
        return world.model.scores(vec, [c.item_id for c in cands])
    return score
