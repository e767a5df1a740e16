"""Candidate sources answered by Cypher paths in the graph of record (cypher/recs/*.cypher)."""

from __future__ import annotations

from graphrec.sources.base import Candidate, SourceContext


async def co_interaction(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Users who interacted with your recent items also interacted with these."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/co_interaction", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, now=ctx.now, half_life_s=ctx.half_life_s,
                                history=ctx.history, fanout=ctx.fanout, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "co_interaction", tuple(r["because"])) for r in rows]


async def shared_content(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items sharing tags and categories with your recent items."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/shared_content", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, history=ctx.history, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "content", tuple(r["because"]), tuple(r["via"])) for r in rows]


async def kg(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items linked through the knowledge graph (same actor, director, writer...)."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/shared_entities", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, history=min(ctx.history, 10),
                                max_degree=int(ctx.params.get("kg_max_degree", 200)), limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "kg", tuple(r["because"]), tuple(r["via"])) for r in rows]


async def session(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items that co-occurred in sessions with the last items of the current session."""
    if not ctx.session_items:
        return []
    rows = await ctx.store.read("recs/session_co_occurrence", timeout=ctx.timeout_s,
                                item_ids=ctx.session_items[-10:], fanout=ctx.fanout, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "session", tuple(r["because"])) for r in rows]


async def popular(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Time-decayed popularity, overall or within the requested category."""
    since = ctx.now - float(ctx.params.get("popular_window_s", 30 * 86400.0))
    rows = await ctx.store.read("recs/popular", timeout=ctx.timeout_s, since=since, now=ctx.now,
                                half_life_s=float(ctx.params.get("popular_half_life_s", 7 * 86400.0)),
                                type_weights=ctx.type_weights, category=ctx.category, limit=limit)
    via = (ctx.category,) if ctx.category else ()
    return [Candidate(r["item_id"], float(r["score"]), "popular", (), via) for r in rows]


async def popular_by_category(ctx: SourceContext, per_category: int) -> dict[str, list[Candidate]]:
    """Per-category popularity in one pass (kept in memory by the engine, refreshed periodically)."""
    since = ctx.now - float(ctx.params.get("popular_window_s", 30 * 86400.0))
    rows = await ctx.store.read("recs/popular_by_category", timeout=ctx.timeout_s, since=since, now=ctx.now,
                                half_life_s=float(ctx.params.get("popular_half_life_s", 7 * 86400.0)),
                                type_weights=ctx.type_weights, per_category=per_category)
    return {r["category"]: [Candidate(x["item_id"], float(x["score"]), "popular", (), (r["category"],))
                            for x in r["items"]] for r in rows}


async def fresh(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Recently added items, newest first, so new content gets exposure."""
    since = ctx.now - float(ctx.params.get("fresh_window_s", 14 * 86400.0))
    rows = await ctx.store.read("recs/fresh_items", timeout=ctx.timeout_s, since=since, limit=limit)
    n = max(1, len(rows))
    return [Candidate(r["item_id"], 1.0 - i / n, "fresh") for i, r in enumerate(rows)]
