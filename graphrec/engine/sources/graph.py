"""Candidate sources answered by Cypher paths in the graph of record.

The request-time sources walk the materialised neighbour edges (``CO_INTERACTED``,
``SIMILAR_CONTENT``, written by ``graphrec refresh-neighbours``) from the user's recent items,
through the engine's bounded neighbour cache (``cypher/recs/neighbour_lists.cypher`` on a miss;
``cypher/explore/neighbours_of.cypher`` is the same sum in Cypher, for Neo4j Browser). The ``*_live`` sources walk the raw
user→item→user→item paths (``cypher/recs/co_interaction.cypher`` and friends): exact and always
fresh but 20–200 ms on MovieLens-100K, so they are off by default and used for explanations,
the demo and Neo4j Browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphrec.core.recs.candidate import Candidate, SourceContext


def aggregate_neighbours(seeds: list[dict[str, object]], lists: Mapping[str, Sequence[tuple[str, float]]], limit: int,
                         name: str) -> list[Candidate]:
    """Σ over seeds of seed weight × neighbour score (seeds themselves excluded), best first;
    ``because`` names the strongest seeds. Shared by the engine and the offline evaluation."""
    seed_ids = {str(s["id"]) for s in seeds}
    score: dict[str, float] = {}
    best: dict[str, list[tuple[float, str]]] = {}
    for s in seeds:
        sid, w = str(s["id"]), float(s["w"])  # type: ignore[arg-type]
        for nid, ns in lists.get(sid, ()):
            if nid in seed_ids:
                continue
            v = w * ns
            score[nid] = score.get(nid, 0.0) + v
            best.setdefault(nid, []).append((v, sid))
    top = sorted(score.items(), key=lambda x: (-x[1], x[0]))[:limit]
    return [Candidate(i, sc, name, tuple(b for _, b in sorted(best[i], reverse=True)[:3])) for i, sc in top]


async def _neighbours(ctx: SourceContext, rel: str, seeds: list[dict[str, object]], limit: int, name: str) -> list[Candidate]:
    """The seeds' materialised neighbours, from the engine's neighbour cache, summed."""
    if not seeds:
        return []
    lists = await ctx.params["neighbours"].lists(ctx.store, rel, [str(s["id"]) for s in seeds], ctx.timeout_s)
    return aggregate_neighbours(seeds, lists, limit, name)


async def co_interaction(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Users who interacted with your recent items also interacted with these (materialised)."""
    return await _neighbours(ctx, "CO_INTERACTED", ctx.params.get("seeds", []), limit, "co_interaction")


async def shared_content(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items sharing categories, tags and KG entities with your recent items (materialised, IDF-weighted)."""
    return await _neighbours(ctx, "SIMILAR_CONTENT", ctx.params.get("seeds", []), limit, "content")


#: How many of the current session's last items seed the session sources.
SESSION_SEEDS = 10


def session_seeds(ctx: SourceContext) -> list[str]:
    """The items of the current session that seed the session sources: its last ``SESSION_SEEDS``."""
    return list(ctx.session_items[-SESSION_SEEDS:])


def session_seed_weights(session_items: list[str]) -> list[dict[str, object]]:
    """Seeds of the session source: the session's last ``SESSION_SEEDS`` items (oldest first),
    the latest weighted most. Shared by the engine and the offline replay."""
    items = list(session_items[-SESSION_SEEDS:])
    return [{"id": i, "w": 0.5 + 0.5 * (k + 1) / len(items)} for k, i in enumerate(items)]


async def session(ctx: SourceContext, limit: int) -> list[Candidate]:
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
    """Time-decayed popularity straight from the graph (the engine keeps a refreshed copy in memory)."""
    since = ctx.now - float(ctx.params.get("popular_window_s", 30 * 86400.0))
    rows = await ctx.store.read("recs/popular", timeout=ctx.timeout_s, since=since, now=ctx.now,
                                half_life_s=float(ctx.params.get("popular_half_life_s", 7 * 86400.0)),
                                type_weights=ctx.type_weights, category=ctx.category, limit=limit)
    via = (ctx.category,) if ctx.category else ()
    return [Candidate(r["item_id"], float(r["score"]), "popular", (), via) for r in rows]


async def fresh_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Recently added items straight from the graph (the engine keeps a refreshed list in memory)."""
    since = ctx.now - float(ctx.params.get("fresh_window_s", 14 * 86400.0))
    rows = await ctx.store.read("recs/fresh_items", timeout=ctx.timeout_s, since=since, limit=limit)
    n = max(1, len(rows))
    return [Candidate(r["item_id"], 1.0 - k / (2 * n), "fresh") for k, r in enumerate(rows)]


async def item_content_live(ctx: SourceContext, limit: int) -> list[Candidate]:
    """Items sharing content with the seed item, straight from the graph (for cold items)."""
    seeds = ctx.params.get("seeds") or []
    if not seeds:
        return []
    rows = await ctx.store.read("recs/item_content_live", timeout=ctx.timeout_s, item_id=str(seeds[0]["id"]),
                                max_degree=int(ctx.params.get("content_max_degree", 10_000)), limit=limit)
    return [Candidate(r["item_id"], float(r["score"]), "content", (str(seeds[0]["id"]),), tuple(r["via"])) for r in rows]
