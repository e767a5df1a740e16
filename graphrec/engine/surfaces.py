"""The surfaces other than a user's home feed, on the request pipeline's steps
(:class:`~graphrec.engine.pipeline.Pipeline`: its sources, ranking and reasons): an item's page
(``similar_items``), a given list reordered for a user (``rerank``) and many users at once
(``batch``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from graphrec.core.errors import GraphStoreError, NotFound
from graphrec.core.recs import rules
from graphrec.core.recs.candidate import SourceContext
from graphrec.core.recs.merge import Pool, decay_now, merge_candidates
from graphrec.core.recs.types import RecFilter, RecRequest, RecResult, RequestContext, Surface
from graphrec.engine.candidates import no_candidates
from graphrec.engine.pipeline import Pipeline
from graphrec.engine.results import decode, key
from graphrec.engine.sources import SOURCES


class Surfaces:
    """``similar_items`` and ``rerank``, run with the parts of ``pipeline``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.s, self.guard, self.candidates = pipeline.s, pipeline.guard, pipeline.candidates
        self.users, self.results = pipeline.users, pipeline.results

    async def similar_items(self, item_id: str, first: int = 20, filter: RecFilter | None = None) -> RecResult:
        """Items like this one, the same for every user (cached as such)."""
        s, cfg = self.s, self.s.cfg
        t_start = time.perf_counter()
        f = filter or RecFilter()
        # Excluded ids sorted: the filter is part of the result cache's key.
        f = RecFilter(f.categories, f.exclude_categories, tuple(sorted(set(f.exclude_item_ids) | {item_id})), f.available_only,
                      f.year_min, f.year_max)
        degraded: list[str] = []
        if item_id not in s.catalog.items:
            try:
                found = (await self.guard.neo4j(s.store.read("repo/item_exists", item_id=item_id)))[0]["found"]
            except GraphStoreError:
                found, degraded = False, ["neo4j"]
                if not s.catalog.loaded:
                    raise
            if not found and not degraded:
                raise NotFound("item", item_id)
        first = max(1, min(int(first), 100))
        # The same answer for every user: a widget on a popular item's page is answered from the
        # result cache (a model change starts a new cache; item changes show within its TTL).
        cache_key = key("similar", item_id, first, f, s.model.version if s.model else None)
        if (hit := self.results.lookup("similarItems", cache_key)) is not None:  # a complete answer, recent enough
            return decode(hit, {})
        if degraded and (stale := self.results.stale(cache_key, degraded, {}, "similarItems")) is not None:
            return stale
        weights = dict(cfg.sources.get("SIMILAR_ITEMS", {}))
        vec = s.model.vector_of(item_id) if s.model else None
        ctx = SourceContext(store=s.store, timeout_s=cfg.source_budget_ms / 1000, now=s.catalog.now,
                            params={"seeds": [{"id": item_id, "w": 1.0}], "catalog": s.catalog, "neighbours": s.neighbours,
                                    **self.p.windows()})
        timings: dict[str, float] = {}
        sims = self.candidates.small_sims(vec)
        by_source = await self.candidates.run(
            weights, ctx, lambda: self.candidates.ann(vec, cfg.candidates_per_source, f, degraded, {item_id}, sims), timings,
            degraded, ann_inline=self.candidates.exact_answers(sims, f))
        if not any(by_source.values()):
            if vec is None:  # a cold item: no vector, no neighbours yet — its content, live from the graph
                live = await self.candidates.run({"item_content_live": 1.0}, ctx, no_candidates, timings, degraded)
                by_source, weights = {"content": live.get("item_content_live", [])}, {"content": 1.0}
            else:
                # It has a vector, but the index was late or failed and it has no neighbour lists:
                # the most popular items of its categories, from memory. (Walking its content in
                # the graph instead costs Neo4j the most exactly when the index is late.)
                known = s.catalog.items.get(item_id)
                ctx.params["preferred_categories"] = tuple(known.categories) if known else ()
                by_source = {"popular": await SOURCES["popular"](ctx, cfg.candidates_per_source)}
                weights = {"popular": 1.0}
        pool = Pool(by_source, weights)
        # f excludes the item itself (above)
        short = self.p.best(pool, self.p.allowed(pool.ids, frozenset(), f), rules.pool_size(first), vec, None, [], s.catalog.now)
        cats = lambda i: s.catalog.items[i].categories if i in s.catalog.items else ()  # noqa: E731
        chosen = short.records(rules.diversify_order(short.ids(), short.top_scores(), first, max(cfg.mmr_lambda, 0.95), 0,
                                                     cats, None))
        req = RecRequest(None, Surface.SIMILAR_ITEMS, first, f)
        items = [self.p.explain(c, k + 1, [], req) for k, c in enumerate(chosen)]
        timings["total"] = (time.perf_counter() - t_start) * 1000
        reasons = tuple(sorted(set(degraded)))
        res = RecResult(items, bool(reasons), s.model.version if s.model else None, uuid.uuid4().hex, reasons, timings)
        if not reasons:
            self.results.keep(cache_key, res)
        elif "neo4j" in reasons and (stale := self.results.stale(cache_key, list(reasons), timings, "similarItems")) is not None:
            return stale
        return self.results.answer("similarItems", res)

    async def rerank(self, user_id: str, item_ids: list[str], first: int | None = None) -> RecResult:
        """Reorder a given list (search results) for a user; every given id that is an item comes
        back once. Ids that are not items are left out and listed in ``unknown_ids`` (a frontend
        renders what comes back; it never gets an item without a title). While Neo4j cannot say
        whether an id the catalogue does not know is an item, it is kept (and the answer is
        degraded)."""
        s, cfg = self.s, self.s.cfg
        t_start = time.perf_counter()
        degraded: list[str] = []
        ids = list(dict.fromkeys(item_ids))
        unknown = [i for i in ids if i not in s.catalog.items]
        missing: set[str] = set()
        if unknown:
            try:
                missing = set((await self.guard.neo4j(s.store.read("load/missing_items", ids=unknown),
                                                      cfg.request_budget_ms / 1000))[0]["missing"])
            except (TimeoutError, GraphStoreError):
                degraded.append("neo4j")
            ids = [i for i in ids if i not in missing]
        recent, consumed = await self.users.read(user_id, degraded)
        clock = s.now(RequestContext())
        now = decay_now(recent, clock)
        vec = s.model.user_vector(recent, now) if (s.model and recent) else None
        weights = dict(cfg.sources.get("SEARCH_RERANK", {}))
        weights.pop("ann", None)
        weights.pop("fresh", None)
        ctx = SourceContext(store=s.store, user_id=user_id, now=clock, timeout_s=cfg.source_budget_ms / 1000,
                            type_weights=s.type_weights,
                            params={"seeds": self.p.seeds(recent, now), "catalog": s.catalog,
                                    "neighbours": s.neighbours, "decay_now": now, **self.p.windows()})
        timings: dict[str, float] = {}
        by_source = await self.candidates.run(weights, ctx, no_candidates, timings, degraded)
        merged = merge_candidates(by_source, weights)
        wanted = set(ids)
        cands = [merged.get(i) or rules.Scored(i, 0.0, {}) for i in ids]
        for c in cands:
            c.sources = {k: v for k, v in c.sources.items()}
        self.p.rank(cands, vec, None, recent, clock, consumed)
        rules.apply_consumed(cands, consumed, exclude=False)
        # Stable: ties keep the caller's order.
        order = {i: k for k, i in enumerate(ids)}
        cands.sort(key=lambda c: (-c.score, order[c.item_id]))
        n = len(cands) if first is None else max(0, min(int(first), len(cands)))
        req = RecRequest(user_id, Surface.SEARCH_RERANK, n)
        items = [self.p.explain(c, k + 1, recent, req) for k, c in enumerate(cands[:n]) if c.item_id in wanted]
        timings["total"] = (time.perf_counter() - t_start) * 1000
        reasons = tuple(sorted(set(degraded)))
        return self.results.answer("rerank", RecResult(
            items, bool(reasons), s.model.version if s.model else None, uuid.uuid4().hex, reasons, timings,
            tuple(i for i in dict.fromkeys(item_ids) if i in missing)))


async def batch(recommend: Any, user_ids: list[str], first: int, surface: Surface, concurrency: int) -> dict[str, RecResult]:
    """``recommend`` for many users (email campaigns), ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(u: str) -> tuple[str, RecResult]:
        async with sem:
            return u, await recommend(RecRequest(u, surface, first, context=RequestContext(explore=False)))

    return dict(await asyncio.gather(*(one(u) for u in dict.fromkeys(user_ids))))
