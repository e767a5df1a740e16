"""The request pipeline's steps for one user (``recommend``: state → sources → merge → rank →
rules → explain, called in that order by :meth:`graphrec.engine.engine.Engine.recommend`), and
the ranking and reasons the other surfaces (:mod:`graphrec.engine.surfaces`) share with it."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphrec.core.recs import rules
from graphrec.core.recs.candidate import SourceContext, SourceResult
from graphrec.core.recs.hybrid import scores_of
from graphrec.core.recs.merge import (
    Pool,
    cold_start_weights,
    decay_now,
    seeds_from_history,
)
from graphrec.core.recs.types import (
    RecFilter,
    Recommendation,
    RecRequest,
    RecResult,
    Surface,
)
from graphrec.engine import explain
from graphrec.engine.candidates import Candidates
from graphrec.engine.guard import Guard
from graphrec.engine.live import ranker_usable
from graphrec.engine.results import Results, decode, key
from graphrec.engine.state import Serving
from graphrec.engine.user_state import Consumed, History, UserStates


@dataclass
class Run:
    """One ``recommend`` request on its way through the steps."""

    req: RecRequest
    first: int
    clock: float  # the request's clock (popularity and freshness windows)
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    recent: History = field(default_factory=list)
    consumed: Consumed = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    cache_key: str = ""
    shape: str = ""  # the request without what changes its answer: the key of its last good answer
    vec: np.ndarray | None = None
    session_vec: np.ndarray | None = None
    hybrid: np.ndarray | None = None  # the live hybrid's scores of every item, when it ranks this request
    sims: np.ndarray | None = None  # the user vector's cosine with every item of the live model, when the hybrid
    # ranks or the catalogue is small (Candidates.small_sims)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = (time.perf_counter() - t0) * 1000


class Pipeline:
    def __init__(self, s: Serving, guard: Guard, candidates: Candidates, users: UserStates, results: Results) -> None:
        self.s = s
        self.guard = guard
        self.candidates = candidates
        self.users = users
        self.results = results

    # ---- recommend, step by step -------------------------------------------------------------
    def start(self, req: RecRequest) -> Run:
        return Run(req, max(1, min(int(req.first), 100)), self.s.now(req.context))

    def cached_or_stale(self, run: Run) -> RecResult | None:
        """The cached answer to this request in this user state, or, when Neo4j could not give the
        user's state, their last complete answer (what they consumed since left out, the popular
        list filling in); None: compute it."""
        req, s = run.req, self.s
        ctx = req.context
        run.cache_key = key(req.user_id, req.surface.value, run.first, req.filter, ctx.session_item_ids,
                            ctx.preferred_categories, run.recent[0]["ts"] if run.recent else None, len(run.consumed),
                            s.model.version if s.model else None)
        if not run.degraded and req.user_id and (hit := self.results.lookup("recommendations", run.cache_key)) is not None:
            return decode(hit, run.timings)
        run.shape = key(req.user_id, req.surface.value, run.first, req.filter, ctx.session_item_ids, ctx.preferred_categories)
        run.excluded = self.users.excluded(req, run.consumed)
        if "neo4j" in run.degraded and req.user_id and (stale := self.results.stale(
                run.shape, run.degraded, run.timings, "recommendations", run.excluded)) is not None:
            if len(stale.items) < run.first:  # items consumed since were left out: the popular list fills in
                have = run.excluded | {r.item_id for r in stale.items}
                extra = self.popular_fallback(run.first - len(stale.items), req.filter, have)
                n = len(stale.items)
                stale.items.extend([self.explain(c, n + k, run.recent, req) for k, c in enumerate(extra, 1)])
            return stale
        return None

    async def sources(self, run: Run) -> tuple[dict[str, SourceResult], dict[str, float]]:
        """The user's vectors and seeds, then every source of the surface at once: (candidates
        per source, the sources' weights)."""
        req, s, cfg = run.req, self.s, self.s.cfg
        now = run.clock if req.context.now else decay_now(run.recent, run.clock)  # see merge.decay_now
        model = s.model
        if model and run.recent:
            run.vec = model.user_vector(run.recent, now)
        if run.vec is None and model and req.context.preferred_categories:
            run.vec = self.category_vector(req.context.preferred_categories)
        if model and req.context.session_item_ids:
            run.session_vec = model.session_vector(req.context.session_item_ids, now)
        if self.hybrid_ranks(run.recent, run.vec):
            assert model is not None
            # Once per request: the hybrid's gnn component and the ANN source's exact search.
            run.sims = model.emb @ run.vec if run.vec is not None else None
            # the hybrid source's and the rank's; the request's clock says whether the user is returning
            run.hybrid = model.hybrid_scores(run.recent, run.vec, run.sims, run.clock, run.consumed)
        else:  # the ANN source's exact search, on a small catalogue
            run.sims = self.candidates.small_sims(run.vec)
        weights = dict(cfg.sources.get(req.surface.value, cfg.sources["HOME_FEED"]))
        if not run.recent:  # cold start: popular (narrowed by stated preferences), fresh, content of nothing
            weights = cold_start_weights(weights)
        ctx = SourceContext(store=s.store, user_id=req.user_id, session_items=list(req.context.session_item_ids),
                            now=run.clock, half_life_s=cfg.half_life_days * 86400.0, type_weights=s.type_weights,
                            timeout_s=cfg.source_budget_ms / 1000,
                            params={"seeds": self.seeds(run.recent, now), "catalog": s.catalog, "neighbours": s.neighbours,
                                    "decay_now": now, "preferred_categories": req.context.preferred_categories,
                                    **self.windows(),
                                    # the hybrid source (graphrec.core.recs.hybrid) scores from these
                                    "model": model, "recent": run.recent, "user_vector": run.vec, "exclude": run.excluded,
                                    "consumed": run.consumed,
                                    "hybrid_scores": run.hybrid})
        vec, excluded, sims = run.vec, run.excluded, run.sims
        by_source = await self.candidates.run(
            weights, ctx, lambda: self.candidates.ann(vec, cfg.candidates_per_source, req.filter, run.degraded, excluded, sims),
            run.timings, run.degraded, ann_inline=self.candidates.exact_answers(sims, req.filter))
        return by_source, weights

    def merge(self, run: Run, by_source: dict[str, SourceResult], weights: dict[str, float]) -> Pool:
        """One entry per item, as columns (every source's score and rank kept for the items shown);
        the fused score of items the user viewed or skipped down-weighted."""
        pool = Pool(by_source, weights)
        rules.downweight_consumed(pool.pos, pool.fused, run.consumed)
        return pool

    def rank_step(self, run: Run, pool: Pool) -> Shortlist:
        """Every candidate scored at once (the hybrid, the learned ranker, or fusion plus embedding
        similarity), promotions applied; then, best first, those that pass the request's filter
        and were not consumed, as many as the diversity step looks at."""
        s = self.s
        allowed = self.allowed(pool.ids, run.excluded, run.req.filter)  # excluded: the consumed items this surface leaves out
        return self.best(pool, allowed, rules.pool_size(run.first), run.vec, run.session_vec, run.recent, run.clock,
                         run.hybrid, rules.active_promotions(s.cfg.promotions))

    def allowed(self, ids: list[str], excluded: AbstractSet[str], f: RecFilter) -> Callable[[int], bool]:
        """Does the candidate at a position of ``ids`` pass filter ``f`` and stay out of ``excluded``?
        A filter that asks only availability (and excluded ids) is answered from sets: the
        catalogue's unavailable items, kept, and the excluded ids."""
        s = self.s
        drop = excluded | frozenset(f.exclude_item_ids) if f.exclude_item_ids else excluded
        if rules.availability_only(f, ids_apart=True):  # the common filter
            gone = s.catalog.unavailable() if f.available_only else frozenset()
            return lambda p: ids[p] not in drop and ids[p] not in gone
        return lambda p: ids[p] not in drop and rules.passes_filter(s.catalog.items.get(ids[p]), f)

    def best(self, pool: Pool, allowed: Callable[[int], bool], wanted: int, vec: np.ndarray | None,
             session_vec: np.ndarray | None, recent: History, now: float, hybrid: np.ndarray | None = None,
             promoted: dict[str, float] | None = None) -> Shortlist:
        """The ``wanted`` best candidates of ``pool`` at the positions ``allowed`` says, by
        :meth:`rank_scores` (``promoted``: item -> boost, multiplied in), best first, as columns
        (their records are built for the items chosen only: :meth:`Shortlist.records`)."""
        if ranker_usable(self.s):  # its features are per candidate: it scores the allowed ones only
            keep = [p for p in range(len(pool)) if allowed(p)]
            scores = np.full(len(pool), -np.inf)
            scores[keep] = self.rank_scores([pool.ids[p] for p in keep], pool.fused[keep], vec, session_vec, recent, now,
                                            records=lambda: pool.scored(keep))
            allowed = _anything  # every scored one was allowed (the others are at -inf)
        else:
            scores = self.rank_scores(pool.ids, pool.fused, vec, session_vec, recent, now, hybrid)
        promoted = promoted or {}
        rules.promote(pool.pos, scores, promoted)
        top: list[int] = []
        order = np.argsort(-scores, kind="stable")  # best first; ties: the merge's order
        bad = np.flatnonzero(~np.isfinite(scores[order]))
        for p in (order[:bad[0]] if len(bad) else order).tolist():  # up to the first score that is not finite
            if allowed(p):
                top.append(p)
                if len(top) >= wanted:
                    break
        return Shortlist(pool, top, scores, promoted)

    def apply_rules(self, run: Run, short: Shortlist) -> list[rules.Scored]:
        """MMR diversity with the category cap, seeded exploration; nothing left: the popular list."""
        chosen = self.finish(short, run.first, run.req, run.consumed, run.excluded)
        if not chosen:  # nothing survived: the in-memory popular list, filtered
            chosen = self.popular_fallback(run.first, run.req.filter, run.excluded)
            if not self.s.catalog.loaded:
                run.degraded.append("catalog")
        return chosen

    def answer(self, run: Run, chosen: list[rules.Scored]) -> RecResult:
        """Each item with its reason; a complete answer is cached and kept for degraded times."""
        s = self.s
        items = [self.explain(c, k + 1, run.recent, run.req) for k, c in enumerate(chosen)]
        run.timings["total"] = (time.perf_counter() - run.started) * 1000
        reasons = tuple(sorted(set(run.degraded)))
        res = RecResult(items, bool(reasons), s.model.version if s.model else None, uuid.uuid4().hex, reasons, run.timings)
        if not reasons and run.req.user_id:
            self.results.keep(run.cache_key, res, run.shape)
        return self.results.answer("recommendations", res)

    # ---- shared with the other surfaces (graphrec.engine.surfaces) --------------------------------------------------------------
    def windows(self) -> dict[str, float]:
        """The time windows of the sources that have one (``fresh``, ``fresh_live``,
        ``popular_live``), from the settings, for every source context."""
        cfg = self.s.cfg
        return {"fresh_window_s": cfg.fresh_window_days * 86400.0, "popular_window_s": cfg.popular_window_days * 86400.0,
                "popular_half_life_s": cfg.popular_half_life_days * 86400.0}

    def seeds(self, recent: History, now: float) -> list[dict[str, Any]]:
        cfg = self.s.cfg
        return seeds_from_history(recent, now, cfg.half_life_days * 86400.0, cfg.seeds, self.s.type_weights)

    def hybrid_ranks(self, recent: History, vec: np.ndarray | None) -> bool:
        """Does the live version's hybrid (graphrec.core.recs.hybrid) rank this request, as its
        evaluation ranked? Not when the learned ranker is usable, nor for a user without history
        who has a vector (stated categories: fusion and that vector rank)."""
        m = self.s.model
        return bool(m is not None and m.hybrid is not None and (recent or vec is None) and not ranker_usable(self.s))

    def rank_scores(self, ids: list[str], base: np.ndarray, vec: np.ndarray | None, session_vec: np.ndarray | None,
                    recent: History, now: float, hybrid: np.ndarray | None = None,
                    records: Callable[[], list[rules.Scored]] | None = None,
                    consumed: Consumed | None = None) -> np.ndarray:
        """The rank score of each of ``ids``: the live hybrid's (``hybrid``: its scores of every
        item, when already computed; else from ``recent`` and ``consumed``), else the learned ranker's when live and usable (its
        features from ``records()``, the candidates in the order of ``ids``), else ``base`` (the
        fused score) plus the embedding similarity when there is a user vector, else ``base``."""
        s = self.s
        if not ids:
            return base
        if self.hybrid_ranks(recent, vec):
            assert s.model is not None
            full = hybrid if hybrid is not None else s.model.hybrid_scores(recent, vec, consumed=consumed)
            assert full is not None
            return scores_of(ids, full, s.model.index)
        if ranker_usable(s):
            assert s.ranker is not None and records is not None
            cats = [s.catalog.items[h["item_id"]].categories for h in recent if h["item_id"] in s.catalog.items]
            feats = s.ranker.features(records(), vec, session_vec, s.model, s.catalog, cats, now)
            return np.asarray(s.ranker.score(feats), dtype=np.float64)
        if vec is not None and s.model:
            return base + np.maximum(0.0, np.asarray(s.model.scores(vec, ids), dtype=np.float64))
        return base

    def rank(self, cands: list[rules.Scored], vec: np.ndarray | None, session_vec: np.ndarray | None,
             recent: History, now: float, consumed: Consumed | None = None) -> None:
        """:meth:`rank_scores` over a list of candidates (their scores set in place)."""
        if not cands:
            return
        scores = self.rank_scores([c.item_id for c in cands], np.array([c.score for c in cands], dtype=np.float64),
                                  vec, session_vec, recent, now, records=lambda: cands, consumed=consumed)
        for c, x in zip(cands, scores.tolist(), strict=True):
            c.score = x

    def finish(self, short: Shortlist, first: int, req: RecRequest, consumed: Consumed,
               excluded: set[str]) -> list[rules.Scored]:
        """:func:`graphrec.core.recs.rules.finish` on the shortlist's columns: the records of the
        items chosen only."""
        s, cfg = self.s, self.s.cfg

        def cats(i: str) -> tuple[str, ...]:
            it = s.catalog.items.get(i)
            return it.categories if it else ()

        emb = s.model.vector_of if s.model else None
        exploration = None
        if req.context.explore and cfg.explore_epsilon > 0 and req.surface is Surface.HOME_FEED:
            cat = s.catalog
            if rules.availability_only(req.filter):  # the common filter: what passes it, kept per catalogue
                popular = cat.derived(f"popular_passing:{req.filter.available_only}", lambda: [
                    i for i, _ in cat.popular[:rules.EXPLORATION_POOL] if rules.passes_filter(cat.items.get(i), req.filter)])
                pool = [i for i in popular if i not in consumed and i not in excluded]
            else:
                pool = rules.exploration_pool((i for i, _ in cat.popular), consumed, excluded,
                                              lambda i: rules.passes_filter(cat.items.get(i), req.filter))
            exploration = rules.Exploration(pool, rules.exploration_seed(s.settings.seed, req.user_id, s.now(req.context)))
        vectors = s.model.vectors_of if s.model else None
        return rules.finish_columns(short.ids(), short.top_scores(), short.records, first, cfg, cats, emb, exploration,
                                    vectors)

    def popular_fallback(self, first: int, f: RecFilter, excluded: set[str]) -> list[rules.Scored]:
        out: list[rules.Scored] = []
        for i, sc in self.s.catalog.popular:
            if i not in excluded and rules.passes_filter(self.s.catalog.items.get(i), f):
                out.append(rules.Scored(i, sc, {"popular": (sc, len(out))}))
                if len(out) >= first:
                    break
        return out

    def category_vector(self, categories: tuple[str, ...]) -> np.ndarray | None:
        s = self.s
        assert s.model is not None
        vecs = [v for c in categories for i, _ in s.catalog.popular_by_category.get(c, [])[:20]
                if (v := s.model.vector_of(i)) is not None]
        if not vecs:
            return None
        m = np.mean(vecs, axis=0)
        n = float(np.linalg.norm(m))
        return m / n if n > 0 else None

    def explain(self, c: rules.Scored, rank: int, recent: History, req: RecRequest) -> Recommendation:
        return explain.recommendation(c, rank, recent, req, self.s.catalog)


@dataclass
class Shortlist:
    """The best candidates of a pool, best first, as columns: ``pos`` (their positions in
    ``pool``) and ``scores`` (the rank score of every pool position); ``promoted``: item -> its
    boost. Records (:class:`~graphrec.core.recs.rules.Scored`) only for the items asked for."""

    pool: Pool
    pos: list[int]
    scores: np.ndarray
    promoted: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pos)

    def ids(self) -> list[str]:
        ids = self.pool.ids
        return [ids[p] for p in self.pos]

    def top_scores(self) -> np.ndarray:
        return self.scores[self.pos]

    def records(self, which: list[int]) -> list[rules.Scored]:
        """The candidates at shortlist positions ``which``, as records, their promotion (if any)
        among their sources."""
        cands = self.pool.scored([self.pos[k] for k in which], self.scores)
        for c in cands:
            if c.item_id in self.promoted:
                c.sources.setdefault("promotion", (self.promoted[c.item_id], 0))
        return cands


def _anything(_: int) -> bool:
    return True
