"""Candidate sources run side by side, each under its budget: a late or failing source is dropped
and the answer says which store it missed. The ``ann`` source searches the vector index through
its breaker, or, without one, the live model's vectors exactly, in memory, up to a size."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np

from graphrec.core.errors import GraphStoreError, VectorStoreError
from graphrec.core.recs.candidate import Candidate, Ranked, SourceContext, SourceResult
from graphrec.core.recs.types import RecFilter
from graphrec.engine.guard import Guard
from graphrec.engine.sources import SOURCES
from graphrec.engine.sources.graph import session_seeds
from graphrec.engine.state import WARMING, Serving

log = logging.getLogger("graphrec.engine")

AnnFn = Callable[[], Awaitable[SourceResult]]

#: Sources that answer from the engine's memory (the catalogue, the live model), never Neo4j.
MEMORY_SOURCES = frozenset({"popular", "fresh", "hybrid"})
#: Sources that sum cached neighbour lists (Neo4j only for the lists the cache lacks).
NEIGHBOUR_SOURCES = frozenset({"co_interaction", "content", "session"})


async def no_candidates() -> list[Candidate]:
    return []


class Candidates:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard

    async def ann(self, vec: np.ndarray | None, limit: int, f: RecFilter, degraded: list[str],
                  exclude: set[str], sims: np.ndarray | None = None) -> SourceResult:
        """The items nearest ``vec``: the vector index (filters pushed down), else an exact scan.
        ``sims`` (``vec``'s cosine with every item of the live model, which the hybrid computed for
        this request): the exact best of those instead, in memory, for the filters the catalogue
        answers (availability, excluded ids)."""
        s = self.s
        if vec is None or s.model is None:
            return []
        if self.exact_answers(sims, f):
            assert sims is not None
            return self.exact(sims, limit, f, exclude)
        budget = s.cfg.source_budget_ms / 1000
        if s.vectors is not None or s.open_vectors is not None:
            try:
                from graphrec.core.vectors.base import VectorFilter

                vf = VectorFilter(categories_any=list(f.categories) or None, exclude_categories=list(f.exclude_categories) or None,
                                  exclude_ids=list(f.exclude_item_ids), available_only=f.available_only,
                                  year_min=f.year_min, year_max=f.year_max)
                coll = self.guard.collection(s.model)
                hits = await self.guard.vectors(lambda index: index.search(coll, vec, limit + len(exclude), vf), budget)
                kept = [h for h in hits if h.id not in exclude][:limit]
                # As columns (what the merge takes): no Candidate record per hit.
                return Ranked([h.id for h in kept], np.array([h.score for h in kept], dtype=np.float64), "ann")
            except (TimeoutError, VectorStoreError) as exc:
                log.info("vector index unavailable: %s", exc)
                degraded.append("vectors")
        # No index (or it failed): exact search over the live model's vectors in memory, off the
        # event loop. Above exact_fallback_max_items a scan costs tens of ms of CPU per request
        # and, when the index failed under load, would turn a slow index into a saturated API:
        # the source is skipped instead (the answer says "vectors").
        if len(s.model.item_ids) > s.cfg.exact_fallback_max_items:
            if "vectors" not in degraded:
                degraded.append("vectors")
            return []
        found = await asyncio.to_thread(s.model.nearest, vec, limit, exclude)
        return [Candidate(i, sc, "ann") for i, sc in found]

    def small_sims(self, vec: np.ndarray | None) -> np.ndarray | None:
        """``vec``'s cosine with every item of the live model when the catalogue is small enough
        for the scan to cost less than the index (``engine.exact_search_max_items``), else None."""
        m = self.s.model
        if vec is None or m is None or len(m.item_ids) > self.s.cfg.exact_search_max_items:
            return None
        return m.emb @ vec

    def exact_answers(self, sims: np.ndarray | None, f: RecFilter) -> bool:
        """Does :meth:`ann` answer from ``sims`` in memory (see there)? Only while the vector index
        is healthy, or when there is none: an index that is failing or not open yet goes through
        its breaker as before (the answer says ``vectors``, and requests probe its recovery)."""
        s = self.s
        m = s.model
        healthy = (s.vectors is None and s.open_vectors is None) or (
            s.vectors is not None and s.vector_breaker.state == "closed")
        return (healthy and sims is not None and m is not None and len(sims) == len(m.item_ids)
                and not (f.categories or f.exclude_categories or f.year_min is not None or f.year_max is not None))

    def exact(self, sims: np.ndarray, limit: int, f: RecFilter, exclude: set[str]) -> Ranked:
        """The ``limit`` best of ``sims`` (one per live-model item) that pass ``f`` (availability,
        excluded ids) and are not in ``exclude``, best first (ties: the model's order)."""
        model = self.s.model
        assert model is not None
        drop = exclude.union(f.exclude_item_ids) if f.exclude_item_ids else exclude
        sc = sims
        if f.available_only and (gone := self.unavailable_rows()).size:
            sc = sims.copy()
            sc[gone] = -np.inf
        k = min(len(sc), limit + len(drop))
        idx = np.argpartition(-sc, k - 1)[:k] if k < len(sc) else np.arange(len(sc))
        idx = idx[np.argsort(-sc[idx], kind="stable")]
        idx = idx[sc[idx] > -np.inf]
        ids = model.item_ids
        keep = [j for j in idx.tolist() if ids[j] not in drop][:limit]
        return Ranked([ids[j] for j in keep], sc[keep].astype(np.float64), "ann")

    def unavailable_rows(self) -> np.ndarray:
        """The live model's rows of items the catalogue says are unavailable (kept per model and
        catalogue state: :meth:`Catalog.derived`)."""
        model, cat = self.s.model, self.s.catalog
        assert model is not None

        def rows() -> np.ndarray:
            gone = cat.unavailable()
            return np.array([k for k, i in enumerate(model.item_ids) if i in gone], dtype=np.intp)

        return cat.derived(f"unavailable_rows:{model.version}:{len(model.item_ids)}", rows)  # type: ignore[no-any-return]

    async def run(self, names: dict[str, float], ctx: SourceContext, ann: AnnFn, timings: dict[str, float],
                  degraded: list[str], ann_inline: bool = False) -> dict[str, SourceResult]:
        """Every source with a positive weight in ``names``, at once: ``{source: candidates}``.

        The sources that answer from memory run one after another, in this turn of the event
        loop: ``popular``, ``fresh``, ``hybrid``, ``ann`` when ``ann_inline`` (its exact search in
        memory), and the neighbour sources when every list they sum is cached (and Neo4j's
        breaker is closed: otherwise they are dropped as before). The others run side by side,
        each under its budget. Counted in ``stats`` (``graphrec_candidates_total``) unless the
        warm-up asked."""
        s = self.s
        limit = s.cfg.candidates_per_source
        budget = s.cfg.source_budget_ms / 1000
        cached = False
        if s.neo4j_breaker.state == "closed":
            # The neighbour lists the weighted sources will ask for go out first (one read), so
            # the round trip overlaps the inline ANN search rather than waiting behind it.
            ids = [str(x["id"]) for x in ctx.params.get("seeds", [])] if (
                names.get("co_interaction", 0) > 0 or names.get("content", 0) > 0) else []
            if names.get("session", 0) > 0:
                ids += session_seeds(ctx)
            cached = ctx.params["neighbours"].start(ctx.store, ids, budget) if ids else True

        def in_memory(name: str) -> bool:
            return name in MEMORY_SOURCES or (name == "ann" and ann_inline) or (cached and name in NEIGHBOUR_SOURCES)

        counted = not WARMING.get()  # the start-up warm-up's requests are not clients' traffic (/metrics)

        async def one(name: str) -> tuple[str, SourceResult]:
            t0 = time.perf_counter()
            res: SourceResult
            try:
                if name == "ann":
                    res = await (ann() if ann_inline else asyncio.wait_for(ann(), budget * 1.5))
                elif in_memory(name):
                    res = await SOURCES[name](ctx, limit)
                    if name in NEIGHBOUR_SOURCES:
                        # What the breaker saw when these went through it (guard.neo4j): a
                        # success, which resets its count of failures in a row.
                        s.neo4j_breaker.success()
                else:
                    res = await self.guard.neo4j(SOURCES[name](ctx, limit), budget, shed=True)
            except (TimeoutError, GraphStoreError) as exc:
                if isinstance(exc, GraphStoreError):
                    degraded.append("neo4j")
                if counted:
                    s.stats[f"late_or_failed.{name}"] = s.stats.get(f"late_or_failed.{name}", 0) + 1
                res = []
            timings[f"source.{name}"] = (time.perf_counter() - t0) * 1000
            if counted:
                s.stats[f"candidates.{name}"] = s.stats.get(f"candidates.{name}", 0) + len(res)
            return name, res

        wanted = [n for n, w in names.items() if w > 0 and (n == "ann" or n in SOURCES)]
        got = {n: (await one(n))[1] for n in wanted if in_memory(n)}  # no task, no timer: they never wait
        got.update(await asyncio.gather(*(one(n) for n in wanted if n not in got)))
        return {n: got[n] for n in wanted}  # in the order of names: the merge's first-seen order
