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
from graphrec.core.recs.candidate import Candidate, SourceContext, SourceResult
from graphrec.core.recs.types import RecFilter
from graphrec.engine.guard import Guard
from graphrec.engine.sources import SOURCES
from graphrec.engine.sources.graph import session_seeds
from graphrec.engine.state import WARMING, Serving

log = logging.getLogger("graphrec.engine")

AnnFn = Callable[[], Awaitable[list[Candidate]]]


async def no_candidates() -> list[Candidate]:
    return []


class Candidates:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard

    async def ann(self, vec: np.ndarray | None, limit: int, f: RecFilter, degraded: list[str],
                  exclude: set[str]) -> list[Candidate]:
        """The items nearest ``vec``: the vector index (filters pushed down), else an exact scan."""
        s = self.s
        if vec is None or s.model is None:
            return []
        budget = s.cfg.source_budget_ms / 1000
        if s.vectors is not None or s.open_vectors is not None:
            try:
                from graphrec.core.vectors.base import VectorFilter

                vf = VectorFilter(categories_any=list(f.categories) or None, exclude_categories=list(f.exclude_categories) or None,
                                  exclude_ids=list(f.exclude_item_ids), available_only=f.available_only,
                                  year_min=f.year_min, year_max=f.year_max)
                coll = self.guard.collection(s.model)
                hits = await self.guard.vectors(lambda index: index.search(coll, vec, limit + len(exclude), vf), budget)
                return [Candidate(h.id, float(h.score), "ann") for h in hits if h.id not in exclude][:limit]
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

    async def run(self, names: dict[str, float], ctx: SourceContext, ann: AnnFn, timings: dict[str, float],
                  degraded: list[str]) -> dict[str, SourceResult]:
        """Every source with a positive weight in ``names``, at once: ``{source: candidates}``,
        counted in ``stats`` (``graphrec_candidates_total``) unless the warm-up asked."""
        s = self.s
        limit = s.cfg.candidates_per_source
        budget = s.cfg.source_budget_ms / 1000
        if s.neo4j_breaker.state == "closed":
            # The neighbour lists the weighted sources will ask for go out first (one read), so
            # the round trip overlaps the inline ANN search rather than waiting behind it.
            ids = [str(x["id"]) for x in ctx.params.get("seeds", [])] if (
                names.get("co_interaction", 0) > 0 or names.get("content", 0) > 0) else []
            if names.get("session", 0) > 0:
                ids += session_seeds(ctx)
            if ids:
                ctx.params["neighbours"].start(ctx.store, ids, budget)

        counted = not WARMING.get()  # the start-up warm-up's requests are not clients' traffic (/metrics)

        async def one(name: str) -> tuple[str, SourceResult]:
            t0 = time.perf_counter()
            res: SourceResult
            try:
                if name == "ann":
                    res = await asyncio.wait_for(ann(), budget * 1.5)
                else:
                    fn = SOURCES[name]
                    needs_neo4j = name not in ("popular", "fresh", "hybrid")  # hybrid: in memory (the live model)
                    res = await (self.guard.neo4j(fn(ctx, limit), budget) if needs_neo4j else fn(ctx, limit))
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

        pairs = await asyncio.gather(*(one(n) for n, w in names.items() if w > 0 and (n == "ann" or n in SOURCES)))
        return dict(pairs)
