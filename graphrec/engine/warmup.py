"""Start-up warm-up: pooled connections and query plans, the write path's commits, the most
recently active users' states (held in memory), then real requests until answers stop getting
faster (after a Neo4j restart its JIT compiles the read path only after some hundreds of
requests). Each part is bounded by ``engine.warm_up_s`` and never stops the start.

The connections and plans are warmed before the engine serves (a second or so). The commits and
the sample requests (up to ``warm_up_s`` each, the bulk of a start) run in the background once
the API answers (:meth:`Warmup.run`): clients are answered at once, by the same pipeline, while
``/readyz`` says ``warming`` (503, so a load balancer still waits for a warm process). Meanwhile
the request and source budgets are :data:`WARM_BUDGET_FACTOR` times wider: a Neo4j whose read
path is still cold (after a restart) answers in a few hundred ms, and with the usual budgets most
of the first answers were degraded to the popular list; with them they are complete, just slower. The
warm-up's own requests run with :data:`graphrec.engine.state.WARMING` set in their task only: they
are not counted, observed, slow-logged or cached, and clients' requests beside them are."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from graphrec.core.config import EngineSettings
from graphrec.core.errors import GraphrecError
from graphrec.core.records import InteractionType
from graphrec.core.recs.types import RecRequest, RecResult, RequestContext, Surface
from graphrec.engine.state import WARMING, Serving
from graphrec.engine.writes import interaction_statements

log = logging.getLogger("graphrec.engine")

#: While the warm-up runs, the request and source budgets are this many times wider.
WARM_BUDGET_FACTOR = 5.0


class Warmup:
    def __init__(self, s: Serving, recommend: Callable[[RecRequest], Awaitable[RecResult]],
                 preload: Callable[[int], Awaitable[int]]) -> None:
        self.s = s
        self.recommend = recommend  # the engine's own, looked up at each call
        self.preload = preload  # UserStates.preload

    async def connections(self) -> None:
        """Open pooled connections (``neo4j.warm_connections``) and let Neo4j plan the
        request-path queries once, so the first requests do not pay connection set-up and query
        planning."""
        s = self.s
        await s.store.fill_pool(s.settings.neo4j.warm_connections)
        await s.store.read("repo/user_state", user_ids=[""], recent=1, max_consumed=1, per_item=1)
        await s.store.read("repo/users_changed", since=None, limit=1)
        await s.store.read("recs/neighbour_lists", ids=[""], per_item=1)
        # The write path too (one query text per interaction type), in a transaction rolled back:
        # the first recordInteraction after a Neo4j start is much slower without this.
        await s.store.read("load/interaction_refs", plain=True, ids=[""], keys=[""])
        nobody = {"key": "", "user": "", "item": "", "ts": 0.0, "value": None, "dwell": None, "session": None}
        await s.store.rehearse([st for t in InteractionType
                                for st in interaction_statements(t, nobody, "", "", 0.0, s.cfg.clock_slack_s)])

    def start(self) -> asyncio.Task[None]:
        """:meth:`run` in a task of its own (the API serves meanwhile); ``warming`` and the wider
        budgets apply at once."""
        return asyncio.create_task(self.run(self._begin()))

    def _begin(self) -> tuple[EngineSettings, EngineSettings]:
        """``warming`` on, the budgets widened; returns (the usual settings, the wide ones)."""
        s = self.s
        s.warming = True
        usual = s.cfg
        s.cfg = usual.model_copy(update={"request_budget_ms": usual.request_budget_ms * WARM_BUDGET_FACTOR,
                                         "source_budget_ms": usual.source_budget_ms * WARM_BUDGET_FACTOR})
        return usual, s.cfg

    async def run(self, begun: tuple[EngineSettings, EngineSettings] | None = None) -> None:
        """The write path's commits, then the sample requests; ``warming`` while they run. A
        failure ends the warm-up, never the engine."""
        s = self.s
        usual, wide = begun or self._begin()
        token = WARMING.set(True)
        t0 = time.monotonic()
        try:
            with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
                await self.writes()
            with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
                await self.user_states()
            with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
                await self.requests()
        finally:
            WARMING.reset(token)
            if s.cfg is wide:  # (not replaced meanwhile)
                s.cfg = usual
            s.warming = False
            s.stats["warm_up_total_ms"] = (time.monotonic() - t0) * 1000
            log.info("warm-up done in %.1f s", time.monotonic() - t0)

    async def writes(self, round_size: int = 25) -> int:
        """Commit the write path's shape (``repo/warm_commit``: a node merged by its key, a
        relationship with an interaction's properties; on nodes of this warm-up's own, removed at
        the end) in rounds until a round's median commit is less than 15% faster than the one
        before (``engine.warm_up_commits`` to three times that, at most ``warm_up_s``); returns how
        many were committed. The rolled-back rehearsal plans the real statements, but after a
        Neo4j start the commit path itself is slow until it has run many times. Sequential, on
        one connection."""
        s, cfg = self.s, self.s.cfg
        at_least, most = cfg.warm_up_commits, 3 * cfg.warm_up_commits
        if cfg.warm_up_s <= 0 or at_least <= 0:
            return 0
        t0 = time.monotonic()
        key = f"warm-up:{s.shared_popular.holder}"
        done, previous, first, median = 0, float("inf"), None, 0.0
        try:
            while done < most and time.monotonic() - t0 < cfg.warm_up_s:
                lat = []
                for _ in range(round_size):
                    t = time.perf_counter()
                    await s.store.write("repo/warm_commit", key=key, ts=time.time(), round=done)
                    lat.append(time.perf_counter() - t)
                    done += 1
                median = sorted(lat)[len(lat) // 2]
                first = median if first is None else first
                if done >= at_least and median > 0.85 * previous:
                    break
                previous = min(previous, median)
        finally:
            await s.store.write("repo/warm_commit_done", key=key, stale_before=time.time() - 3600.0)
        s.stats["warm_up_commits"] = done
        s.stats["warm_up_commits_ms"] = (time.monotonic() - t0) * 1000
        log.info("write path warmed: %d commits in %.1f s, median commit %.1f ms in the first round, %.1f ms in the last",
                 done, time.monotonic() - t0, 1e3 * (first or 0.0), 1e3 * median if done else 0.0)
        return done

    async def user_states(self) -> int:
        """The most recently active users' states into memory (``engine.user_state_preload``;
        :meth:`graphrec.engine.user_state.UserStates.preload`), for at most ``warm_up_s`` (the
        states read by then stay held); returns how many."""
        s = self.s
        if s.cfg.warm_up_s <= 0:
            return 0
        t0 = time.monotonic()
        kept = await asyncio.wait_for(self.preload(s.cfg.user_state_preload), s.cfg.warm_up_s)
        if kept:
            log.info("user states preloaded: %d in %.1f s", kept, time.monotonic() - t0)
        return kept

    async def requests(self, round_size: int = 25, at_least: int = 200) -> int:
        """Serve recommendations to a sample of real users, in rounds: ``at_least`` answers, then
        until a round is less than 15% faster than the one before and none of its answers was
        degraded by Neo4j (or ``warm_up_s`` passed); returns how many were served.
        Nothing is observed (no metrics, no slow log) and nothing is cached (:data:`WARMING`):
        clients may be served meanwhile. A failing request ends the warm-up, never the start."""
        s, cfg = self.s, self.s.cfg
        if cfg.warm_up_s <= 0:
            return 0
        t0 = time.monotonic()
        users = [r["id"] for r in await s.store.read("repo/sample_users", limit=4 * round_size)]
        if not users:
            return 0
        served, previous, warming = 0, float("inf"), True
        token = WARMING.set(True)
        try:
            while warming and time.monotonic() - t0 < cfg.warm_up_s:
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
            WARMING.reset(token)
        s.stats["warm_up_requests"] = served
        s.stats["warm_up_ms"] = (time.monotonic() - t0) * 1000
        return served
