"""Candidate sources: each a named async function with one signature, resolved from config.

``SOURCES`` maps a name (used in config and in every recommendation's ``sources``) to its
function ``async (ctx: SourceContext, limit: int) -> list[Candidate]``. A new source is one
function plus one entry here and a weight in ``[engine.sources.<SURFACE>]``. The ``ann``
source lives with the engine (it needs the live model's vectors).
"""

from graphrec.core.recs.candidate import Candidate, SourceContext, SourceFn
from graphrec.engine.sources import graph, hybrid, memory

SOURCES: dict[str, SourceFn] = {
    "co_interaction": graph.co_interaction,
    "content": graph.shared_content,
    "session": graph.session,
    "popular": memory.popular,
    "fresh": memory.fresh,
    "hybrid": hybrid.hybrid,
    "co_interaction_live": graph.co_interaction_live,
    "content_live": graph.content_live,
    "kg_live": graph.kg_live,
    "session_live": graph.session_live,
    "popular_live": graph.popular_live,
    "fresh_live": graph.fresh_live,
    "item_content_live": graph.item_content_live,
}

__all__ = ["Candidate", "SourceContext", "SourceFn", "SOURCES"]
