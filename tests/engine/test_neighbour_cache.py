"""The neighbour cache batches misses: one read per turn of the event loop, both kinds at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphrec.core.errors import GraphStoreUnavailable
from graphrec.engine.sources.neighbour_cache import NeighbourCache


def pairs(lists: dict[str, Any]) -> dict[str, tuple[tuple[str, float], ...]]:
    """Each item's cached list as ``(neighbour, score)`` pairs."""
    return {i: lst.pairs() for i, lst in lists.items()}


class FakeStore:
    """Answers recs/neighbour_lists from a dict; records every call; can be slow or failing."""

    def __init__(self, lists: dict[str, dict[str, list[list[Any]]]], delay: float = 0.0, fail: bool = False) -> None:
        self.lists, self.delay, self.fail = lists, delay, fail
        self.calls: list[list[str]] = []

    async def read(self, name: str, timeout: float | None = None, plain: bool = False, **params: Any) -> list[dict[str, Any]]:
        assert name == "recs/neighbour_lists" and plain
        self.calls.append(list(params["ids"]))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise GraphStoreUnavailable("down")
        return [{"item_id": i, "co": self.lists[i].get("co", []), "content": self.lists[i].get("content", [])}
                for i in params["ids"] if i in self.lists]


LISTS = {"a": {"co": [["b", 0.9], ["c", 0.5]], "content": [["d", 0.7]]},
         "b": {"co": [["a", 0.9]]}}


def test_concurrent_misses_share_one_read_and_fill_both_kinds() -> None:
    async def go() -> None:
        store, cache = FakeStore(LISTS), NeighbourCache()
        co, content, other = await asyncio.gather(
            cache.lists(store, "CO_INTERACTED", ["a", "b", "ghost"], 1.0),
            cache.lists(store, "SIMILAR_CONTENT", ["a"], 1.0),
            cache.lists(store, "CO_INTERACTED", ["b"], 1.0))
        assert len(store.calls) == 1 and sorted(store.calls[0]) == ["a", "b", "ghost"]
        assert pairs(co) == {"a": (("b", 0.9), ("c", 0.5)), "b": (("a", 0.9),), "ghost": ()}
        assert pairs(content) == {"a": (("d", 0.7),)}
        assert pairs(other) == {"b": (("a", 0.9),)}
        # Both kinds are cached now: no further read.
        assert pairs(await cache.lists(store, "SIMILAR_CONTENT", ["b", "ghost"], 1.0)) == {"b": (), "ghost": ()}
        assert len(store.calls) == 1 and cache.round_trips == 1

    asyncio.run(go())


def test_a_caller_that_gives_up_still_fills_the_cache() -> None:
    async def go() -> None:
        store, cache = FakeStore(LISTS, delay=0.05), NeighbourCache()
        with pytest.raises(asyncio.TimeoutError):
            await cache.lists(store, "CO_INTERACTED", ["a"], 0.01)
        await asyncio.sleep(0.08)  # the read finishes in the background
        assert pairs(await cache.lists(store, "CO_INTERACTED", ["a"], 0.01))["a"][0] == ("b", 0.9)
        assert len(store.calls) == 1

    asyncio.run(go())


def test_a_failed_read_raises_for_every_waiter_and_is_not_cached() -> None:
    async def go() -> None:
        store, cache = FakeStore(LISTS, fail=True), NeighbourCache()
        res = await asyncio.gather(cache.lists(store, "CO_INTERACTED", ["a"], 1.0),
                                   cache.lists(store, "SIMILAR_CONTENT", ["a", "b"], 1.0), return_exceptions=True)
        assert all(isinstance(r, GraphStoreUnavailable) for r in res)
        assert len(store.calls) == 1
        store.fail = False
        assert (await cache.lists(store, "CO_INTERACTED", ["a"], 1.0))["a"].ids == ("b", "c")  # asked again, now answered
        assert len(store.calls) == 2

    asyncio.run(go())


def test_large_miss_sets_are_split_into_batches() -> None:
    async def go() -> None:
        store, cache = FakeStore({}), NeighbourCache(max_batch=10)
        out = await cache.lists(store, "CO_INTERACTED", [f"i{k}" for k in range(25)], 1.0)
        assert len(out) == 25 and [len(c) for c in store.calls] == [10, 10, 5]

    asyncio.run(go())


def test_start_sends_the_read_at_once_and_the_sources_wait_for_it() -> None:
    async def go() -> None:
        store, cache = FakeStore(LISTS), NeighbourCache()
        assert not cache.start(store, ["a", "b", "a"], 1.0)  # not in memory: the sources will wait
        await asyncio.sleep(0)  # one turn: the read is on its way before any source asks
        assert store.calls == [["a", "b"]]
        co, content = await asyncio.gather(cache.lists(store, "CO_INTERACTED", ["a", "b"], 1.0),
                                           cache.lists(store, "SIMILAR_CONTENT", ["a"], 1.0))
        assert pairs(co)["a"][0] == ("b", 0.9) and pairs(content)["a"] == (("d", 0.7),)
        assert cache.start(store, ["a", "b"], 1.0)  # cached: nothing to send
        assert len(store.calls) == 1

    asyncio.run(go())


def test_ids_the_mapped_files_hold_never_reach_the_store(tmp_path: Any) -> None:
    import numpy as np

    from graphrec.core.recs.neighbour_index import NeighbourIndex, write

    ids = ["a", "b", "c", "d"]
    files = write(tmp_path, "v1", ids, {"CO_INTERACTED": [(0, np.array([1, 2]), np.array([0.75, 0.5], np.float32))],
                                        "SIMILAR_CONTENT": [(0, np.array([3]), np.array([0.25], np.float32))]})

    async def go() -> None:
        store, cache = FakeStore({"new": {"co": [["a", 0.5]]}}), NeighbourCache(per_item=1)
        cache.index = NeighbourIndex.open(files)
        got = await cache.lists(store, "CO_INTERACTED", ["a", "b", "a"], 1.0)
        assert pairs(got) == {"a": (("b", 0.75),), "b": ()} and store.calls == []  # per_item 1; b: held, none
        assert cache.start(store, ["a", "b", "c"], 1.0)  # every seed held: nothing is sent
        await asyncio.sleep(0)
        assert store.calls == []
        # An item created since the files were written is read from the store, and cached.
        got = await cache.lists(store, "CO_INTERACTED", ["a", "new"], 1.0)
        assert pairs(got) == {"a": (("b", 0.75),), "new": (("a", 0.5),)} and store.calls == [["new"]]
        assert pairs(await cache.lists(store, "SIMILAR_CONTENT", ["a", "new"], 1.0)) == {"a": (("d", 0.25),), "new": ()}
        assert store.calls == [["new"]] and cache.start(store, ["a", "new"], 1.0)

    asyncio.run(go())
