"""Every store call of the engine goes through here: Neo4j and the vector index each behind a
circuit breaker, with a time budget; the vector index, when it could not be opened at start, is
opened again in the background as its breaker lets a probe through; a model's collection is
warmed before it serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphrec.core.config import Settings
from graphrec.core.errors import (
    CollectionNotFound,
    GraphStoreBusy,
    GraphStoreUnavailable,
    QueryError,
    VectorStoreError,
    VectorStoreUnavailable,
)
from graphrec.core.recs.model import LiveModel
from graphrec.engine.state import Serving

log = logging.getLogger("graphrec.engine")
T = TypeVar("T")


class Guard:
    def __init__(self, s: Serving) -> None:
        self.s = s
        self.request_reads = 0  # the request path's reads in flight, late ones included

    async def neo4j(self, aw: Awaitable[T], timeout: float | None = None, shed: bool = False) -> T:
        """Call Neo4j through its breaker. A call that outlives ``timeout`` is abandoned, not
        cancelled: it finishes in the background (cancelling would kill its pooled connection).
        ``shed``: a request-path read, refused with :class:`GraphStoreBusy` (no verdict on Neo4j)
        while ``engine.neo4j_request_reads`` of them are in flight. Abandoned reads still hold
        their pooled connections: with a slow (cold) Neo4j they piled up until the pool was empty,
        and every call, writes and state polls too, then waited 10 s for a connection and failed."""
        breaker = self.s.neo4j_breaker
        if shed and self.request_reads >= self.s.cfg.neo4j_request_reads:
            _close(aw)
            self.s.stats["neo4j.shed"] = self.s.stats.get("neo4j.shed", 0) + 1
            raise GraphStoreBusy(f"{self.request_reads} request reads in flight")
        if not breaker.allow():
            _close(aw)
            raise GraphStoreUnavailable("neo4j circuit open")
        task = asyncio.ensure_future(aw)
        if shed:
            self.request_reads += 1
            task.add_done_callback(self._read_done)
        if timeout is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.add_done_callback(self._settle_late)
                raise TimeoutError
        try:
            res = await task
        except (TimeoutError, GraphStoreBusy):
            # A budget ran out on this side (a source's wait for a batched read): no verdict on
            # Neo4j. TimeoutError is an OSError: counted as one, three late answers in a row
            # under load opened the breaker, and every request then went degraded for 5 s.
            breaker.release()
            raise
        except (GraphStoreUnavailable, OSError) as exc:
            breaker.failure(exc)
            raise
        except QueryError:
            breaker.success()  # Neo4j answered: it refused the query, it is not down
            raise
        except BaseException:
            breaker.release()  # no verdict on Neo4j (cancelled, or not its error)
            raise
        breaker.success()
        return res

    def _read_done(self, _: asyncio.Future[Any]) -> None:
        self.request_reads -= 1

    def _settle_late(self, task: asyncio.Future[Any]) -> None:
        """A late call finished: feed its outcome to the breaker and swallow its result."""
        breaker = self.s.neo4j_breaker
        if task.cancelled():
            breaker.release()
            return
        exc = task.exception()
        if isinstance(exc, TimeoutError | GraphStoreBusy):  # late or refused on this side (see neo4j): no verdict
            breaker.release()
        elif isinstance(exc, GraphStoreUnavailable | OSError):
            breaker.failure(exc)
        elif exc is None or isinstance(exc, QueryError):
            breaker.success()
        else:
            breaker.release()

    async def vectors(self, fn: Callable[[Any], T], timeout: float) -> T:
        """``fn(index)`` on a worker thread, through the vector breaker."""
        s = self.s
        if s.vectors is None and s.open_vectors is None:
            raise VectorStoreError("no vector index")
        if not s.vector_breaker.allow():
            raise VectorStoreError("vector index circuit open")
        if s.vectors is None:
            # It could not be opened at start: this request is the probe that tries again, in the
            # background (opening a server connection can outlast a request's budget).
            if s.opening is None or s.opening.done():
                s.opening = asyncio.create_task(self.reopen_vectors())
            else:
                s.vector_breaker.release()  # a probe is already on its way
            raise VectorStoreUnavailable("the vector index is not open yet")
        try:
            if getattr(s.vectors, "inline", False):
                # An in-process engine's search is a millisecond or two of CPU: run it here. On a
                # worker thread it paid the GIL hand-over twice, and so did the event loop's own
                # socket calls meanwhile (up to the 5 ms switch interval each).
                res = fn(s.vectors)
            else:
                res = await asyncio.wait_for(asyncio.to_thread(fn, s.vectors), timeout)
        except (TimeoutError, VectorStoreError, OSError) as exc:
            s.vector_breaker.failure(exc)
            raise
        s.vector_breaker.success()
        return res

    async def reopen_vectors(self) -> None:
        s = self.s
        assert s.open_vectors is not None
        try:
            index = await asyncio.to_thread(s.open_vectors)
        except Exception as exc:  # noqa: BLE001 - any failure to open is "still unavailable"
            log.info("vector index still unavailable: %s", exc)
            s.vector_breaker.failure()
            return
        if s.model is not None:
            await self.warm_vectors(s.model, index)
        log.warning("vector index opened")
        s.vectors = index
        s.vector_breaker.success()

    def collection(self, model: LiveModel) -> str:
        """Where the model's vectors are searched: its own collection, else the alias."""
        return model.collection or self.s.settings.qdrant.alias

    async def warm_vectors(self, model: LiveModel, index: Any | None = None) -> None:
        """Open the model's collection in ``index`` (default: the open one) and search it once,
        off the event loop, before the model (or a reopened index) serves: searches run inline,
        and the first one on an unopened Edge shard maps it, which would stall every request of
        the process. A collection that is gone (pruned) makes the model search through the alias."""
        index = index if index is not None else self.s.vectors
        if index is None:
            return
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(index.warm, self.collection(model))
        except CollectionNotFound:
            if model.collection is None:
                return
            log.warning("collection %s of model %s is gone; searching through the alias", model.collection, model.version)
            model.collection = None
            with contextlib.suppress(VectorStoreError):
                await asyncio.to_thread(index.warm, self.collection(model))
        except VectorStoreError as exc:
            log.warning("could not warm the vector index: %s", exc)
            return
        self.s.stats["vectors_warm_ms"] = (time.perf_counter() - t0) * 1000


def open_vectors(settings: Settings) -> tuple[Any | None, Callable[[], Any] | None]:
    """The configured vector index, or (None, a way to open it later) when it cannot be opened
    now: the engine then searches the live model's vectors exactly, in memory, says so in
    ``health`` and in each answer's degraded reasons, and tries again as the breaker allows."""
    try:
        from graphrec.core.vectors.factory import open_vector_index
    except ImportError:
        return None, None
    try:
        return open_vector_index(settings), None
    except Exception as exc:  # noqa: BLE001
        log.warning("vector index unavailable at start: %s", exc)
        return None, lambda: open_vector_index(settings)


def _close(aw: Awaitable[Any]) -> None:
    close = getattr(aw, "close", None)
    if close:
        close()
