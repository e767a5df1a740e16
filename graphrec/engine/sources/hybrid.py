"""The ``hybrid`` source: the live version's hybrid model (graphrec.core.recs.hybrid) over the whole
catalogue, its best items not already excluded. Answers from memory (no Neo4j); nothing when the
live version has no hybrid model, nor for a user without history who stated preferred categories
(the engine then ranks by fusion and the category vector, as without a hybrid)."""

from __future__ import annotations

from graphrec.core.recs import hybrid as hybrid_model
from graphrec.core.recs.candidate import SourceContext, SourceResult
from graphrec.core.recs.model import LiveModel


async def hybrid(ctx: SourceContext, limit: int) -> SourceResult:
    model: LiveModel | None = ctx.params.get("model")
    recent = ctx.params.get("recent") or []
    if model is None or model.hybrid is None or (not recent and ctx.params.get("preferred_categories")):
        return []  # a user with no history who stated categories: the popular lists within them
    scores = ctx.params.get("hybrid_scores")  # computed once per request by the pipeline (it ranks with them)
    if scores is None:
        scores = model.hybrid.scores(recent, model.index, ctx.params.get("user_vector"), model.emb, now=ctx.now,
                                     consumed=ctx.params.get("consumed"))
    return hybrid_model.ranked(scores, model.item_ids, limit, set(ctx.params.get("exclude") or ()))
