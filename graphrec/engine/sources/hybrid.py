"""The ``hybrid`` source: the live version's hybrid model (graphrec.core.recs.hybrid) over the whole
catalogue, its best items not already excluded. Answers from memory (no Neo4j); nothing when the
live version has no hybrid model, nor for a user without history who stated preferred categories
(the engine then ranks by fusion and the category vector, as without a hybrid)."""

from __future__ import annotations

from graphrec.core.recs.candidate import Candidate, SourceContext
from graphrec.core.recs.hybrid import top


async def hybrid(ctx: SourceContext, limit: int) -> list[Candidate]:
    model = ctx.params.get("model")
    recent = ctx.params.get("recent") or []
    if model is None or getattr(model, "hybrid", None) is None or (not recent and ctx.params.get("preferred_categories")):
        return []  # a user with no history who stated categories: the popular lists within them
    scores = ctx.params.get("hybrid_scores")  # computed once per request by the pipeline (it ranks with them)
    if scores is None:
        scores = model.hybrid_scores(recent, ctx.params.get("user_vector"))
    # Scores can be negative (z-scores): shifted so that the merge's "score / best" stays in [0, 1].
    found = top(scores, model.item_ids, limit, set(ctx.params.get("exclude") or ()))
    low = min((s for _, s in found), default=0.0)
    return [Candidate(i, s - low, "hybrid") for i, s in found]
