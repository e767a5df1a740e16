"""Why an item was recommended, in English, from the sources that found it; for collaborative
reasons also a ready Cypher snippet to paste into Neo4j Browser."""

from __future__ import annotations

from typing import Any

from graphrec.core.recs import rules
from graphrec.core.recs.types import Recommendation, RecRequest, Surface
from graphrec.engine.catalog import Catalog

VERB = {"RATED": "rated", "PURCHASED": "bought", "CLICKED": "clicked", "VIEWED": "viewed"}


def recommendation(c: rules.Scored, rank: int, recent: list[dict[str, Any]], req: RecRequest,
                   catalog: Catalog) -> Recommendation:
    """The answer's entry for a chosen candidate: its sources (strongest first) and its reason."""
    srcs = tuple(sorted(c.sources, key=lambda s: -c.sources[s][0] if s != "explore" else 0))
    text, query = reason(c, recent, req, catalog)
    return Recommendation(c.item_id, round(float(c.score), 6), rank, srcs, text, query)


def reason(c: rules.Scored, recent: list[dict[str, Any]], req: RecRequest, catalog: Catalog
           ) -> tuple[str | None, str | None]:
    """(the reason shown, a Browser snippet for collaborative reasons)."""
    def title(item_id: str) -> str:
        it = catalog.items.get(item_id)
        return it.title if it and it.title else item_id

    src = c.sources
    if "explore" in src:
        return "something different, to widen your feed", None
    if "session" in src and c.because:
        return f"because you viewed {title(c.because[0])} just now", None
    if "co_interaction" in src and c.because:
        b = c.because[0]
        if req.surface is Surface.SIMILAR_ITEMS:
            return f"people who liked {title(b)} also liked this", None
        # The verb of the user's earliest interaction with it (history is newest first).
        verb = next((VERB.get(h["type"], "liked") for h in reversed(recent) if h["item_id"] == b), "liked")
        return f"because you {verb} {title(b)}", browser_snippet(req.user_id or "", c.item_id)
    if "content" in src and c.because:
        return f"similar to {title(c.because[0])}", None
    if "ann" in src:
        return "matches your taste" if req.surface is not Surface.SIMILAR_ITEMS else "similar to this", None
    if "popular" in src:
        cat = c.via[0] if c.via else None
        return (f"popular in {cat} this week" if cat else "popular right now"), None
    if "fresh" in src:
        return "new this week", None
    if "promotion" in src:
        return "featured", None
    return None, None


def browser_snippet(user_id: str, item_id: str) -> str:
    """Parameters for ``cypher/explore/co_interaction_path.cypher`` in Neo4j Browser (quoted: the
    ids are values of ``:param``, never query text)."""
    return (f":param user_id => '{_q(user_id)}'; :param item_id => '{_q(item_id)}'; "
            "// then run cypher/explore/co_interaction_path.cypher")


def _q(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")
