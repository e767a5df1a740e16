"""The request pipeline replayed offline on a split, for ranker training and evaluation.

Everything a source would read at request time is rebuilt from the history interactions only
(neighbour lists, the popular and fresh lists, item interaction counts, user histories and
sessions), with the engine's own functions and the engine's settings (``EngineSettings``: source
weights of the home feed, candidates per source, seeds and their half-life, the history length,
the popular window and half-life, the fresh window, MMR): the sources, the merge, the consumed-item
rules and the ranker's features are the code the engine runs (graphrec.core.recs.merge,
graphrec.core.recs.rules, graphrec.engine.sources.graph, graphrec.core.recs.features.request_features). A
replayed request is the user's home feed at the history's last instant, in their latest session
(the session source and the session similarity see its items, as when a client passes them).
The result is a candidate list per test user with every source's score and rank. Rankings
compared on the same candidates: ``fusion`` (what the engine serves without a ranker),
``embedding`` (similarity to the user vector alone) and ``ranker`` (the learned DCN-v2), each
followed by the engine's rules after ranking (the engine's functions and settings): the
promotions active now, as the engine applies them today, then MMR (graphrec.core.recs.rules.finish).

Exploration is the one rule the evaluation leaves out (:meth:`World.serve` runs it, seeded as
the engine seeds it, when given the configured seed): its slots are random draws from the popular
list, the same for every ranking compared on a replay, so they add noise to the comparison and
no information; what they are for (feedback on items the model would not show) cannot be
measured on logged interactions; and the rows beside the pipeline's (the GNN, the baselines)
do not explore. Batch recommendations (email) do not explore either. In what users are served,
each slot after the third is explored with probability ``engine.explore_epsilon`` (0, none, unless
configured); the replay's figures are without those draws. Ranker training data is the same either way: features and labels belong
to the candidates, before any rule after ranking.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gnn.neighbours import content_matrix, interaction_matrix, top_k_cosine
from gnn.split import relevant
from graphrec.core.config import EngineSettings
from graphrec.core.recs import features as F
from graphrec.core.recs import fresh as fresh_list
from graphrec.core.recs import hybrid, popularity, rules
from graphrec.core.recs.candidate import Candidate, SourceResult
from graphrec.core.recs.merge import (
    NeighbourList,
    aggregate_neighbours,
    cold_start_weights,
    merge_candidates,
    seeds_from_history,
    session_seed_weights,
)
from graphrec.core.recs.model import LiveModel
from graphrec.core.recs.types import LIST_SIZE
from graphrec.core.snapshot import KINDS, Snapshot

#: Scores a user's candidates: (user, candidates, user vector) -> one score per candidate.
Scorer = Callable[[int, list[rules.Scored], np.ndarray | None], np.ndarray]


def subset(snap: Snapshot, mask: np.ndarray) -> Snapshot:
    return Snapshot(snap.user_ids, snap.item_ids, snap.user[mask], snap.item[mask], snap.ts[mask], snap.kind[mask],
                    snap.value[mask], snap.items, snap.user_attrs, None if snap.session is None else snap.session[mask])


def popular_lists(tr: Snapshot, now: float, window_s: float, half_life_s: float, available: np.ndarray,
                  type_weights: Mapping[str, float], top: int = LIST_SIZE, min_events: int = 0) -> list[tuple[str, float]]:
    """The engine's popular list (graphrec.engine.catalog.load_catalog, cypher/recs/popular_page):
    Σ type weight × 2^(-(now - ts) / half-life) over the window's interactions of available items,
    best first, the window widened when it holds fewer than ``min_events`` (graphrec.core.recs.popularity);
    a quiet window is topped up with all-time interaction counts."""
    ids = tr.item_ids
    tw = np.array([type_weights.get(k, 0.0) if k != "SKIPPED" else 0.0 for k in KINDS])
    counted = tr.kind != KINDS.index("SKIPPED")
    inwin = counted & (tr.ts >= now - window_s)
    events = int((inwin & available[tr.item]).sum())
    if events < min_events:
        past = np.sort(tr.ts[counted & (tr.ts <= now)])[::-1][:min_events]
        win = popularity.widened(now, window_s, half_life_s, min_events, events,
                                 float(past[-1]) if len(past) else None)
        inwin, half_life_s = counted & (tr.ts >= win.since), win.half_life_s
    w = tw[tr.kind.astype(np.int64)] * popularity.decay(now, tr.ts, half_life_s)
    score = np.bincount(tr.item[inwin], weights=w[inwin], minlength=len(ids))
    ranked = [i for i in np.argsort(-score, kind="stable") if score[i] > 0 and available[i]][:top]
    popular = [(ids[i], float(score[i])) for i in ranked]
    if len(popular) >= top:
        return popular
    counts = np.bincount(tr.item[counted], minlength=len(ids))
    order = sorted((i for i in range(len(ids)) if available[i]), key=lambda i: (-counts[i], ids[i]))[:2 * top]
    return popularity.top_up(popular, [(ids[i], int(counts[i])) for i in order], top)


@dataclass
class World:
    """What the sources see, rebuilt from one set of (history) interactions."""

    snap: Snapshot
    now: float
    history: dict[int, list[dict[str, Any]]]
    consumed: dict[int, dict[str, set[str]]]
    neighbours: dict[str, dict[str, NeighbourList]]
    popular: list[tuple[str, float]]
    fresh: list[tuple[str, float]]
    info: dict[str, tuple[int, float | None, tuple[str, ...]]]
    engine: EngineSettings
    model: LiveModel | None = None
    cats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sessions: dict[int, list[str]] = field(default_factory=dict)  # each user's latest session, oldest item first
    available: dict[str, bool] = field(default_factory=dict)
    type_weights: Mapping[str, float] = field(default_factory=dict)  # [interactions] score_weights

    @classmethod
    def build(cls, full: Snapshot, train_mask: np.ndarray, model: LiveModel | None = None, k: int = 50, *,
              engine: EngineSettings, type_weights: Mapping[str, float]) -> World:
        """``engine``: the engine's settings (``[engine]``); ``type_weights``: the ``[interactions]
        score_weights`` setting. Both are the ones the engine serves with."""
        eng, tw = engine, type_weights
        tr = subset(full, train_mask)
        now = float(tr.ts.max())
        ids = full.item_ids
        hist: dict[int, list[dict[str, Any]]] = {}
        consumed: dict[int, dict[str, set[str]]] = {}
        order = np.lexsort((-tr.ts, tr.user))
        for j in order:
            u = int(tr.user[j])
            iid = ids[int(tr.item[j])]
            kind = KINDS[int(tr.kind[j])]
            consumed.setdefault(u, {}).setdefault(iid, set()).add(kind)
            h = hist.setdefault(u, [])
            if len(h) < eng.history:
                h.append({"item_id": iid, "type": kind, "ts": float(tr.ts[j]), "value": float(tr.value[j])})
        sessions: dict[int, list[str]] = {}
        sess = tr.session
        if sess is not None:
            latest: dict[int, Any] = {}
            for j in order:  # newest first per user: the user's latest session
                u = int(tr.user[j])
                if u not in latest:
                    latest[u] = sess[j]
            for j in order[::-1]:  # oldest first within the session
                u = int(tr.user[j])
                if latest.get(u) is not None and sess[j] == latest[u] and tr.kind[j] != KINDS.index("SKIPPED"):
                    lst = sessions.setdefault(u, [])
                    iid = ids[int(tr.item[j])]
                    if iid in lst:
                        lst.remove(iid)
                    lst.append(iid)
        nb: dict[str, dict[str, NeighbourList]] = {}
        for rel, x in (("CO_INTERACTED", interaction_matrix(tr, tw, now=now).T.tocsr()), ("SIMILAR_CONTENT", content_matrix(tr))):
            nb[rel] = {ids[i]: NeighbourList(tuple(ids[j] for j in nbrs.tolist()), np.asarray(sc, dtype=np.float64))
                       for i, nbrs, sc in top_k_cosine(x, k)}
        available = np.array([it.available is not False for it in full.items])
        counted = tr.kind != KINDS.index("SKIPPED")
        counts = np.bincount(tr.item[counted], minlength=full.num_items)
        popular = popular_lists(tr, now, eng.popular_window_days * 86400.0, eng.popular_half_life_days * 86400.0, available,
                                tw, min_events=eng.popular_min_events)
        # An item's creation time as the engine's catalogue has it (None: no age, never fresh); the
        # fresh list is the newest LIST_SIZE available items, as the catalogue's.
        created = [it.created_at for it in full.items]
        fresh = sorted(((ids[i], float(c)) for i, c in enumerate(created) if c is not None and available[i]),
                       key=lambda x: -x[1])[:LIST_SIZE]
        info = {ids[i]: (int(counts[i]), created[i], tuple(full.items[i].categories)) for i in range(full.num_items)}
        return cls(tr, now, hist, consumed, nb, popular, fresh, info, eng, model, {k2: v[2] for k2, v in info.items()},
                   sessions, {ids[i]: bool(available[i]) for i in range(full.num_items)}, dict(tw))

    def weights(self) -> dict[str, float]:
        return dict(self.engine.sources.get("HOME_FEED", {}))

    def candidates(self, u: int, per_source: int | None = None, session: list[str] | None = None
                   ) -> tuple[list[rules.Scored], np.ndarray | None]:
        """The engine's home-feed sources, merge and consumed-item rules for user ``u`` (in their
        latest session unless ``session`` is given)."""
        eng = self.engine
        per_source = per_source or eng.candidates_per_source
        recent = self.history.get(u, [])
        seeds = seeds_from_history(recent, self.now, eng.half_life_days * 86400.0, eng.seeds, self.type_weights)
        vec = self.model.user_vector(recent, self.now) if (self.model and recent) else None
        consumed = self.consumed.get(u, {})
        exclude = "HOME_FEED" in eng.exclude_consumed
        hard = rules.excluded_items(consumed, exclude)
        weights = self.weights()
        if not recent:
            weights = cold_start_weights(weights)
        session_items = self.sessions.get(u, []) if session is None else session
        fresh = fresh_list.newest(self.fresh, self.now - eng.fresh_window_days * 86400.0, per_source)
        makers: dict[str, Callable[[], SourceResult]] = {
            "co_interaction": lambda: aggregate_neighbours(seeds, self.neighbours["CO_INTERACTED"], per_source, "co_interaction"),
            "content": lambda: aggregate_neighbours(seeds, self.neighbours["SIMILAR_CONTENT"], per_source, "content"),
            "session": lambda: aggregate_neighbours(session_seed_weights(session_items), self.neighbours["CO_INTERACTED"],
                                                    per_source, "session") if session_items else [],
            "popular": lambda: [Candidate(i, s, "popular") for i, s in self.popular[:per_source]],
            "fresh": lambda: fresh_list.candidates(fresh),
            "ann": lambda: ([Candidate(i, s, "ann") for i, s in self.model.nearest(vec, per_source, hard)]
                            if vec is not None and self.model is not None else []),
            "hybrid": lambda: self._hybrid(recent, vec, per_source, hard, self.now, consumed),
        }
        by = {name: makers[name]() for name, w in weights.items() if w > 0 and name in makers}
        merged = merge_candidates(by, weights)
        # The engine's default filter (available items only; an unknown item passes), then its rules
        # for consumed items (excluded after a click, purchase or rating; viewed and skipped down-weighted).
        cands = [c for c in merged.values() if self.available.get(c.item_id, True)]
        cands = rules.apply_consumed(cands, consumed, exclude)
        return cands, vec

    def _hybrid(self, recent: list[dict[str, Any]], vec: np.ndarray | None, limit: int, exclude: set[str],
                now: float | None = None, consumed: dict[str, set[str]] | None = None) -> list[Candidate]:
        """The engine's ``hybrid`` source (graphrec.engine.sources.hybrid) on this world."""
        if self.model is None or self.model.hybrid is None:
            return []
        scores = self.model.hybrid.scores(recent, self.model.index, vec, self.model.emb, now=now, consumed=consumed)
        return hybrid.candidates(scores, self.model.item_ids, limit, exclude)

    def session_vector(self, u: int, session: list[str] | None = None) -> np.ndarray | None:
        items = self.sessions.get(u, []) if session is None else session
        if not (self.model and items):
            return None
        return self.model.session_vector(items, self.now)

    def features(self, u: int, cands: list[rules.Scored], vec: np.ndarray | None, session: list[str] | None = None
                 ) -> np.ndarray:
        hist_cats = [self.cats[h["item_id"]] for h in self.history.get(u, []) if h["item_id"] in self.cats]
        return F.request_features(cands, self.model, vec, self.session_vector(u, session),
                                  lambda i: self.info.get(i, (0, None, ())), hist_cats, self.now)

    def serve(self, u: int, scorer: Scorer, first: int, explore_seed: int | None = None
              ) -> tuple[list[rules.Scored], list[rules.Scored]]:
        """User ``u``'s home feed as the engine answers it: their candidates scored by ``scorer``,
        then the engine's rules: the promotions active now, then
        :func:`graphrec.core.recs.rules.finish` (MMR with the category cap and, given
        ``explore_seed``, exploration). Returns (the ``first`` items chosen, every candidate best
        first, promotions applied).

        ``explore_seed``: the configured ``seed``, to explore as the engine does for this user on
        the day of :attr:`now`; None (the evaluation's choice, see the module docstring): no
        exploration, as for batch recommendations."""
        cands, vec = self.candidates(u)
        if not cands:
            return [], []
        for c, v in zip(cands, scorer(u, cands, vec).tolist(), strict=True):
            c.score = float(v)
        eng = self.engine
        exploration = None
        if explore_seed is not None and eng.explore_epsilon > 0:
            consumed = self.consumed.get(u, {})
            excluded = rules.excluded_items(consumed, "HOME_FEED" in eng.exclude_consumed)
            exploration = rules.Exploration(
                rules.exploration_pool((i for i, _ in self.popular), consumed, excluded,
                                       lambda i: self.available.get(i, True)),
                rules.exploration_seed(explore_seed, self.snap.user_ids[u], self.now))
        rules.apply_promotions(cands, eng.promotions)  # the promotions active now, as the engine's rank step
        emb = self.model.vector_of if self.model else None
        chosen = rules.finish(cands, first, eng, lambda i: self.cats.get(i, ()), emb, exploration)
        return chosen, sorted(cands, key=lambda c: -c.score)


