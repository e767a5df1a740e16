"""The request-time engine: gather candidates from several sources at once, rank, apply rules.

One request (``recommend``):

1. **user state** — one Neo4j round trip: recent interactions and every consumed item;
2. **sources**, concurrently, each under its own budget (a late source is dropped): ``ann``
   (the user vector from their history against the vector index, filters pushed down),
   ``co_interaction`` / ``content`` / ``session`` (materialised Cypher paths from the user's
   recent items), ``popular`` / ``fresh`` (the in-memory catalogue);
3. **merge** — de-duplicated, every source's score and rank kept;
4. **rank** — the learned ranker when it is live and enabled, else score fusion
   (Σ weight·normalised source score + embedding similarity);
5. **rules** — filters, consumed-item exclusion, promotions, MMR diversity with a per-category
   cap, seeded exploration; each recommendation gets its sources and a readable reason.

Degraded mode: every store call goes through a circuit breaker; when Neo4j or the vector index
fails, the request answers from what is left, down to the in-memory popular list, and says so.
State that must be shared between API processes (interactions, models) lives in the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import marshal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from graphrec.config import Settings
from graphrec.engine import rules
from graphrec.engine.breaker import Breaker
from graphrec.engine.cache import TTLCache
from graphrec.engine.catalog import Catalog, CatalogItem, SharedPopular, load_catalog
from graphrec.engine.merge import decay_now, merge_candidates, seeds_from_history
from graphrec.engine.model import LiveModel
from graphrec.engine.types import (
    RecFilter,
    Recommendation,
    RecordResult,
    RecRequest,
    RecResult,
    RequestContext,
    Surface,
)
from graphrec.errors import (
    CollectionNotFound,
    GraphrecError,
    GraphStoreError,
    GraphStoreUnavailable,
    KeyConflict,
    LockHeld,
    NotFound,
    QueryError,
    VectorStoreError,
    VectorStoreUnavailable,
)
from graphrec.graph.repository import (
    DEFAULT_TYPE_WEIGHTS,
    Interaction,
    Item,
    User,
    interaction_statements,
)
from graphrec.graph.store import AsyncGraphStore
from graphrec.engine.journal import Journal, refused_for_good, write_rows_sync
from graphrec.engine.sources import SOURCES
from graphrec.engine.sources.base import Candidate, SourceContext
from graphrec.engine.sources.graph import session_seeds
from graphrec.engine.sources.neighbour_cache import NeighbourCache
from loaders.records import InteractionRow, InteractionType, ItemRow, RowLimits, UserRow, validate

log = logging.getLogger("graphrec.engine")
T = TypeVar("T")

#: A user state larger than this (marshalled) is not kept for degraded answers (see _keep_user_state).
USER_STATE_MAX_BYTES = 32_768
VERB = {"RATED": "rated", "PURCHASED": "bought", "CLICKED": "clicked", "VIEWED": "viewed"}


class Engine:
    """Recommendations for users, items and lists of items. Create with :meth:`create`."""

    def __init__(self, settings: Settings, store: AsyncGraphStore, vectors: Any | None = None) -> None:
        self.settings = settings
        self.cfg = settings.engine
        self.store = store
        self.vectors = vectors
        # Set when the configured index could not be opened at start: it is opened again, in the
        # background, whenever the vector breaker lets a probe through (see _vectors).
        self.open_vectors: Callable[[], Any] | None = None
        self._opening: asyncio.Task[None] | None = None
        self.catalog = Catalog()
        self.model: LiveModel | None = None
        self.ranker: Any | None = None
        # Why the ranker is or is not used (the engine uses a ranker only with the GNN version it
        # was trained on): shown by /readyz and logged when it changes.
        self.ranker_status = "no ranker"
        # A probe is taken as lost only after longer than any Neo4j call may take (query timeout,
        # connection acquisition): until then the other calls fail fast rather than hang beside it.
        self.neo4j_breaker = Breaker("neo4j", self.cfg.breaker_failures, self.cfg.breaker_reset_s,
                                     probe_timeout_s=2 * settings.neo4j.query_timeout_s + 4 * settings.neo4j.connection_timeout_s)
        self.vector_breaker = Breaker("vectors", self.cfg.breaker_failures, self.cfg.breaker_reset_s)
        # Cached results: (JSON rows of Recommendation fields, model version); see recommend().
        self.results: TTLCache[tuple[str, str | None]] = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)
        # The last complete answer per request, served while Neo4j is unavailable (see _stale).
        # Entries are the same strings as the result cache's; a model change does not clear them.
        self.last_good: TTLCache[tuple[str, str | None]] = TTLCache(self.cfg.result_cache_size, self.cfg.stale_ttl_s)
        # Items as marshal bytes (an item has nested tuples): see graphrec.engine.cache on why.
        self.item_cache: TTLCache[bytes] = TTLCache(self.cfg.item_cache_size, self.cfg.item_cache_ttl_s)
        self.neighbours = NeighbourCache()
        # The popular lists' window queries run once per popular_refresh_s for all API processes.
        self.shared_popular = SharedPopular(self.cfg.popular_refresh_s, self.cfg.popular_window_days * 86400.0,
                                            self.cfg.popular_half_life_days * 86400.0)
        self.journal = Journal(settings.var_dir / "journal")
        self.limits = RowLimits.from_settings(settings.loader)
        # Idempotency keys this process wrote or journalled lately: key -> (user, item, type), so a
        # key reused for another interaction is refused even while Neo4j cannot be asked.
        self.recent_keys: dict[str, tuple[str, str, str]] = {}
        # The last user state read per user (marshal bytes: recent history, consumed items), plus
        # what this process recorded since: a degraded answer still excludes what they consumed.
        self.user_states: TTLCache[bytes] = TTLCache(self.cfg.user_state_cache_size, self.cfg.user_state_cache_ttl_s)
        # (monotonic time, pending bytes) of the journal, sampled by the replay task: is it growing?
        self.journal_samples: list[tuple[float, int]] = []
        # Answers given in the current and the previous 10-s period: [period, answers, degraded by Neo4j].
        self.answer_counts: list[list[int]] = [[0, 0, 0], [0, 0, 0]]
        self.stats: dict[str, float] = {}
        self.cache_counts: dict[str, int] = {}  # "<operation>.hit" / "<operation>.miss", since start
        self._tasks: list[asyncio.Task[None]] = []
        # Called with (operation, answer) for every answer computed or served stale (not for
        # result-cache hits): the API's metrics (stage timings, degraded reasons per operation).
        self.observers: list[Callable[[str, RecResult], None]] = []
        # Called with (operation, hit) on every result-cache lookup (the API counts hits and misses).
        self.cache_observers: list[Callable[[str, bool], None]] = []
        self.catalog_listeners: list[Callable[[], None]] = []  # called after a full catalogue read
        self._warming = False  # warm_requests is running: its answers are not slow-logged

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def create(cls, settings: Settings, vectors: Any | None = None, background: bool = True) -> Engine:
        store = AsyncGraphStore.from_settings(settings)
        reopen = None
        if vectors is None:
            vectors, reopen = _open_vectors(settings)
        eng = cls(settings, store, vectors)
        eng.open_vectors = reopen
        with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
            await eng.warm_up()
            await eng.warm_writes()
        with contextlib.suppress(GraphrecError):
            await eng.refresh_catalog()
            await eng.neighbours.prefetch(store, [i for i, _ in eng.catalog.popular[: eng.cfg.prefetch_neighbours]])
        with contextlib.suppress(GraphrecError):
            await eng.refresh_model()
        with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
            await eng.warm_requests()
        if background:
            eng._tasks.append(asyncio.create_task(eng._every(eng.cfg.catalog_refresh_s, eng.refresh_catalog)))
            eng._tasks.append(asyncio.create_task(eng._every(eng.cfg.model_poll_s, eng.refresh_model)))
            eng._tasks.append(asyncio.create_task(eng._every(2.0, eng._replay_task)))
        return eng

    async def close(self) -> None:
        if self._opening is not None:
            self._tasks.append(self._opening)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.store.close()
        if self.vectors is not None:
            with contextlib.suppress(Exception):
                self.vectors.close()

    async def warm_up(self) -> None:
        """Open pooled connections (``neo4j.warm_connections``) and let Neo4j plan the
        request-path queries once, so the first requests do not pay connection set-up and query
        planning."""
        await self.store.fill_pool(self.settings.neo4j.warm_connections)
        await self.store.read("repo/user_state", user_id="", recent=1, max_consumed=1)
        await self.store.read("recs/neighbour_lists", ids=[""], per_item=1)
        # The write path too (one query text per interaction type), in a transaction rolled back:
        # the first recordInteraction after a Neo4j start took ~1 s without this, ~0.2 s with it.
        await self.store.read("load/interaction_refs", plain=True, ids=[""], keys=[""])
        nobody = {"key": "", "user": "", "item": "", "ts": 0.0, "value": None, "dwell": None, "session": None}
        await self.store.rehearse([s for t in InteractionType
                                   for s in interaction_statements(t, nobody, "", "", 0.0, self.cfg.clock_slack_s)])

    async def warm_writes(self, round_size: int = 25) -> int:
        """Commit the write path's shape (``repo/warm_commit``: a node merged by its key, a
        relationship with an interaction's properties; on nodes of this warm-up's own, removed at
        the end) in rounds until a round's median commit is less than 15% faster than the one
        before (``engine.warm_up_commits`` to three times that, at most ``warm_up_s``); returns how many were
        committed. The rolled-back rehearsal plans the real statements, but after a Neo4j start
        the commit path itself is slow until it has run many times: on a fresh Neo4j (demo graph),
        the first 250 interaction commits at 100/s had a median of 355-405 ms without this, 15-22
        ms after 100 warm-up commits and 7-8 ms after 1,000 (the default; ~4 s). Sequential, on
        one connection."""
        at_least, most = self.cfg.warm_up_commits, 3 * self.cfg.warm_up_commits
        if self.cfg.warm_up_s <= 0 or at_least <= 0:
            return 0
        t0 = time.monotonic()
        key = f"warm-up:{self.shared_popular.holder}"
        done, previous, first = 0, float("inf"), None
        try:
            while done < most and time.monotonic() - t0 < self.cfg.warm_up_s:
                lat = []
                for _ in range(round_size):
                    t = time.perf_counter()
                    await self.store.write("repo/warm_commit", key=key, ts=time.time(), round=done)
                    lat.append(time.perf_counter() - t)
                    done += 1
                median = sorted(lat)[len(lat) // 2]
                first = median if first is None else first
                if done >= at_least and median > 0.85 * previous:
                    break
                previous = min(previous, median)
        finally:
            await self.store.write("repo/warm_commit_done", key=key, stale_before=time.time() - 3600.0)
        self.stats["warm_up_commits"] = done
        self.stats["warm_up_commits_ms"] = (time.monotonic() - t0) * 1000
        log.info("write path warmed: %d commits in %.1f s, median commit %.1f ms in the first round, %.1f ms in the last",
                 done, time.monotonic() - t0, 1e3 * (first or 0.0), 1e3 * median if done else 0.0)
        return done

    async def warm_requests(self, round_size: int = 25, at_least: int = 200) -> int:
        """Serve recommendations to a sample of real users, in rounds: ``at_least`` answers, then
        until a round is less than 15% faster than the one before and none of its answers was
        degraded by Neo4j (or ``warm_up_s`` passed); returns how many were served. After a
        Neo4j restart its read path runs interpreted at first and the first answers miss their
        budgets (degraded: no user state); its JIT compiles the path after some hundreds of
        requests.
        Nothing is observed (no metrics, no slow log) and nothing is kept: the result and
        last-good caches start empty afterwards. A failing request ends the warm-up, never the
        start."""
        if self.cfg.warm_up_s <= 0:
            return 0
        t0 = time.monotonic()
        users = [r["id"] for r in await self.store.read("repo/sample_users", limit=4 * round_size)]
        if not users:
            return 0
        observers, self.observers = self.observers, []
        served, previous, warming = 0, float("inf"), True
        self._warming = True
        try:
            while warming and time.monotonic() - t0 < self.cfg.warm_up_s:
                self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)  # computed, not cached
                lat, slow_store = [], False
                for k in range(round_size):
                    user = users[(served + k) % len(users)]
                    t = time.perf_counter()
                    try:
                        res = await self.recommend(RecRequest(user, Surface.HOME_FEED, 20,
                                                              context=RequestContext(explore=False)))
                    except Exception as exc:  # noqa: BLE001 - warming must never stop the start
                        log.warning("warm-up stopped: recommendations for user %r failed: %r", user, exc)
                        warming = False
                        break
                    lat.append(time.perf_counter() - t)
                    slow_store = slow_store or "neo4j" in res.degraded_reasons
                served += len(lat)
                median = sorted(lat)[len(lat) // 2] if lat else 0.0
                if served >= at_least and not slow_store and median >= 0.85 * previous:
                    break
                previous = median
        finally:
            self._warming = False
            self.observers = observers + self.observers
            self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)
            self.last_good = TTLCache(self.cfg.result_cache_size, self.cfg.stale_ttl_s)
        self.stats["warm_up_requests"] = served
        self.stats["warm_up_ms"] = (time.monotonic() - t0) * 1000
        return served

    async def _every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception as exc:  # noqa: BLE001 - a background refresh must never die
                log.warning("background refresh %s failed: %s", fn.__name__, exc)

    async def _replay_task(self) -> None:
        await self.replay_journal()

    async def refresh_catalog(self, full: bool = False) -> None:
        """Refresh the in-memory catalogue and popular lists (the degraded-mode fallback): the
        items changed since the last refresh, or every item once ``catalog_full_refresh_s`` has
        passed since the last full read (and at start). After a full read the listeners run (the
        API freezes the new catalogue out of the garbage collector's view)."""
        now = time.time()
        full = full or not self.catalog.loaded or now - self.catalog.full_at >= self.cfg.catalog_full_refresh_s
        popular_due = full or now - self.catalog.popular_at >= self.cfg.popular_refresh_s
        self.catalog = await self._neo4j(load_catalog(
            self.store, DEFAULT_TYPE_WEIGHTS, self.cfg.popular_window_days * 86400.0,
            self.cfg.popular_half_life_days * 86400.0, previous=self.catalog, full=full,
            refresh_popular=popular_due, shared=self.shared_popular,
            popular_page_items=self.cfg.popular_page_items, popular_duty=self.cfg.popular_scan_duty,
            max_clock_skew_s=self.settings.loader.max_clock_skew_s))
        if full:
            for listener in self.catalog_listeners:
                listener()

    async def refresh_model(self) -> None:
        """Swap in the live GNN version (and the ranker) when the registry says it changed."""
        rows = await self._neo4j(self.store.read("registry/live", kind="gnn"))
        if not rows:
            return
        m = rows[0]["m"]
        if self.model is None or self.model.version != m["id"]:
            model = await asyncio.to_thread(LiveModel.load, m["id"], m["artifact_dir"], m.get("collection"))
            await self._warm_vectors(model)
            self.model = model
            self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)
        rrows = await self._neo4j(self.store.read("registry/live", kind="ranker"))
        if rrows and (self.ranker is None or self.ranker.version != rrows[0]["m"]["id"]):
            from graphrec.engine.ranker import LoadedRanker

            r = rrows[0]["m"]
            self.ranker = await asyncio.to_thread(LoadedRanker.load, r["id"], r["artifact_dir"], bool(r.get("enabled", False)),
                                                  r.get("gnn_version"))
            self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)
        self._update_ranker_status()

    def _ranker_usable(self) -> bool:
        """The ranker is used only when it is enabled and was trained on the live GNN version (its
        features, embedding similarities among them, come from that GNN's embeddings)."""
        r = self.ranker
        return bool(r is not None and r.enabled and self.model is not None and r.gnn_version == self.model.version)

    def _update_ranker_status(self) -> None:
        r, m = self.ranker, self.model
        if r is None:
            status = "no ranker"
        elif not r.enabled:
            status = f"ranker {r.version} disabled: it did not beat the pipeline served without it offline"
        elif m is None or r.gnn_version != m.version:
            status = (f"ranker {r.version} not used: trained on GNN {r.gnn_version}, the live GNN is "
                      f"{m.version if m else 'none'}; ranking by fusion + MMR until it is retrained")
        else:
            status = f"ranker {r.version} in use (trained on GNN {r.gnn_version})"
        if status != self.ranker_status:
            (log.warning if "not used" in status else log.info)("%s", status)
        self.ranker_status = status

    def _collection(self, model: LiveModel) -> str:
        return model.collection or self.settings.qdrant.alias

    async def _warm_vectors(self, model: LiveModel, index: Any | None = None) -> None:
        """Open the model's collection in ``index`` (default: the open one) and search it once,
        off the event loop, before the model (or a reopened index) serves: searches run inline,
        and the first one on an unopened Edge shard maps it (3.4 s at 1M points), which would
        stall every request of the process. A collection that is gone (pruned) makes the model
        search through the alias instead."""
        index = index if index is not None else self.vectors
        if index is None:
            return
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(index.warm, self._collection(model))
        except CollectionNotFound:
            if model.collection is None:
                return
            log.warning("collection %s of model %s is gone; searching through the alias", model.collection, model.version)
            model.collection = None
            with contextlib.suppress(VectorStoreError):
                await asyncio.to_thread(index.warm, self._collection(model))
        except VectorStoreError as exc:
            log.warning("could not warm the vector index: %s", exc)
            return
        self.stats["vectors_warm_ms"] = (time.perf_counter() - t0) * 1000

    # ---- guarded store calls ---------------------------------------------------------------
    async def _neo4j(self, aw: Awaitable[T], timeout: float | None = None) -> T:
        """Call Neo4j through its breaker. A call that outlives ``timeout`` is abandoned, not
        cancelled: it finishes in the background (cancelling would kill its pooled connection)."""
        if not self.neo4j_breaker.allow():
            _close(aw)
            raise GraphStoreUnavailable("neo4j circuit open")
        task = asyncio.ensure_future(aw)
        if timeout is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.add_done_callback(self._settle_late)
                raise TimeoutError
        try:
            res = await task
        except (GraphStoreUnavailable, OSError):
            self.neo4j_breaker.failure()
            raise
        except QueryError:
            self.neo4j_breaker.success()  # Neo4j answered: it refused the query, it is not down
            raise
        except BaseException:
            self.neo4j_breaker.release()  # no verdict on Neo4j (cancelled, or not its error)
            raise
        self.neo4j_breaker.success()
        return res

    def _settle_late(self, task: asyncio.Future[Any]) -> None:
        """A late call finished: feed its outcome to the breaker and swallow its result."""
        if task.cancelled():
            self.neo4j_breaker.release()
            return
        exc = task.exception()
        if isinstance(exc, GraphStoreUnavailable | OSError):
            self.neo4j_breaker.failure()
        elif exc is None or isinstance(exc, QueryError):
            self.neo4j_breaker.success()
        else:
            self.neo4j_breaker.release()

    async def _vectors(self, fn: Callable[[Any], T], timeout: float) -> T:
        """``fn(index)`` on a worker thread, through the vector breaker."""
        if self.vectors is None and self.open_vectors is None:
            raise VectorStoreError("no vector index")
        if not self.vector_breaker.allow():
            raise VectorStoreError("vector index circuit open")
        if self.vectors is None:
            # It could not be opened at start: this request is the probe that tries again, in the
            # background (opening a server connection can outlast a request's budget).
            if self._opening is None or self._opening.done():
                self._opening = asyncio.create_task(self._reopen_vectors())
            else:
                self.vector_breaker.release()  # a probe is already on its way
            raise VectorStoreUnavailable("the vector index is not open yet")
        try:
            if getattr(self.vectors, "inline", False):
                # An in-process engine's search is CPU work of a millisecond or two: run it here.
                # On a worker thread it paid the GIL hand-over twice, and so did the event loop's
                # own socket calls meanwhile (up to the 5 ms switch interval each): at 1M items
                # the ANN source took 6.3 ms (median) for a 1.4 ms search, every Neo4j send 1 ms.
                res = fn(self.vectors)
            else:
                res = await asyncio.wait_for(asyncio.to_thread(fn, self.vectors), timeout)
        except (TimeoutError, VectorStoreError, OSError):
            self.vector_breaker.failure()
            raise
        self.vector_breaker.success()
        return res

    async def _reopen_vectors(self) -> None:
        assert self.open_vectors is not None
        try:
            index = await asyncio.to_thread(self.open_vectors)
        except Exception as exc:  # noqa: BLE001 - any failure to open is "still unavailable"
            log.info("vector index still unavailable: %s", exc)
            self.vector_breaker.failure()
            return
        if self.model is not None:
            await self._warm_vectors(self.model, index)
        log.warning("vector index opened")
        self.vectors = index
        self.vector_breaker.success()

    # ---- the pipeline ----------------------------------------------------------------------
    def _now(self, ctx: RequestContext) -> float:
        return ctx.now or self.catalog.now or time.time()

    async def _user_state(self, user_id: str | None, degraded: list[str]) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
        if not user_id:
            return [], {}
        try:
            rows = await self._neo4j(self.store.read("repo/user_state", plain=True, user_id=user_id, recent=self.cfg.history,
                                                     max_consumed=5000), self.cfg.request_budget_ms / 1000)
        except (TimeoutError, GraphStoreError):
            degraded.append("neo4j")
            # The state this process read last (and what it recorded since): what the user
            # consumed is still excluded. Without it the answer says so ("consumed_unknown").
            if (known := self.user_states.get(user_id)) is not None:
                recent, consumed = marshal.loads(known)
                return list(recent), {i: set(t) for i, t in consumed.items()}
            degraded.append("consumed_unknown")
            return [], {}
        if not rows:
            self.user_states.discard(user_id)
            return [], {}
        consumed = {c["item_id"]: set(c["types"]) for c in rows[0]["consumed"]}
        recent = list(rows[0]["recent"])
        self._keep_user_state(user_id, recent, consumed)
        return recent, consumed

    def _keep_user_state(self, user_id: str, recent: list[dict[str, Any]], consumed: dict[str, set[str]]) -> None:
        if self.cfg.user_state_cache_size <= 0:
            return
        try:
            packed = marshal.dumps(([dict(h) for h in recent], {i: sorted(t) for i, t in consumed.items()}))
        except ValueError:  # a property of a type marshal does not know: not kept
            return
        if len(packed) <= USER_STATE_MAX_BYTES:  # the heaviest users are not kept: memory stays bounded
            self.user_states.put(user_id, packed)
        else:
            self.user_states.discard(user_id)

    def _note_recorded(self, row: InteractionRow) -> None:
        """An interaction this process recorded joins the user's kept state (if any), so that a
        degraded answer right after it excludes the item too."""
        if (known := self.user_states.peek(row.user_id)) is None:
            return
        recent, consumed = marshal.loads(known)
        consumed.setdefault(row.item_id, [])
        if row.type.value not in consumed[row.item_id]:
            consumed[row.item_id].append(row.type.value)
        recent = [{"item_id": row.item_id, "type": row.type.value, "ts": row.ts, "value": row.value}, *recent][: self.cfg.history]
        self._keep_user_state(row.user_id, recent, {i: set(t) for i, t in consumed.items()})

    def _seeds(self, recent: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        return seeds_from_history(recent, now, self.cfg.half_life_days * 86400.0, self.cfg.seeds)

    async def _ann(self, vec: np.ndarray | None, limit: int, f: RecFilter, degraded: list[str], exclude: set[str]) -> list[Candidate]:
        if vec is None or self.model is None:
            return []
        budget = self.cfg.source_budget_ms / 1000
        if self.vectors is not None or self.open_vectors is not None:
            try:
                from graphrec.vectors.base import VectorFilter

                vf = VectorFilter(categories_any=list(f.categories) or None, exclude_categories=list(f.exclude_categories) or None,
                                  exclude_ids=list(f.exclude_item_ids), available_only=f.available_only,
                                  year_min=f.year_min, year_max=f.year_max)
                coll = self._collection(self.model)
                hits = await self._vectors(lambda index: index.search(coll, vec, limit + len(exclude), vf), budget)
                return [Candidate(h.id, float(h.score), "ann") for h in hits if h.id not in exclude][:limit]
            except (TimeoutError, VectorStoreError) as exc:
                log.info("vector index unavailable: %s", exc)
                degraded.append("vectors")
        # No index (or it failed): exact search over the live model's vectors in memory, off the
        # event loop. Above exact_fallback_max_items a scan costs tens of ms of CPU per request
        # (1M x 64: ~30 ms) and, when the index failed under load, would turn a slow index into a
        # saturated API: the source is skipped instead (the answer says "vectors").
        if len(self.model.item_ids) > self.cfg.exact_fallback_max_items:
            if "vectors" not in degraded:
                degraded.append("vectors")
            return []
        found = await asyncio.to_thread(self.model.nearest, vec, limit, exclude)
        return [Candidate(i, s, "ann") for i, s in found]

    async def _run_sources(self, names: dict[str, float], ctx: SourceContext, ann: Callable[[], Awaitable[list[Candidate]]],
                           timings: dict[str, float], degraded: list[str]) -> dict[str, list[Candidate]]:
        limit = self.cfg.candidates_per_source
        budget = self.cfg.source_budget_ms / 1000
        if self.neo4j_breaker.state == "closed":
            # The neighbour lists the weighted sources will ask for go out first (one read), so
            # the round trip overlaps the inline ANN search rather than waiting behind it.
            ids = [str(s["id"]) for s in ctx.params.get("seeds", [])] if (
                names.get("co_interaction", 0) > 0 or names.get("content", 0) > 0) else []
            if names.get("session", 0) > 0:
                ids += session_seeds(ctx)
            if ids:
                ctx.params["neighbours"].start(ctx.store, ids, budget)

        async def one(name: str) -> tuple[str, list[Candidate]]:
            t0 = time.perf_counter()
            try:
                if name == "ann":
                    res = await asyncio.wait_for(ann(), budget * 1.5)
                else:
                    fn = SOURCES[name]
                    needs_neo4j = name not in ("popular", "fresh")
                    res = await (self._neo4j(fn(ctx, limit), budget) if needs_neo4j else fn(ctx, limit))
            except (TimeoutError, GraphStoreError) as exc:
                if isinstance(exc, GraphStoreError):
                    degraded.append("neo4j")
                self.stats[f"late_or_failed.{name}"] = self.stats.get(f"late_or_failed.{name}", 0) + 1
                res = []
            timings[f"source.{name}"] = (time.perf_counter() - t0) * 1000
            self.stats[f"candidates.{name}"] = self.stats.get(f"candidates.{name}", 0) + len(res)
            return name, res

        pairs = await asyncio.gather(*(one(n) for n, w in names.items() if w > 0 and (n == "ann" or n in SOURCES)))
        return dict(pairs)

    def _merge(self, by_source: dict[str, list[Candidate]], weights: dict[str, float]) -> dict[str, rules.Scored]:
        return merge_candidates(by_source, weights)

    def _rank(self, cands: list[rules.Scored], vec: np.ndarray | None, session_vec: np.ndarray | None,
              recent: list[dict[str, Any]], now: float) -> None:
        """Learned ranker when live and enabled, else fusion score + embedding similarity (in place)."""
        if not cands:
            return
        sims = self.model.scores(vec, [c.item_id for c in cands]) if (vec is not None and self.model) else None
        if self._ranker_usable():
            assert self.ranker is not None
            cats = [self.catalog.items[h["item_id"]].categories for h in recent if h["item_id"] in self.catalog.items]
            feats = self.ranker.features(cands, vec, session_vec, self.model, self.catalog, cats, now)
            for c, s in zip(cands, self.ranker.score(feats), strict=True):
                c.score = float(s)
            return
        if sims is not None:
            for c, s in zip(cands, sims.tolist(), strict=True):
                c.score += max(0.0, s)

    async def recommend(self, req: RecRequest) -> RecResult:
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        degraded: list[str] = []
        now = self._now(req.context)
        first = max(1, min(int(req.first), 100))

        t0 = time.perf_counter()
        recent, consumed = await self._user_state(req.user_id, degraded)
        timings["user_state"] = (time.perf_counter() - t0) * 1000
        cache_key = _key(req.user_id, req.surface.value, first, req.filter, req.context.session_item_ids,
                         req.context.preferred_categories, recent[0]["ts"] if recent else None, len(consumed),
                         self.model.version if self.model else None)
        if not degraded and req.user_id and (hit := self._lookup("recommendations", cache_key)) is not None:
            return _cached(hit, timings)
        # Without the user's history (Neo4j unavailable) the answer would be the popular list:
        # this user's last complete answer to the same request is better, if there is one.
        shape = _key(req.user_id, req.surface.value, first, req.filter, req.context.session_item_ids,
                     req.context.preferred_categories)
        excluded = self._excluded(req, consumed)
        if "neo4j" in degraded and req.user_id and (stale := self._stale(shape, degraded, timings, "recommendations",
                                                                         excluded)) is not None:
            if len(stale.items) < first:  # items consumed since were left out: the popular list fills in
                have = excluded | {r.item_id for r in stale.items}
                extra = self._popular_fallback(first - len(stale.items), req.filter, have)
                n = len(stale.items)
                stale.items.extend([self._recommendation(c, n + k, recent, req) for k, c in enumerate(extra, 1)])
            return stale

        clock, now = now, (now if req.context.now else decay_now(recent, now))  # see merge.decay_now
        vec = self.model.user_vector(recent, now) if (self.model and recent) else None
        if vec is None and self.model and req.context.preferred_categories:
            vec = self._category_vector(req.context.preferred_categories)
        session_vec = None
        if self.model and req.context.session_item_ids:
            session_vec = self.model.user_vector(
                [{"item_id": i, "type": "CLICKED", "ts": now, "value": None} for i in req.context.session_item_ids], now)
        seeds = self._seeds(recent, now)
        weights = dict(self.cfg.sources.get(req.surface.value, self.cfg.sources["HOME_FEED"]))
        if not recent:  # cold start: popular (narrowed by stated preferences), fresh, content of nothing
            weights["popular"] = max(weights.get("popular", 0.0), 1.0)
            weights["fresh"] = max(weights.get("fresh", 0.0), 0.2)
        exclude_consumed = req.surface.value in self.cfg.exclude_consumed
        hard_excluded = excluded
        ctx = SourceContext(store=self.store, user_id=req.user_id, session_items=list(req.context.session_item_ids),
                            now=clock, half_life_s=self.cfg.half_life_days * 86400.0, type_weights=DEFAULT_TYPE_WEIGHTS,
                            timeout_s=self.cfg.source_budget_ms / 1000,
                            params={"seeds": seeds, "catalog": self.catalog, "neighbours": self.neighbours, "decay_now": now,
                                    "preferred_categories": req.context.preferred_categories,
                                    "fresh_window_s": self.cfg.fresh_window_days * 86400.0})
        by_source = await self._run_sources(
            weights, ctx, lambda: self._ann(vec, self.cfg.candidates_per_source, req.filter, degraded, hard_excluded),
            timings, degraded)
        t0 = time.perf_counter()
        merged = self._merge(by_source, weights)
        cands = [c for c in merged.values() if rules.passes_filter(self.catalog.items.get(c.item_id), req.filter)]
        cands = rules.apply_consumed(cands, consumed, exclude_consumed)
        timings["merge"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        self._rank(cands, vec, session_vec, recent, clock)
        rules.apply_promotions(cands, self.cfg.promotions)
        timings["rank"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        chosen = self._finish(cands, first, req, consumed, hard_excluded)
        timings["rules"] = (time.perf_counter() - t0) * 1000
        if not chosen:  # nothing survived: the in-memory popular list, filtered
            chosen = self._popular_fallback(first, req.filter, hard_excluded)
            if not self.catalog.loaded:
                degraded.append("catalog")
        items = [self._recommendation(c, k + 1, recent, req) for k, c in enumerate(chosen)]
        timings["total"] = (time.perf_counter() - t_start) * 1000
        reasons = tuple(sorted(set(degraded)))
        res = RecResult(items, bool(reasons), self.model.version if self.model else None, uuid.uuid4().hex, reasons, timings)
        if not reasons and req.user_id:
            entry = _cache_entry(res)
            self.results.put(cache_key, entry)
            self.last_good.put(shape, entry)
        return self._answer("recommendations", res)

    def _lookup(self, op: str, key: str) -> tuple[str, str | None] | None:
        """A result-cache lookup, counted as a hit or a miss of ``op`` (``cache_counts``, the observers)."""
        hit = self.results.get(key)
        k = f"{op}.{'hit' if hit is not None else 'miss'}"
        self.cache_counts[k] = self.cache_counts.get(k, 0) + 1
        for observe in self.cache_observers:
            observe(op, hit is not None)
        return hit

    def _excluded(self, req: RecRequest, consumed: dict[str, set[str]]) -> set[str]:
        """The items this request must not recommend: what the user clicked, bought or rated, on
        the surfaces that exclude consumed items."""
        if req.surface.value not in self.cfg.exclude_consumed:
            return set()
        return {i for i, t in consumed.items() if t & rules.EXCLUDING_TYPES}

    def _count_answer(self, res: RecResult) -> None:
        if self._warming:  # the start-up's own requests are not what clients saw
            return
        period = int(time.monotonic() // 10)
        if self.answer_counts[-1][0] != period:
            self.answer_counts = [self.answer_counts[-1], [period, 0, 0]]
        self.answer_counts[-1][1] += 1
        self.answer_counts[-1][2] += "neo4j" in res.degraded_reasons

    def _answer(self, op: str, res: RecResult) -> RecResult:
        """Every computed answer leaves through here: to the observers, then the slow log."""
        self._count_answer(res)
        for observe in self.observers:
            observe(op, res)
        return self._log_slow(op, res)

    def _log_slow(self, op: str, res: RecResult) -> RecResult:
        """Log an answer slower than ``slow_log_ms`` with its per-stage timings (the on-call
        operator's first question: which source or store made it slow)."""
        total = res.timings_ms.get("total", 0.0)
        if self.cfg.slow_log_ms and total >= self.cfg.slow_log_ms and not self._warming:
            log.warning("slow %s %.0f ms request=%s degraded=%s timings=%s", op, total, res.request_id,
                        ",".join(res.degraded_reasons) or "-",
                        " ".join(f"{k}={v:.1f}" for k, v in res.timings_ms.items() if k != "total"))
        return res

    def _finish(self, cands: list[rules.Scored], first: int, req: RecRequest, consumed: dict[str, set[str]],
                excluded: set[str]) -> list[rules.Scored]:
        def cats(i: str) -> tuple[str, ...]:
            it = self.catalog.items.get(i)
            return it.categories if it else ()

        model = self.model
        emb = model.vector_of if model else None
        chosen = rules.diversify(cands, first, self.cfg.mmr_lambda, self.cfg.max_per_category, cats, emb)
        if req.context.explore and self.cfg.explore_epsilon > 0 and req.surface is Surface.HOME_FEED:
            pool = [i for i, _ in self.catalog.popular[:200]
                    if i not in consumed and i not in excluded and rules.passes_filter(self.catalog.items.get(i), req.filter)]
            day = int(self._now(req.context) // 86400)
            seed = int(hashlib.blake2b(f"{self.settings.seed}:{req.user_id}:{day}".encode(), digest_size=8).hexdigest(), 16)
            chosen = rules.explore(chosen, pool, self.cfg.explore_epsilon, seed)
        return chosen

    def _popular_fallback(self, first: int, f: RecFilter, excluded: set[str]) -> list[rules.Scored]:
        out: list[rules.Scored] = []
        for i, s in self.catalog.popular:
            if i not in excluded and rules.passes_filter(self.catalog.items.get(i), f):
                out.append(rules.Scored(i, s, {"popular": (s, len(out))}))
                if len(out) >= first:
                    break
        return out

    def _category_vector(self, categories: tuple[str, ...]) -> np.ndarray | None:
        assert self.model is not None
        vecs = [v for c in categories for i, _ in self.catalog.popular_by_category.get(c, [])[:20]
                if (v := self.model.vector_of(i)) is not None]
        if not vecs:
            return None
        m = np.mean(vecs, axis=0)
        n = float(np.linalg.norm(m))
        return m / n if n > 0 else None

    def _title(self, item_id: str) -> str:
        it = self.catalog.items.get(item_id)
        return it.title if it and it.title else item_id

    def _recommendation(self, c: rules.Scored, rank: int, recent: list[dict[str, Any]], req: RecRequest) -> Recommendation:
        srcs = tuple(sorted(c.sources, key=lambda s: -c.sources[s][0] if s != "explore" else 0))
        reason, query = self._reason(c, recent, req)
        return Recommendation(c.item_id, round(float(c.score), 6), rank, srcs, reason, query)

    def _reason(self, c: rules.Scored, recent: list[dict[str, Any]], req: RecRequest) -> tuple[str | None, str | None]:
        src = c.sources
        verbs = {h["item_id"]: VERB.get(h["type"], "liked") for h in recent}
        if "explore" in src:
            return "something different, to widen your feed", None
        if "session" in src and c.because:
            return f"because you viewed {self._title(c.because[0])} just now", None
        if "co_interaction" in src and c.because:
            b = c.because[0]
            q = (f":param user_id => '{_q(req.user_id or '')}'; :param item_id => '{_q(c.item_id)}'; "
                 "// then run cypher/explore/co_interaction_path.cypher")
            if req.surface is Surface.SIMILAR_ITEMS:
                return f"people who liked {self._title(b)} also liked this", None
            return f"because you {verbs.get(b, 'liked')} {self._title(b)}", q
        if "content" in src and c.because:
            return f"similar to {self._title(c.because[0])}", None
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

    # ---- other surfaces --------------------------------------------------------------------
    async def similar_items(self, item_id: str, first: int = 20, filter: RecFilter | None = None) -> RecResult:
        t_start = time.perf_counter()
        f = filter or RecFilter()
        # Excluded ids sorted: the filter is part of the result cache's key.
        f = RecFilter(f.categories, f.exclude_categories, tuple(sorted(set(f.exclude_item_ids) | {item_id})), f.available_only,
                      f.year_min, f.year_max)
        degraded: list[str] = []
        if item_id not in self.catalog.items:
            try:
                found = (await self._neo4j(self.store.read("repo/item_exists", item_id=item_id)))[0]["found"]
            except GraphStoreError:
                found, degraded = False, ["neo4j"]
                if not self.catalog.loaded:
                    raise
            if not found and not degraded:
                raise NotFound("item", item_id)
        first = max(1, min(int(first), 100))
        # The same answer for every user: a widget on a popular item's page is answered from the
        # result cache (a model change starts a new cache; item changes show within its TTL).
        cache_key = _key("similar", item_id, first, f, self.model.version if self.model else None)
        if (hit := self._lookup("similarItems", cache_key)) is not None:  # a complete answer, recent enough
            return _cached(hit, {})
        if degraded and (stale := self._stale(cache_key, degraded, {}, "similarItems")) is not None:
            return stale
        weights = dict(self.cfg.sources.get("SIMILAR_ITEMS", {}))
        vec = self.model.vector_of(item_id) if self.model else None
        ctx = SourceContext(store=self.store, timeout_s=self.cfg.source_budget_ms / 1000, now=self.catalog.now,
                            params={"seeds": [{"id": item_id, "w": 1.0}], "catalog": self.catalog,
                                    "neighbours": self.neighbours})
        timings: dict[str, float] = {}
        by_source = await self._run_sources(weights, ctx, lambda: self._ann(vec, self.cfg.candidates_per_source, f, degraded, {item_id}),
                                            timings, degraded)
        if not any(by_source.values()):
            if vec is None:  # a cold item: no vector, no neighbours yet — its content, live from the graph
                live = await self._run_sources({"item_content_live": 1.0}, ctx, _no_candidates, timings, degraded)
                by_source, weights = {"content": live.get("item_content_live", [])}, {"content": 1.0}
            else:
                # It has a vector, but the index was late or failed and it has no neighbour lists:
                # the most popular items of its categories, from memory. (Walking its content in
                # the graph instead costs Neo4j the most exactly when the index is late, under
                # load: at 1M items that turned a slow index into a melt-down.)
                known = self.catalog.items.get(item_id)
                ctx.params["preferred_categories"] = tuple(known.categories) if known else ()
                by_source = {"popular": await SOURCES["popular"](ctx, self.cfg.candidates_per_source)}
                weights = {"popular": 1.0}
        merged = self._merge(by_source, weights)
        cands = [c for c in merged.values() if c.item_id != item_id and rules.passes_filter(self.catalog.items.get(c.item_id), f)]
        self._rank(cands, vec, None, [], self.catalog.now)
        cats = lambda i: self.catalog.items[i].categories if i in self.catalog.items else ()  # noqa: E731
        chosen = rules.diversify(cands, first, max(self.cfg.mmr_lambda, 0.95), 0, cats, None)
        req = RecRequest(None, Surface.SIMILAR_ITEMS, first, f)
        items = [self._recommendation(c, k + 1, [], req) for k, c in enumerate(chosen)]
        timings["total"] = (time.perf_counter() - t_start) * 1000
        reasons = tuple(sorted(set(degraded)))
        res = RecResult(items, bool(reasons), self.model.version if self.model else None, uuid.uuid4().hex, reasons, timings)
        if not reasons:
            entry = _cache_entry(res)
            self.results.put(cache_key, entry)
            self.last_good.put(cache_key, entry)
        elif "neo4j" in reasons and (stale := self._stale(cache_key, list(reasons), timings, "similarItems")) is not None:
            return stale
        return self._answer("similarItems", res)

    def _stale(self, key: Any, degraded: list[str], timings: dict[str, float], op: str,
               excluded: set[str] | frozenset[str] = frozenset()) -> RecResult | None:
        """The last complete answer to this request (up to ``stale_ttl_s`` old), marked degraded
        with "stale" among the reasons, or None. Items in ``excluded`` (consumed since) are left
        out. It goes to the observers as ``op``'s answer."""
        if self.cfg.stale_ttl_s <= 0 or (hit := self.last_good.get(key)) is None:
            return None
        cached = _cached(hit, {})
        kept = [r for r in cached.items if r.item_id not in excluded]
        items = [r if r.rank == k else Recommendation(r.item_id, r.score, k, r.sources, r.reason, r.explain_query)
                 for k, r in enumerate(kept, 1)]
        res = RecResult(items, True, cached.model_version, cached.request_id,
                        tuple(sorted({*degraded, "stale"})), dict(timings))
        self._count_answer(res)
        for observer in self.observers:  # the stages that ran and the reasons
            observer(op, res)
        res.timings_ms["stale_hit"] = 1.0
        return res

    async def rerank(self, user_id: str, item_ids: list[str], first: int | None = None) -> RecResult:
        """Reorder a given list (search results) for a user; every given id that is an item comes
        back once. Ids that are not items are left out and listed in ``unknown_ids`` (a frontend
        renders what comes back; it never gets an item without a title). While Neo4j cannot say
        whether an id the catalogue does not know is an item, it is kept (and the answer is
        degraded)."""
        t_start = time.perf_counter()
        degraded: list[str] = []
        ids = list(dict.fromkeys(item_ids))
        unknown = [i for i in ids if i not in self.catalog.items]
        missing: set[str] = set()
        if unknown:
            try:
                missing = set((await self._neo4j(self.store.read("load/missing_items", ids=unknown),
                                                 self.cfg.request_budget_ms / 1000))[0]["missing"])
            except (TimeoutError, GraphStoreError):
                degraded.append("neo4j")
            ids = [i for i in ids if i not in missing]
        recent, consumed = await self._user_state(user_id, degraded)
        clock = self._now(RequestContext())
        now = decay_now(recent, clock)
        vec = self.model.user_vector(recent, now) if (self.model and recent) else None
        weights = dict(self.cfg.sources.get("SEARCH_RERANK", {}))
        weights.pop("ann", None)
        weights.pop("fresh", None)
        ctx = SourceContext(store=self.store, user_id=user_id, now=clock, timeout_s=self.cfg.source_budget_ms / 1000,
                            type_weights=DEFAULT_TYPE_WEIGHTS,
                            params={"seeds": self._seeds(recent, now), "catalog": self.catalog,
                                    "neighbours": self.neighbours, "decay_now": now})
        timings: dict[str, float] = {}
        by_source = await self._run_sources(weights, ctx, _no_candidates, timings, degraded)
        merged = self._merge(by_source, weights)
        wanted = set(ids)
        cands = [merged.get(i) or rules.Scored(i, 0.0, {}) for i in ids]
        for c in cands:
            c.sources = {k: v for k, v in c.sources.items()}
        self._rank(cands, vec, None, recent, clock)
        rules.apply_consumed(cands, consumed, exclude=False)
        # Stable: ties keep the caller's order.
        order = {i: k for k, i in enumerate(ids)}
        cands.sort(key=lambda c: (-c.score, order[c.item_id]))
        n = len(cands) if first is None else max(0, min(int(first), len(cands)))
        req = RecRequest(user_id, Surface.SEARCH_RERANK, n)
        items = [self._recommendation(c, k + 1, recent, req) for k, c in enumerate(cands[:n]) if c.item_id in wanted]
        timings["total"] = (time.perf_counter() - t_start) * 1000
        reasons = tuple(sorted(set(degraded)))
        return self._answer("rerank", RecResult(items, bool(reasons), self.model.version if self.model else None, uuid.uuid4().hex,
                                                  reasons, timings, tuple(i for i in dict.fromkeys(item_ids) if i in missing)))

    async def batch(self, user_ids: list[str], first: int = 20, surface: Surface = Surface.EMAIL,
                    concurrency: int = 8) -> dict[str, RecResult]:
        """Recommendations for many users (email campaigns), ``concurrency`` at a time."""
        sem = asyncio.Semaphore(concurrency)

        async def one(u: str) -> tuple[str, RecResult]:
            async with sem:
                return u, await self.recommend(RecRequest(u, surface, first, context=RequestContext(explore=False)))

        return dict(await asyncio.gather(*(one(u) for u in dict.fromkeys(user_ids))))

    async def popular(self, first: int = 20, category: str | None = None) -> list[str]:
        first = max(1, min(int(first), 100))
        src = self.catalog.popular_by_category.get(category, []) if category else self.catalog.popular
        return [i for i, _ in src[:first]]

    # ---- the record ------------------------------------------------------------------------
    async def record_interaction(self, data: dict[str, Any]) -> RecordResult:
        """Write one interaction at once (idempotent on its key), or, when Neo4j is unavailable or
        too slow, to the fsync'd journal that is replayed when it returns. Both paths validate the
        same way (``loader`` limits: no future times, bounded values) and give a key the same
        meaning: one interaction; reused for another user, item or type it is a
        :class:`KeyConflict`. Unknown item: NotFound (an item upserted through this process is
        known at once; one the catalogue does not know yet is looked up in the graph, with four
        times the budget, before NotFound)."""
        row: InteractionRow = validate(InteractionRow, data, self.limits)
        param = row.to_param()
        key = row.idempotency_key
        ident = (row.user_id, row.item_id, row.type.value)
        if self.recent_keys.get(key, ident) != ident:
            raise KeyConflict(key)
        budget = self.cfg.request_budget_ms / 1000
        try:
            self._check_refs(await self._neo4j(self.store.read("load/interaction_refs", plain=True, ids=[row.item_id],
                                                               keys=[key]), budget), row, ident)
            statements = interaction_statements(row.type, param, row.session_id, row.user_id, row.ts,
                                                self.cfg.clock_slack_s)
            try:
                counters = await self._neo4j(self.store.write_many(statements), budget * 4)
            except QueryError as exc:
                if "constraint" not in str(exc):
                    raise
                # The key constraint: another request stored this key, for another user or item,
                # between the check and this write.
                raise KeyConflict(key) from None
            created = counters[0]["relationships_created"] > 0
            stored = "direct"
        except (TimeoutError, GraphStoreUnavailable, QueryError) as exc:
            if isinstance(exc, QueryError) and refused_for_good(exc):
                raise
            # Neo4j is away (or too slow to trust, or it timed the transaction out): journal it. A
            # write that timed out may still land; the replay is idempotent on the key, so it will
            # not double-count.
            if self.catalog.loaded and row.item_id not in self.catalog.items:
                # Not in this process's catalogue (it may be newer than its last refresh): ask the
                # graph once more, with more time, before saying it does not exist.
                try:
                    self._check_refs(await self._neo4j(self.store.read(
                        "load/interaction_refs", plain=True, ids=[row.item_id], keys=[key]), budget * 4), row, ident)
                except (TimeoutError, GraphStoreUnavailable, QueryError):
                    raise NotFound("item", row.item_id) from None
            created = await asyncio.to_thread(self.journal.append_checked, {**param, "type": row.type.value})
            if created:
                self.stats["journalled"] = self.stats.get("journalled", 0) + 1
            stored = "journal"
        self._remember_key(key, ident)
        self._note_recorded(row)
        return RecordResult(key=key, created=created, stored=stored)

    @staticmethod
    def _check_refs(rows: list[dict[str, Any]], row: InteractionRow, ident: tuple[str, str, str]) -> None:
        """``load/interaction_refs`` of one interaction: NotFound for an unknown item, KeyConflict
        for a key stored for another interaction."""
        refs = rows[0]
        if refs["missing"]:
            raise NotFound("item", row.item_id)
        if any((s["user"], s["item"], s["type"]) != ident for s in refs["stored"]):
            raise KeyConflict(row.idempotency_key)

    def _remember_key(self, key: str, ident: tuple[str, str, str], most: int = 100_000) -> None:
        self.recent_keys.pop(key, None)
        self.recent_keys[key] = ident
        if len(self.recent_keys) > most:
            del self.recent_keys[next(iter(self.recent_keys))]

    async def replay_journal(self) -> int:
        """Write journalled interactions to Neo4j (in order); returns how many were replayed
        (dead letters included). Only "Neo4j unavailable" counts against its breaker; a replay
        that could not run (another process holds the replay lock) gives back the probe."""
        pending = self.journal.pending()
        self._sample_journal(pending)
        if pending == 0 or not self.neo4j_breaker.allow():
            return 0
        from graphrec.graph.store import GraphStore

        def work() -> int:
            with GraphStore.from_settings(self.settings) as store:
                return self.journal.replay(lambda rows: write_rows_sync(store, rows, self.limits))

        dead_before = self.journal.dead_lettered()
        try:
            n = await asyncio.to_thread(work)
        except LockHeld:
            self.neo4j_breaker.release()
            return 0
        except GraphStoreUnavailable:
            self.neo4j_breaker.failure()
            return 0
        except Exception:
            self.neo4j_breaker.release()  # not Neo4j being away: never opens the breaker
            log.exception("journal replay failed")
            return 0
        self.neo4j_breaker.success()
        if (dead := self.journal.dead_lettered() - dead_before) > 0:
            log.warning("journal replay: %d entries dead-lettered (see %s)", dead, self.journal.dead_path)
        if n:
            self.results = TTLCache(self.cfg.result_cache_size, self.cfg.result_cache_ttl_s)
        return n

    def _sample_journal(self, pending: int, window_s: float = 60.0) -> None:
        now = time.monotonic()
        self.journal_samples.append((now, pending))
        while len(self.journal_samples) > 2 and now - self.journal_samples[1][0] >= window_s:
            self.journal_samples.pop(0)

    def readiness(self) -> dict[str, Any]:
        """What /readyz reports besides the stores' health: the breakers' states, the journal's
        backlog (bytes, and whether it grew over the last minute of samples), how many entries
        were dead-lettered, and the answers computed in the last 10-20 s with how many of them
        were degraded by Neo4j (slow or away: what clients saw)."""
        pending = self.journal.pending()
        oldest = self.journal_samples[0][1] if self.journal_samples else pending
        period = int(time.monotonic() // 10)
        recent = [c for c in self.answer_counts if c[0] >= period - 1]
        return {"breakers": {"neo4j": self.neo4j_breaker.state, "vectors": self.vector_breaker.state},
                "journal": {"pending_bytes": pending, "growing": pending > oldest,
                            "dead_lettered": self.journal.dead_lettered()},
                "answers": {"recent": sum(c[1] for c in recent), "degraded_by_neo4j": sum(c[2] for c in recent)}}

    async def get_items(self, ids: list[str]) -> dict[str, Item]:
        """Items by id, read through the item cache (a page of recommendations costs no round trip
        once its items were shown in the last ``item_cache_ttl_s``). While Neo4j is unavailable (or
        slower than four request budgets, at least 1 s):
        what the in-memory catalogue knows of them (no tags or description), so that a degraded
        list of recommendations still has its titles."""
        found: dict[str, Item] = {}
        missing = []
        for i in ids:
            if (packed := self.item_cache.get(i)) is not None:
                found[i] = Item._make(marshal.loads(packed))
            else:
                missing.append(i)
        if not missing:
            return found
        try:
            # Bounded: a Neo4j too slow to answer in time is treated as away (a page of answers
            # must not wait for the 30-s query timeout; seen with a starved Neo4j in the faults suite).
            rows = await self._neo4j(self.store.read("repo/get_items", plain=True, ids=missing),
                                     max(1.0, 4 * self.cfg.request_budget_ms / 1000))
        except (GraphStoreUnavailable, TimeoutError, QueryError) as exc:
            if isinstance(exc, QueryError) and refused_for_good(exc):
                raise
            if not self.catalog.loaded:
                raise GraphStoreUnavailable(f"item fields unavailable: {type(exc).__name__}") from exc
            return found | {i: _catalog_item(c) for i in missing if (c := self.catalog.items.get(i)) is not None}
        for r in rows:
            item = found[r["id"]] = Item.from_row(r)
            try:
                self.item_cache.put(item.id, marshal.dumps(tuple(item)))
            except ValueError:  # a property of a type marshal does not know (set by hand): served, not cached
                continue
        return found

    async def get_user(self, user_id: str) -> User | None:
        rows = await self._neo4j(self.store.read("repo/get_users", ids=[user_id]))
        if not rows:
            return None
        props = {k: v for k, v in rows[0]["props"].items() if k not in ("id", "created_at")}
        return User(rows[0]["id"], rows[0]["created_at"], props)

    async def user_history(self, user_id: str, limit: int = 10) -> list[Interaction]:
        rows = await self._neo4j(self.store.read("repo/user_history", user_id=user_id, limit=int(limit)))
        return [Interaction(r["item_id"], r["type"], r["ts"], r["value"], r["dwell"], r["session"]) for r in rows]

    async def upsert_item(self, data: dict[str, Any]) -> Item:
        row: ItemRow = validate(ItemRow, data)
        await self._neo4j(self.store.write_many([("load/items", None, {"rows": [row.to_param()], "now": time.time()})]))
        self.item_cache.discard(row.id)
        item = (await self.get_items([row.id]))[row.id]
        # Known to this process at once (recordInteraction, filters), not at the next catalogue refresh.
        self.catalog.items[item.id] = CatalogItem(item.id, item.title, item.year, item.available, item.created_at,
                                                  item.categories, item.interactions)
        return item

    async def upsert_user(self, data: dict[str, Any]) -> User:
        row: UserRow = validate(UserRow, data)
        await self._neo4j(self.store.write_many([("load/users", None, {"rows": [row.to_param()], "now": time.time()})]))
        user = await self.get_user(row.id)
        assert user is not None
        return user

    async def model_versions(self, first: int = 10) -> list[Any]:
        from graphrec.registry import ModelVersion

        rows = await self._neo4j(self.store.read("registry/list", kind="gnn", limit=max(1, min(int(first), 100))))
        return [ModelVersion.from_props(r["m"]) for r in rows]

    async def health(self) -> dict[str, bool]:
        neo = await self.store.ping()
        vec = self.open_vectors is None  # none configured (exact search in memory) or one that failed to open
        if self.vectors is not None:
            try:
                vec = bool(await asyncio.wait_for(asyncio.to_thread(self.vectors.healthy), 1.0))
            except Exception:  # noqa: BLE001 - health reports, never raises
                vec = False
        return {"neo4j": neo, "vectors": vec, "degraded": not (neo and vec), "model": self.model is not None}


async def _no_candidates() -> list[Candidate]:
    return []


def _key(*parts: Any) -> str:
    """A result-cache key: the ``repr`` of the request's parts (strings, numbers, None and tuples
    of them, e.g. a RecFilter), one string the cyclic collector never tracks (graphrec.engine.cache)."""
    return repr(parts)


def _catalog_item(c: Any) -> Item:
    return Item(id=c.id, title=c.title, year=c.year, available=c.available, categories=c.categories,
                created_at=c.created_at, interactions=c.interactions)


def _q(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def _cache_entry(res: RecResult) -> tuple[str, str | None]:
    """A result as the result cache keeps it: one JSON string, which CPython's collector never
    walks (at 1M items / 100k users the cache holds ~10k rarely hit results; as Recommendation
    objects, ~25 tracked objects each, every full collection walked them)."""
    rows = json.dumps([[r.item_id, r.score, r.rank, r.sources, r.reason, r.explain_query] for r in res.items])
    return rows, res.model_version


def _cached(hit: tuple[str, str | None], timings: dict[str, float]) -> RecResult:
    rows, model_version = hit
    items = [Recommendation(i, sc, rank, tuple(srcs), reason, query) for i, sc, rank, srcs, reason, query in json.loads(rows)]
    return RecResult(items, False, model_version, uuid.uuid4().hex, (), {"cache_hit": 1.0, **timings})


def _close(aw: Awaitable[Any]) -> None:
    close = getattr(aw, "close", None)
    if close:
        close()


def _open_vectors(settings: Settings) -> tuple[Any | None, Callable[[], Any] | None]:
    """The configured vector index, or (None, a way to open it later) when it cannot be opened
    now: the engine then searches the live model's vectors exactly, in memory, says so in
    ``health`` and in each answer's degraded reasons, and tries again as the breaker allows."""
    try:
        from graphrec.vectors.factory import open_vector_index
    except ImportError:
        return None, None
    try:
        return open_vector_index(settings), None
    except Exception as exc:  # noqa: BLE001
        log.warning("vector index unavailable at start: %s", exc)
        return None, lambda: open_vector_index(settings)
