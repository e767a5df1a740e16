"""What the parts of the engine share: settings, the stores and their breakers, the live catalogue,
model and ranker, the caches and the counters. One instance per engine; every part reads it at
call time, so a swapped store, model or cache is seen at once by all of them."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphrec.core.config import EngineSettings, Settings
from graphrec.core.graph.store import AsyncGraphStore
from graphrec.core.records import RowLimits
from graphrec.core.recs.model import LiveModel
from graphrec.core.recs.types import RecResult, RequestContext
from graphrec.engine.breaker import Breaker
from graphrec.engine.cache import TTLCache
from graphrec.engine.catalog import Catalog, SharedPopular
from graphrec.engine.journal import Journal
from graphrec.engine.sources.neighbour_cache import NeighbourCache

Held = tuple[bytes, float, bool]  # a held user state: (marshal bytes, its stamp, servable)

#: True in the start-up warm-up's own requests (set in its task only): they are not counted,
#: observed, slow-logged or cached, while clients' requests served beside them are.
WARMING: contextvars.ContextVar[bool] = contextvars.ContextVar("graphrec_warming", default=False)


@dataclass(eq=False)
class Serving:
    settings: Settings
    store: AsyncGraphStore
    cfg: EngineSettings
    vectors: Any | None
    neo4j_breaker: Breaker
    vector_breaker: Breaker
    # Cached results: (JSON rows of Recommendation fields, model version); see results.py.
    results: TTLCache[tuple[str, str | None]]
    # The last complete answer per request, served while Neo4j is unavailable (results.stale).
    # Entries are the same strings as the result cache's; a model change does not clear them.
    last_good: TTLCache[tuple[str, str | None]]
    # Items as marshal bytes (an item has nested tuples): see graphrec.engine.cache on why.
    item_cache: TTLCache[bytes]
    # The user states this process holds (see user_state.py): per user (marshal bytes of recent
    # history and consumed items, plus what this process recorded since; the User.history_at
    # stamp it was read with; may it be served), a flat tuple the cyclic collector leaves alone.
    user_states: TTLCache[Held]
    # The popular lists' window queries run once per popular_refresh_s for all API processes.
    shared_popular: SharedPopular
    journal: Journal
    limits: RowLimits
    # Set when the configured index could not be opened at start: it is opened again, in the
    # background, whenever the vector breaker lets a probe through (guard.Guard.vectors).
    open_vectors: Callable[[], Any] | None = None
    opening: asyncio.Task[None] | None = None
    catalog: Catalog = field(default_factory=Catalog)
    model: LiveModel | None = None
    ranker: Any | None = None
    # Why the ranker is or is not used (it is used only with the GNN version it was trained on):
    # shown by /readyz and logged when it changes.
    ranker_status: str = "no ranker"
    neighbours: NeighbourCache = field(default_factory=NeighbourCache)
    # Idempotency keys this process wrote or journalled lately: key -> (user, item, type), so a
    # key reused for another interaction is refused even while Neo4j cannot be asked.
    recent_keys: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # (monotonic time, pending bytes) of the journal, sampled by the replay task: is it growing?
    journal_samples: list[tuple[float, int]] = field(default_factory=list)
    # (monotonic time, replay offset) since when entries have waited with the Neo4j breaker closed
    # and the replay has not moved (None: nothing pending, the breaker not closed, or it moved).
    journal_waiting: tuple[float, int] | None = None
    # Answers given in the current and the previous 10-s period: [period, answers, degraded by Neo4j].
    answer_counts: list[list[int]] = field(default_factory=lambda: [[0, 0, 0], [0, 0, 0]])
    stats: dict[str, float] = field(default_factory=dict)
    cache_counts: dict[str, int] = field(default_factory=dict)  # "<operation>.hit" / ".miss", since start
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Called with (operation, answer) for every answer computed or served stale (not for
    # result-cache hits): the API's metrics (stage timings, degraded reasons per operation).
    observers: list[Callable[[str, RecResult], None]] = field(default_factory=list)
    # Called with (operation, hit) on every result-cache lookup (the API counts hits and misses).
    cache_observers: list[Callable[[str, bool], None]] = field(default_factory=list)
    catalog_listeners: list[Callable[[], None]] = field(default_factory=list)  # after a full catalogue read
    # The start-up warm-up (write path, then sample requests) is running, in the background once
    # the engine serves: /readyz says "warming" (see graphrec.engine.warmup).
    warming: bool = False

    @classmethod
    def create(cls, settings: Settings, store: AsyncGraphStore, vectors: Any | None = None) -> Serving:
        cfg = settings.engine
        # A probe is taken as lost only after longer than any Neo4j call may take (query timeout,
        # connection acquisition): until then the other calls fail fast rather than hang beside it.
        probe_s = 2 * settings.neo4j.query_timeout_s + 4 * settings.neo4j.connection_timeout_s
        return cls(
            settings=settings, store=store, cfg=cfg, vectors=vectors,
            neo4j_breaker=Breaker("neo4j", cfg.breaker_failures, cfg.breaker_reset_s, probe_timeout_s=probe_s),
            vector_breaker=Breaker("vectors", cfg.breaker_failures, cfg.breaker_reset_s),
            results=TTLCache(cfg.result_cache_size, cfg.result_cache_ttl_s),
            last_good=TTLCache(cfg.result_cache_size, cfg.stale_ttl_s),
            item_cache=TTLCache(cfg.item_cache_size, cfg.item_cache_ttl_s),
            user_states=TTLCache(cfg.user_state_cache_size, cfg.user_state_cache_ttl_s),
            shared_popular=SharedPopular(cfg.popular_refresh_s, cfg.popular_window_days * 86400.0,
                                         cfg.popular_half_life_days * 86400.0),
            journal=Journal(settings.var_dir / "journal"),
            limits=RowLimits.from_settings(settings.loader))

    @property
    def type_weights(self) -> dict[str, float]:
        """``[interactions] score_weights``: each interaction type's weight in collaborative scores."""
        return self.settings.interactions.score_weights

    def clear_results(self) -> None:
        """A new, empty result cache (a new model or ranker, replayed writes: old answers are stale)."""
        self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)

    def now(self, ctx: RequestContext) -> float:
        """The request's clock: its own ``now``, else the graph's clock, else wall time."""
        return ctx.now or self.catalog.now or time.time()
