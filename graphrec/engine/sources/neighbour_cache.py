"""A bounded, expiring cache of materialised neighbour lists, shared by the neighbour sources.

Summing the neighbours of a request's seed items in Cypher costs a large share of its budget;
the lists themselves change only when ``graphrec refresh-neighbours`` runs. So the engine keeps them in
a TTL cache (``maxsize`` items per kind, ``ttl_s`` seconds) and asks Neo4j only for the seeds it
has not seen lately; the sum happens in memory.

When ``graphrec refresh-neighbours`` wrote its lists as files on this machine too, and the graph
names that version, the engine maps them (:attr:`NeighbourCache.index`,
:mod:`graphrec.core.recs.neighbour_index`): the lists of the items they hold come from memory,
the cache and the reads below serve only the others (items created since, or no files).

Misses are read in batches: every id missed during one turn of the event loop — by the
co-interaction, content and session sources of one request, and by concurrent requests — goes
into one query (``cypher/recs/neighbour_lists.cypher``) that returns both kinds of list. At 1M
items, where most requests miss, that is one round trip per turn instead of one per source per
request. A caller that gives up (its budget ran out) leaves the read running: its result still
fills the cache for the next request.
"""

from __future__ import annotations

import asyncio
import marshal
from collections.abc import Iterable
from typing import Any

import numpy as np

from graphrec.core.errors import GraphStoreBusy
from graphrec.core.recs.merge import NeighbourList, neighbour_list
from graphrec.core.recs.neighbour_index import NeighbourIndex
from graphrec.engine.cache import TTLCache

Lists = dict[str, NeighbourList]  # kind -> one item's neighbour list

#: The kinds of neighbour list, and the column of recs/neighbour_lists that holds each.
RELS = {"CO_INTERACTED": "co", "SIMILAR_CONTENT": "content"}


