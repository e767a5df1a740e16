"""The request-time engine: the facade the API calls. Its parts, one job each:

- :mod:`~graphrec.engine.user_state` — a user's recent history and consumed items (held in memory while
  known fresh, else one round trip), and the poll that keeps them fresh across processes;
- :mod:`~graphrec.engine.candidates` — the candidate sources at once, each under its budget;
- :mod:`~graphrec.engine.pipeline` — the home feed's steps: merge, rank, rules;
- :mod:`~graphrec.engine.surfaces` — the other surfaces on the same steps (similar items, rerank,
  batch);
- :mod:`~graphrec.engine.explain` — English reasons and the Browser snippet;
- :mod:`~graphrec.engine.results` — the result cache, stale answers, answer bookkeeping;
- :mod:`~graphrec.engine.guard` — the breakers around Neo4j and the vector index (and re-opening it);
- :mod:`~graphrec.engine.live` — the catalogue, model and ranker, refreshed in the background;
- :mod:`~graphrec.engine.writes` — interactions written at once or journalled, the replay;
- :mod:`~graphrec.engine.repository` — reads and upserts of items and users;
- :mod:`~graphrec.engine.warmup` — the start-up warm-up; :mod:`~graphrec.engine.health` — health.

They share one :class:`~graphrec.engine.state.Serving` (settings, stores, caches, the live model):
its fields read and set through the engine (``engine.model``, ``engine.store``) are that state's.
Degraded mode: when Neo4j or the vector index fails, a request answers from what is left, down to
the in-memory popular list, and says so. State shared between API processes (interactions,
models) lives in the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from graphrec.core.config import Settings
from graphrec.core.errors import GraphrecError
from graphrec.core.graph.store import AsyncGraphStore
from graphrec.core.recs.types import (
    Interaction,
    Item,
    RecFilter,
    RecordResult,
    RecRequest,
    RecResult,
    Surface,
    User,
)
from graphrec.engine import health
from graphrec.engine.candidates import Candidates
from graphrec.engine.guard import Guard, open_vectors
from graphrec.engine.live import Live
from graphrec.engine.pipeline import Pipeline
from graphrec.engine.repository import Repository
from graphrec.engine.results import Results
from graphrec.engine.state import Serving
from graphrec.engine.surfaces import Surfaces, batch
from graphrec.engine.user_state import UserStates
from graphrec.engine.warmup import Warmup
from graphrec.engine.writes import Writes

log = logging.getLogger("graphrec.engine")
_STATE = frozenset(Serving.__dataclass_fields__)


class Engine:
    """Recommendations for users, items and lists of items. Create with :meth:`create`."""

    def __init__(self, settings: Settings, store: AsyncGraphStore, vectors: Any | None = None) -> None:
        s = self.state = Serving.create(settings, store, vectors)
        self.guard = Guard(s)
        self.users = UserStates(s, self.guard)
        self.candidates = Candidates(s, self.guard)
        self.result_cache = Results(s)
        self.pipeline = Pipeline(s, self.guard, self.candidates, self.users, self.result_cache)
        self.surfaces = Surfaces(self.pipeline)
        self.live = Live(s, self.guard)
        self.writes = Writes(s, self.guard, self.users)
        self.repo = Repository(s, self.guard)
        self.warmup = Warmup(s, lambda req: self.recommend(req), self.users.preload)

    # The shared state's fields read and set through the engine (engine.model, engine.store, ...).
    def __getattr__(self, name: str) -> Any:
        if name in _STATE and "state" in self.__dict__:
            return getattr(self.__dict__["state"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _STATE and "state" in self.__dict__:
            setattr(self.state, name, value)
        else:
            object.__setattr__(self, name, value)

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def create(cls, settings: Settings, vectors: Any | None = None, background: bool = True) -> Engine:
        """Open the stores, warm the connections and query plans, load the catalogue and the live
        model, and start the background refreshes and the journal replay. The rest of the warm-up
        (``engine.warm_up_s``; 0 skips it: the write path's commits, sample requests) runs in the
        background with ``background``, the engine serving meanwhile (``warming`` until it ends:
        see :mod:`graphrec.engine.warmup`), else before this returns."""
        store = AsyncGraphStore.from_settings(settings)
        reopen = None
        if vectors is None:
            vectors, reopen = open_vectors(settings)
        eng = cls(settings, store, vectors)
        s = eng.state
        s.open_vectors = reopen

        async def connections() -> None:
            with contextlib.suppress(GraphrecError, asyncio.TimeoutError):
                await eng.warm_up()

        async def catalog_and_model() -> None:
            with contextlib.suppress(GraphrecError):
                await eng.refresh_catalog()
                await eng.refresh_neighbour_files()
                await s.neighbours.prefetch(store, [i for i, _ in s.catalog.popular[: s.cfg.prefetch_neighbours]])
            with contextlib.suppress(GraphrecError):
                await eng.refresh_model()

        # Side by side: on a Neo4j whose read path is cold (after a restart) each took tens of seconds.
        await asyncio.gather(connections(), catalog_and_model())
        if background and s.cfg.warm_up_s > 0:
            s.tasks.append(eng.warmup.start())
        elif not background:
            await eng.warmup.run()
        if background:
            s.tasks.append(asyncio.create_task(_every(s.cfg.catalog_refresh_s, eng.refresh_catalog)))
            s.tasks.append(asyncio.create_task(_every(s.cfg.model_poll_s, eng.refresh_model)))
            s.tasks.append(asyncio.create_task(_every(s.cfg.model_poll_s, eng.refresh_neighbour_files)))
            s.tasks.append(asyncio.create_task(_every(2.0, eng._replay_task)))
            if s.cfg.state_sync_s > 0:
                eng.start_state_sync()
        return eng

    async def close(self) -> None:
        s = self.state
        if s.opening is not None:
            s.tasks.append(s.opening)
        for t in s.tasks:
            t.cancel()
        for t in s.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await s.store.close()
        if s.vectors is not None:
            with contextlib.suppress(Exception):
                s.vectors.close()

    async def warm_up(self) -> None:
        await self.warmup.connections()

    async def warm_writes(self, round_size: int = 25) -> int:
        return await self.warmup.writes(round_size)

    async def warm_requests(self, round_size: int = 25, at_least: int = 200) -> int:
        return await self.warmup.requests(round_size, at_least)

    async def refresh_catalog(self, full: bool = False) -> None:
        await self.live.refresh_catalog(full)

    async def refresh_model(self) -> None:
        await self.live.refresh_model()

    async def refresh_neighbour_files(self) -> None:
        await self.live.refresh_neighbour_files()

    def start_state_sync(self) -> None:
        """Poll the users whose history changed now and every ``engine.state_sync_s`` (started by
        :meth:`create`): held user states are served only while these polls succeed. The period
        counts from each poll's start: held states stay served while every poll takes less than
        ``state_sync_s`` (counted from its end, two polls together had to: a busy Neo4j made the
        held states flap out of service, and every request then read Neo4j, busier still)."""
        self.state.tasks.append(asyncio.create_task(_every(self.cfg.state_sync_s, self.sync_user_states, first=0.0,
                                                           from_start=True)))

    async def sync_user_states(self) -> None:
        """One state poll; a failure is logged when polls start failing and when they resume
        (meanwhile requests read their users' states from Neo4j, as without held states)."""
        try:
            await self.users.sync()
        except (TimeoutError, GraphrecError) as exc:
            if not self.users.polls_failing:
                log.warning("user state polls failing (held states not served until they resume): %s",
                            exc if str(exc) else f"{type(exc).__name__} (Neo4j did not answer in time)")
            self.users.polls_failing = True
            return
        if self.users.polls_failing:
            log.info("user state polls resumed")
        self.users.polls_failing = False

    async def _replay_task(self) -> None:
        await self.replay_journal()

    # ---- recommendations -------------------------------------------------------------------
    async def recommend(self, req: RecRequest) -> RecResult:
        """Recommendations for one user on one surface, in these steps:

        1. **user state** — recent interactions and every consumed item: held in memory while known
           fresh, else one Neo4j round trip (a cached answer for this state, or with Neo4j away the last good one, ends here);
        2. **sources** — at once, each under its budget: ``ann`` (the user vector against the
           vector index), the collaborative and content paths, session, popular, fresh;
        3. **merge** — de-duplicated into columns (one fused score per item), every source's score
           and rank kept; consumed items the user viewed or skipped down-weighted;
        4. **rank** — every candidate at once: the live version's hybrid, or the learned ranker
           when it is live and usable, else score fusion plus embedding similarity; promotions;
           then the best that pass the request's filter and were not consumed;
        5. **rules** — MMR diversity with a per-category cap, seeded exploration
           (:func:`graphrec.core.recs.rules.finish`, which the offline replay runs too);
        6. **explain** — each item with its sources and a readable reason; a complete answer is
           cached.
        """
        p = self.pipeline
        run = p.start(req)
        with run.stage("user_state"):
            run.recent, run.consumed = await self.users.read(req.user_id, run.degraded)
        if (early := p.cached_or_stale(run)) is not None:
            return early
        by_source, weights = await p.sources(run)
        with run.stage("merge"):
            pool = p.merge(run, by_source, weights)
        with run.stage("rank"):
            short = p.rank_step(run, pool)
        with run.stage("rules"):
            chosen = p.apply_rules(run, short)
        return p.answer(run, chosen)

    async def similar_items(self, item_id: str, first: int = 20, filter: RecFilter | None = None) -> RecResult:
        return await self.surfaces.similar_items(item_id, first, filter)

    async def rerank(self, user_id: str, item_ids: list[str], first: int | None = None) -> RecResult:
        return await self.surfaces.rerank(user_id, item_ids, first)

    async def batch(self, user_ids: list[str], first: int = 20, surface: Surface = Surface.EMAIL,
                    concurrency: int = 8) -> dict[str, RecResult]:
        """Recommendations for many users (email campaigns), ``concurrency`` at a time."""
        return await batch(self.recommend, user_ids, first, surface, concurrency)

    async def popular(self, first: int = 20, category: str | None = None) -> list[str]:
        first = max(1, min(int(first), 100))
        cat = self.state.catalog
        src = cat.popular_by_category.get(category, []) if category else cat.popular
        return [i for i, _ in src[:first]]

    # ---- the record --------------------------------------------------------------------------
    async def record_interaction(self, data: dict[str, Any]) -> RecordResult:
        return await self.writes.record_interaction(data)

    async def replay_journal(self) -> int:
        return await self.writes.replay_journal()

    async def get_items(self, ids: list[str]) -> dict[str, Item]:
        return await self.repo.get_items(ids)

    def catalogue_item(self, item_id: str) -> Item | None:
        return self.repo.catalogue_item(item_id)

    async def get_user(self, user_id: str) -> User | None:
        return await self.repo.get_user(user_id)

    async def user_history(self, user_id: str, limit: int = 10) -> list[Interaction]:
        return await self.repo.user_history(user_id, limit)

    async def upsert_item(self, data: dict[str, Any]) -> Item:
        return await self.repo.upsert_item(data)

    async def upsert_user(self, data: dict[str, Any]) -> User:
        return await self.repo.upsert_user(data)

    async def model_versions(self, first: int = 10) -> list[Any]:
        return await self.repo.model_versions(first)

    # ---- health ------------------------------------------------------------------------------
    async def health(self) -> dict[str, bool]:
        return await health.health(self.state)

    def readiness(self) -> dict[str, Any]:
        return health.readiness(self.state)


async def _every(seconds: float, fn: Callable[[], Awaitable[None]], first: float | None = None,
                 from_start: bool = False) -> None:
    """``fn()`` every ``seconds`` (the first time after ``first`` seconds, default ``seconds``):
    ``seconds`` after each call ends, or with ``from_start`` after each call began (a call that
    took longer is followed at once; calls never overlap)."""
    loop = asyncio.get_running_loop()
    wait = seconds if first is None else first
    while True:
        await asyncio.sleep(wait)
        began = loop.time()
        try:
            await fn()
        except Exception as exc:  # noqa: BLE001 - a background refresh must never die
            log.warning("background refresh %s failed: %s", fn.__name__, exc)
        wait = max(0.0, seconds - (loop.time() - began)) if from_start else seconds
