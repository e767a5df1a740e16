"""Candidate sources answered from the engine's in-memory catalogue (refreshed periodically):
popularity (overall and per category) and fresh items. They keep answering when Neo4j is down."""

from __future__ import annotations

import numpy as np

from graphrec.core.recs import fresh as fresh_list
from graphrec.core.recs.candidate import Candidate, Ranked, SourceContext, SourceResult


async def popular(ctx: SourceContext, limit: int) -> SourceResult:
    """Time-decayed popularity; within the user's stated categories when given."""
    catalog = ctx.params["catalog"]
    cats = list(ctx.params.get("preferred_categories") or ())
    if not cats:  # the same for every request until the catalogue changes: as columns, kept
        top = catalog.popular[:limit]
        return catalog.derived(f"popular:{limit}", lambda: Ranked(  # type: ignore[no-any-return]
            [i for i, _ in top], np.array([s for _, s in top], dtype=np.float64), "popular"))
    out: list[Candidate] = []
    per = max(1, limit // len(cats))
    for c in cats:
        out.extend(Candidate(i, s, "popular", (), (c,)) for i, s in catalog.popular_by_category.get(c, [])[:per])
    return out


async def fresh(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items added within the fresh window, newest first (within the stated categories, if any)."""
    catalog = ctx.params["catalog"]
    cats = set(ctx.params.get("preferred_categories") or ())

    def in_cats(i: str) -> bool:
        return bool(cats & set(catalog.items[i].categories if i in catalog.items else ()))

    return fresh_list.candidates(fresh_list.newest(catalog.fresh, fresh_list.since(ctx), limit, in_cats if cats else None))
