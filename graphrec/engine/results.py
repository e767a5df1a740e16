"""Answers on their way out: the result cache and its codec, the last complete answer per request
(served, marked stale, while Neo4j is away), and the bookkeeping every computed answer passes
through (answer counts for /readyz, the observers, the slow log)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from graphrec.core.recs.types import Recommendation, RecResult
from graphrec.engine.state import WARMING, Serving

log = logging.getLogger("graphrec.engine")

Entry = tuple[str, str | None]  # (JSON rows of Recommendation fields, model version)


def key(*parts: Any) -> str:
    """A result-cache key: the ``repr`` of the request's parts (strings, numbers, None and tuples
    of them, e.g. a RecFilter), one string the cyclic collector never tracks (graphrec.engine.cache)."""
    return repr(parts)


def encode(res: RecResult) -> Entry:
    """A result as the result cache keeps it: one JSON string, which CPython's collector never
    walks (as Recommendation objects, ~25 tracked objects each, every full collection walked them)."""
    rows = json.dumps([[r.item_id, r.score, r.rank, r.sources, r.reason, r.explain_query] for r in res.items])
    return rows, res.model_version


def decode(hit: Entry, timings: dict[str, float]) -> RecResult:
    rows, model_version = hit
    items = [Recommendation(i, sc, rank, tuple(srcs), reason, query) for i, sc, rank, srcs, reason, query in json.loads(rows)]
    return RecResult(items, False, model_version, uuid.uuid4().hex, (), {"cache_hit": 1.0, **timings})


class Results:
    def __init__(self, s: Serving) -> None:
        self.s = s

    def lookup(self, op: str, k: str) -> Entry | None:
        """A result-cache lookup, counted as a hit or a miss of ``op`` (``cache_counts``, the
        observers). The warm-up's own requests miss, uncounted: they are computed."""
        s = self.s
        if WARMING.get():
            return None
        hit = s.results.get(k)
        name = f"{op}.{'hit' if hit is not None else 'miss'}"
        s.cache_counts[name] = s.cache_counts.get(name, 0) + 1
        for observe in s.cache_observers:
            observe(op, hit is not None)
        return hit

    def keep(self, k: str, res: RecResult, shape: str | None = None) -> None:
        """A complete answer: cached under ``k``, and kept as the last good one under ``shape``
        (the request without what changes its answer, default ``k``)."""
        if WARMING.get():  # the warm-up's answers (explore off) are never served to clients
            return
        entry = encode(res)
        self.s.results.put(k, entry)
        self.s.last_good.put(k if shape is None else shape, entry)

    def stale(self, k: Any, degraded: list[str], timings: dict[str, float], op: str,
              excluded: set[str] | frozenset[str] = frozenset()) -> RecResult | None:
        """The last complete answer to this request (up to ``stale_ttl_s`` old), marked degraded
        with "stale" among the reasons, or None. Items in ``excluded`` (consumed since) are left
        out. It goes to the observers as ``op``'s answer."""
        s = self.s
        if s.cfg.stale_ttl_s <= 0 or (hit := s.last_good.get(k)) is None:
            return None
        cached = decode(hit, {})
        kept = [r for r in cached.items if r.item_id not in excluded]
        items = [r if r.rank == n else Recommendation(r.item_id, r.score, n, r.sources, r.reason, r.explain_query)
                 for n, r in enumerate(kept, 1)]
        res = RecResult(items, True, cached.model_version, cached.request_id,
                        tuple(sorted({*degraded, "stale"})), dict(timings))
        self.count(res)
        for observer in s.observers if not WARMING.get() else ():  # the stages that ran and the reasons
            observer(op, res)
        res.timings_ms["stale_hit"] = 1.0
        return res

    def count(self, res: RecResult) -> None:
        s = self.s
        if WARMING.get():  # the start-up's own requests are not what clients saw
            return
        period = int(time.monotonic() // 10)
        if s.answer_counts[-1][0] != period:
            s.answer_counts = [s.answer_counts[-1], [period, 0, 0]]
        s.answer_counts[-1][1] += 1
        s.answer_counts[-1][2] += "neo4j" in res.degraded_reasons

    def answer(self, op: str, res: RecResult) -> RecResult:
        """Every computed answer leaves through here: to the observers, then the slow log."""
        self.count(res)
        for observe in self.s.observers if not WARMING.get() else ():
            observe(op, res)
        return self.log_slow(op, res)

    def log_slow(self, op: str, res: RecResult) -> RecResult:
        """Log an answer slower than ``slow_log_ms`` with its per-stage timings (the on-call
        operator's first question: which source or store made it slow)."""
        total = res.timings_ms.get("total", 0.0)
        if self.s.cfg.slow_log_ms and total >= self.s.cfg.slow_log_ms and not WARMING.get():
            log.warning("slow %s %.0f ms request=%s degraded=%s timings=%s", op, total, res.request_id,
                        ",".join(res.degraded_reasons) or "-",
                        " ".join(f"{k}={v:.1f}" for k, v in res.timings_ms.items() if k != "total"))
        return res
