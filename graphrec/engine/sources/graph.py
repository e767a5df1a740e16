"""Candidate sources answered by Cypher paths in the graph of record.

The request-time sources walk the materialised neighbour edges (``CO_INTERACTED``,
``SIMILAR_CONTENT``, written by ``graphrec refresh-neighbours``) from the user's recent items,
through the engine's bounded neighbour cache (``cypher/recs/neighbour_lists.cypher`` on a miss;
``cypher/explore/neighbours_of.cypher`` is the same sum in Cypher, for Neo4j Browser). The ``*_live`` sources walk the raw
user→item→user→item paths (``cypher/recs/co_interaction.cypher`` and friends): exact and always
fresh, but a walk per request that grows with the users' histories and the items' degrees, too
slow for a request's budget; so they are off by default and used for explanations, the demo and
Neo4j Browser.
"""

from __future__ import annotations

from graphrec.core.recs import fresh as fresh_list
from graphrec.core.recs import popularity
from graphrec.core.recs.candidate import Candidate, Ranked, SourceContext
from graphrec.core.recs.merge import SESSION_SEEDS, aggregate_neighbours, session_seed_weights


async def _neighbours(ctx: SourceContext, rel: str, seeds: list[dict[str, object]], limit: int, name: str) -> Ranked:
    """The seeds' materialised neighbours, from the engine's neighbour cache, summed."""
    if not seeds:
        return Ranked.empty(name)
    lists = await ctx.params["neighbours"].lists(ctx.store, rel, [str(s["id"]) for s in seeds], ctx.timeout_s)
    return aggregate_neighbours(seeds, lists, limit, name)


async def co_interaction(ctx: SourceContext, limit: int) -> Ranked:
    """Users who interacted with your recent items also interacted with these (materialised)."""
    return await _neighbours(ctx, "CO_INTERACTED", ctx.params.get("seeds", []), limit, "co_interaction")


async def shared_content(ctx: SourceContext, limit: int) -> Ranked:
    """Items sharing categories, tags and KG entities with your recent items (materialised, IDF-weighted)."""
    return await _neighbours(ctx, "SIMILAR_CONTENT", ctx.params.get("seeds", []), limit, "content")


def session_seeds(ctx: SourceContext) -> list[str]:
    """The items of the current session that seed the session sources: its last ``SESSION_SEEDS``."""
    return list(ctx.session_items[-SESSION_SEEDS:])


async def session(ctx: SourceContext, limit: int) -> Ranked:
    """The last 10 items of the current session → their co-interaction neighbours."""
    return await _neighbours(ctx, "CO_INTERACTED", session_seed_weights(ctx.session_items), limit, "session")


async def co_interaction_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """The raw path: users who interacted with your items also interacted with (no materialisation)."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/co_interaction", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, now=ctx.params.get("decay_now", ctx.now),
                                half_life_s=ctx.half_life_s, history=ctx.history, fanout=ctx.fanout, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "co_interaction_live", tuple(r["because"])) for r in rows]


async def content_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """The raw path: items sharing tags and categories with your recent items."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/shared_content", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, history=ctx.history, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "content_live", tuple(r["because"]), tuple(r["via"])) for r in rows]


async def kg_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """The raw path through the knowledge graph (same actor, director, writer...)."""
    if not ctx.user_id:
        return []
    rows = await ctx.store.read("recs/shared_entities", timeout=ctx.timeout_s, user_id=ctx.user_id,
                                type_weights=ctx.type_weights, history=min(ctx.history, 10),
                                max_degree=int(ctx.params.get("kg_max_degree", 200)), limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "kg_live", tuple(r["because"]), tuple(r["via"])) for r in rows]


async def session_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """The raw path: items in the same sessions as the current session's last items."""
    if not ctx.session_items:
        return []
    rows = await ctx.store.read("recs/session_co_occurrence", timeout=ctx.timeout_s,
                                item_ids=session_seeds(ctx), fanout=ctx.fanout, limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "session_live", tuple(r["because"])) for r in rows]


async def popular_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Time-decayed popularity straight from the graph (the engine keeps a refreshed copy in memory),
    over the window of the engine's last popular lists (widened when quiet: see
    graphrec.core.recs.popularity), else the nominal one."""
    catalog = ctx.params.get("catalog")
    win = getattr(catalog, "popular_window", None)
    if win is None:  # the nominal window, from the settings the caller passes
        win = popularity.nominal(ctx.now, float(ctx.params["popular_window_s"]), float(ctx.params["popular_half_life_s"]))
    since, half_life_s = win.since, win.half_life_s
    rows = await ctx.store.read("recs/popular", timeout=ctx.timeout_s, since=since, now=ctx.now,
                                half_life_s=half_life_s,
                                type_weights=ctx.type_weights, category=ctx.category, limit=limit)
    via = (ctx.category,) if ctx.category else ()
    return [Candidate(r["item_id"], float(r["score"]), "popular", (), via) for r in rows]


async def fresh_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Recently added items straight from the graph (the engine keeps a refreshed list in memory)."""
    rows = await ctx.store.read("recs/fresh_items", timeout=ctx.timeout_s, since=fresh_list.since(ctx), limit=limit)
    return fresh_list.candidates([r["item_id"] for r in rows])


async def item_content_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items sharing content with the seed item, straight from the graph (for cold items)."""
    seeds = ctx.params.get("seeds") or []
    if not seeds:
        return []
    rows = await ctx.store.read("recs/item_content_live", timeout=ctx.timeout_s, item_id=str(seeds[0]["id"]),
                                max_degree=int(ctx.params.get("content_max_degree", 10_000)), limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "content", (str(seeds[0]["id"]),), tuple(r["via"])) for r in rows]
