"""Candidate sources: each a named async function with one signature, resolved from config.

``SOURCES`` maps a name (used in config and in every recommendation's ``sources``) to its
function. A new source is one new module plus one entry here and in the config.
"""

from graphrec.sources.base import Candidate, SourceContext, SourceFn
from graphrec.sources.graph import co_interaction, fresh, kg, popular, session, shared_content

SOURCES: dict[str, SourceFn] = {
    "co_interaction": co_interaction,
    "content": shared_content,
    "kg": kg,
    "session": session,
    "popular": popular,
    "fresh": fresh,
}

__all__ = ["Candidate", "SourceContext", "SourceFn", "SOURCES"]
