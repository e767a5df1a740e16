"""The fresh list: available items created within ``engine.fresh_window_days`` of the clock,
newest first, scored by rank. The engine answers it from its catalogue (the ``fresh`` source) or
from the graph (``fresh_live``); the ranker's offline replay from its snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from graphrec.core.recs.candidate import Candidate, SourceContext


def since(ctx: SourceContext) -> float:
    """The fresh window's start for a request: its clock minus ``params["fresh_window_s"]``,
    which every caller passes from ``engine.fresh_window_days`` (no default here: a context
    without it is a bug, not a window of some other length)."""
    return ctx.now - float(ctx.params["fresh_window_s"])


def newest(fresh: Iterable[tuple[str, float]], since: float, limit: int,
           keep: Callable[[str], bool] | None = None) -> list[str]:
    """The first ``limit`` items of ``fresh`` ((id, created at), newest first) created at or after
    ``since`` and passing ``keep``."""
    ids: list[str] = []
    for i, t in fresh:  # newest first: stop at the window's start or at the limit
        if t < since or len(ids) >= limit:
            break
        if keep is None or keep(i):
            ids.append(i)
    return ids


def candidates(ids: Sequence[str]) -> list[Candidate]:
    """The fresh source's candidates for ``ids`` (newest first), scored by rank: 1.0 for the
    newest, falling linearly to just above 0.5 for the last."""
    n = max(1, len(ids))
    return [Candidate(i, 1.0 - k / (2 * n), "fresh") for k, i in enumerate(ids)]