class NeighbourCache:
    def __init__(self, maxsize: int = 200_000, ttl_s: float = 600.0, per_item: int = 50, max_batch: int = 1000,
                 max_reads: int = 12) -> None:
        self.per_item = per_item
        self.max_batch = max_batch
        # Batch reads in flight at most (a read whose callers gave up runs on, holding its pooled
        # connection): past it the ids missed are refused at once (GraphStoreBusy), not queued.
        self.max_reads = max_reads
        self.refused = 0  # batch reads refused so (for /metrics)
        # Lists kept as marshal bytes of (ids, float64 scores) (see graphrec.engine.cache: 400k
        # nested tuples at 1M items would stay in the full collections' walk for minutes after
        # each was cached); read back as NeighbourList columns, what the sum takes.
        self.caches: dict[str, TTLCache[bytes]] = {rel: TTLCache(maxsize, ttl_s) for rel in RELS}
        self._pending: dict[str, asyncio.Future[Lists]] = {}  # id -> its lists, once the batch holding it is read
        self._queue: list[str] = []  # ids missed during this turn of the loop, not yet asked for
        self._reads: set[asyncio.Task[None]] = set()
        self.round_trips = 0
        # The mapped lists of the refresh the graph names, when this machine has them (set by
        # graphrec.engine.live); the ids it holds never reach the cache or Neo4j.
        self.index: NeighbourIndex | None = None
        self.index_hits = 0

    async def lists(self, store: Any, rel: str, ids: list[str], timeout: float) -> dict[str, NeighbourList]:
        """The ``rel`` neighbour lists of ``ids`` (an id with none maps to an empty list). Raises
        what the batch's read raised (a GraphStoreError) and asyncio.TimeoutError after ``timeout``."""
        cache = self.caches[rel]
        out: dict[str, NeighbourList] = {}
        if self.index is not None:
            out = self.index.lists(rel, ids, self.per_item)
            self.index_hits += len(out)
            if len(out) == len(set(ids)):
                return out
        waits: dict[str, asyncio.Future[Lists]] = {}
        for i in ids:
            if i in out:
                continue
            got = cache.get(i)
            if got is not None:
                out[i] = _unpack(got)
            elif i not in waits:
                waits[i] = self._request(store, i, timeout)
        if waits:
            # asyncio.wait never cancels what it waits for: a caller that gives up leaves the
            # read to the other callers and to the cache.
            _, late = await asyncio.wait(set(waits.values()), timeout=timeout)
            if late:
                raise TimeoutError
            for i, fut in waits.items():
                out[i] = fut.result()[rel]  # raises the batch's error
        return out

    def _not_indexed(self, ids: list[str]) -> list[str]:
        """The ``ids`` the mapped index does not hold (all of them without one)."""
        if self.index is None or not ids:
            return ids
        return [i for i, p in zip(ids, self.index.positions(ids).tolist(), strict=True) if p < 0]

    def start(self, store: Any, ids: list[str], timeout: float) -> bool:
        """Send the read for the ``ids`` not in memory now, without waiting: a request calls this
        with its seeds before it starts its sources, so the round trip to Neo4j overlaps the
        in-process work (the ANN search) instead of queueing behind it. Returns whether every list
        of ``ids`` was in memory (the files or the cache): the sources summing them will not wait."""
        missing = [i for i in dict.fromkeys(self._not_indexed(ids))
                   if any(c.peek(i) is None for c in self.caches.values())]
        queued = False
        for i in missing:
            if i not in self._pending:
                self._request(store, i, timeout)
                queued = True
        if queued:
            self._dispatch(store, timeout)
        return not missing

    def _request(self, store: Any, item_id: str, timeout: float) -> asyncio.Future[Lists]:
        fut = self._pending.get(item_id)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            fut.add_done_callback(_consume)
            self._pending[item_id] = fut
            if not self._queue:
                loop.call_soon(self._dispatch, store, timeout)  # after the other callers of this turn
            self._queue.append(item_id)
        return fut

    def _dispatch(self, store: Any, timeout: float) -> None:
        queue, self._queue = self._queue, []
        if len(self._reads) >= self.max_reads:
            busy = GraphStoreBusy(f"{len(self._reads)} neighbour reads in flight")
            self.refused += 1
            for i in queue:
                fut = self._pending.pop(i, None)
                if fut is not None and not fut.done():
                    fut.set_exception(busy)
            return
        for k in range(0, len(queue), self.max_batch):
            task = asyncio.get_running_loop().create_task(self._read(store, queue[k:k + self.max_batch], timeout))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _read(self, store: Any, ids: list[str], timeout: float) -> None:
        self.round_trips += 1
        try:
            rows = await store.read("recs/neighbour_lists", timeout=timeout, plain=True, once=True, ids=ids, per_item=self.per_item)
        except BaseException as exc:  # noqa: BLE001 - every waiter gets the error
            for i in ids:
                fut = self._pending.pop(i, None)
                if fut is not None and not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        found: dict[str, Lists] = {r["item_id"]: _lists(r) for r in rows}
        empty: Lists = {rel: neighbour_list(()) for rel in RELS}
        for i in ids:
            lists = found.get(i, empty)
            for rel, lst in lists.items():
                self.put(rel, i, lst)
            fut = self._pending.pop(i, None)
            if fut is not None and not fut.done():
                fut.set_result(lists)

    def fill(self, rows: Iterable[dict[str, Any]]) -> None:
        """Cache the lists of ``rows`` (the columns of ``recs/neighbour_lists``: item_id, co,
        content) read along with something else (a user's state: ``repo/user_state``), for the
        items not cached now."""
        held = self.caches["CO_INTERACTED"]
        for r in rows:
            if held.peek(r["item_id"]) is None:
                for rel, lst in _lists(r).items():
                    self.put(rel, r["item_id"], lst)

    def put(self, rel: str, item_id: str, neighbours: NeighbourList | Iterable[tuple[str, float]]) -> None:
        """Cache one item's ``rel`` list (a NeighbourList or ``(neighbour id, score)`` pairs, best first)."""
        lst = neighbours if isinstance(neighbours, NeighbourList) else neighbour_list(neighbours)
        self.caches[rel].put(item_id, marshal.dumps((lst.ids, np.asarray(lst.scores, dtype=np.float64).tobytes())))

    async def prefetch(self, store: Any, ids: list[str], timeout: float = 30.0, batch: int = 500) -> None:
        """Fill the cache for ``ids`` (the most popular items) so early requests do not miss."""
        for k in range(0, len(ids), batch):
            await self.lists(store, "CO_INTERACTED", ids[k:k + batch], timeout)
        for c in self.caches.values():
            c.hits = c.misses = 0
        self.index_hits = 0

    @property
    def hit_rate(self) -> float:
        """The share of lists answered from memory (the mapped index or the cache)."""
        hits = self.index_hits + sum(c.hits for c in self.caches.values())
        total = hits + sum(c.misses for c in self.caches.values())
        return hits / total if total else 0.0


def _lists(row: dict[str, Any]) -> Lists:
    """A ``recs/neighbour_lists`` row's lists, by kind."""
    return {rel: neighbour_list((n[0], float(n[1])) for n in row[col]) for rel, col in RELS.items()}


def _unpack(packed: bytes) -> NeighbourList:
    ids, scores = marshal.loads(packed)
    return NeighbourList(ids, np.frombuffer(scores, dtype=np.float64))


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a batch's error as seen: the callers that gave up never read it."""
    if not fut.cancelled():
        fut.exception()