def targets(full: Snapshot, mask: np.ndarray) -> dict[int, set[str]]:
    """Each user's relevant items among ``mask`` (never a SKIPPED interaction)."""
    out: dict[int, set[str]] = {}
    rel = relevant(full, mask)
    for u, i in zip(full.user[rel].tolist(), full.item[rel].tolist(), strict=True):
        out.setdefault(u, set()).add(full.item_ids[i])
    return out


def list_metrics(ranked: dict[int, list[str]], truth: dict[int, set[str]], num_items: int) -> dict[str, float]:
    """NDCG@10, Recall@10/100, HitRate@10 and coverage of each user's ranked item ids against
    ``truth`` (a user of ``truth`` without a list scores 0), as the evaluation tables define them."""
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


def evaluate(world: World, truth: dict[int, set[str]], scorer: Scorer) -> dict[str, float]:
    """Each user's home feed (:meth:`World.serve`, without exploration) scored by ``scorer``: the
    10 items served, then the rest of the candidates best first, to 100."""
    ranked: dict[int, list[str]] = {}
    for u in truth:
        head, order = world.serve(u, scorer, 10)
        if not order:
            continue
        head_ids = [c.item_id for c in head]
        ranked[u] = head_ids + [c.item_id for c in order if c.item_id not in set(head_ids)][:90]
    return list_metrics(ranked, truth, world.snap.num_items)


def fusion_scorer(world: World) -> Scorer:
    """What the engine ranks with when no ranker is served: the live version's hybrid scores when
    it has a hybrid model (graphrec.core.recs.hybrid), else fusion + embedding similarity."""
    def score(u: int, cands: list[rules.Scored], vec: np.ndarray | None) -> np.ndarray:
        if world.model is not None and world.model.hybrid is not None:
            hybrid.rescore(cands, world.model.hybrid_scores(world.history.get(u, []), vec, now=world.now,
                                                                consumed=world.consumed.get(u, {})),
                           world.model.index)
            return np.array([c.score for c in cands], dtype=np.float32)
        base = np.array([c.score for c in cands], dtype=np.float32)
        if vec is not None and world.model is not None:
            base += np.maximum(0.0, world.model.scores(vec, [c.item_id for c in cands]))
        return base
    return score


def embedding_scorer(world: World) -> Scorer:
    def score(u: int, cands: list[rules.Scored], vec: np.ndarray | None) -> np.ndarray:
        if vec is None or world.model is None:
            return np.array([c.score for c in cands], dtype=np.float32)
        return world.model.scores(vec, [c.item_id for c in cands])
    return score
