"""Held user states across two engines on one graph (the real test Neo4j, the tiny catalogue):
a repeated request for a held user reads nothing from Neo4j; a click recorded through engine A
leaves engine B's answers within engine.state_sync_s plus a poll; a process whose polls stop
reads Neo4j again; the process that took a write serves it at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from graphrec.core.config import Settings
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.testing import count_reads, tiny_graph

pytestmark = pytest.mark.integration

SYNC_S = 0.5
REQ = RecRequest("alice", first=5, context=RequestContext(now=2000.0))


@pytest.fixture()
def tiny(store, neo4j_settings: Settings) -> Iterator[Settings]:  # noqa: ANN001
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    tiny_graph(store)
    refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False)
    yield neo4j_settings.model_copy(update={"engine": neo4j_settings.engine.model_copy(update={
        "explore_epsilon": 0.0, "request_budget_ms": 3000.0, "source_budget_ms": 2000.0, "state_sync_s": SYNC_S})})


async def _engine(s: Settings) -> Engine:
    e = await Engine.create(s, vectors=None, background=False)
    e.start_state_sync()  # what create(background=True) starts, without the other refreshes
    return e


async def _synced(e: Engine, timeout: float = 10.0) -> None:
    """Until ``e`` has applied a poll (its held states may then be served)."""
    t0 = time.monotonic()
    while not e.users.sync_state.fresh():
        assert time.monotonic() - t0 < timeout, "no state poll applied"
        await asyncio.sleep(0.05)


async def _ids(e: Engine) -> list[str]:
    return [r.item_id for r in (await e.recommend(REQ)).items]


def test_a_click_through_a_leaves_b_within_the_sync_period(tiny: Settings) -> None:
    async def go() -> tuple[list[str], list[str], list[str], float, list[str]]:
        a, b = await _engine(tiny), await _engine(tiny)
        try:
            await _synced(a)
            await _synced(b)
            reads = count_reads(b)
            before = await _ids(b)
            again = await _ids(b)  # held: no repo/user_state read
            held_reads = list(reads)
            rec = await a.record_interaction({"user_id": "alice", "item_id": before[0], "type": "CLICK", "ts": 1999.0})
            assert rec.stored == "direct"
            t0 = time.monotonic()
            after = await _ids(b)
            while before[0] in after and time.monotonic() - t0 < SYNC_S + 3.0:
                await asyncio.sleep(0.05)
                after = await _ids(b)
            return before, again, after, time.monotonic() - t0, held_reads
        finally:
            await a.close()
            await b.close()

    before, again, after, took, held_reads = asyncio.run(go())
    assert held_reads.count("repo/user_state") == 1  # the first request read it, the second did not
    assert again == before
    assert before[0] not in after, f"engine A's click still recommended by engine B after {took:.2f} s"
    assert took <= SYNC_S + 1.0  # one period plus a poll (and a request) of margin


def test_own_write_is_served_at_once_then_reread(tiny: Settings) -> None:
    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        a = await _engine(tiny)
        try:
            await _synced(a)
            before = await _ids(a)
            reads = count_reads(a)
            await a.record_interaction({"user_id": "alice", "item_id": before[0], "type": "PURCHASE", "ts": 1999.0})
            at_once = await _ids(a)  # the held state has the purchase: no read, no wait
            first = list(reads)
            gen = a.users.sync_state.gen
            while a.users.sync_state.gen < gen + 2:  # a poll that began after the write
                await asyncio.sleep(0.05)
            await _ids(a)  # the poll saw the write's stamp: read again from the graph
            return before, at_once, first, reads

        finally:
            await a.close()

    before, at_once, first, reads = asyncio.run(go())
    assert before[0] not in at_once
    assert "repo/user_state" not in first
    assert reads.count("repo/user_state") == 1


def test_without_polls_held_state_is_not_served(tiny: Settings) -> None:
    async def go() -> tuple[list[str], list[str]]:
        e = await _engine(tiny)
        try:
            await _synced(e)
            await _ids(e)
            reads = count_reads(e)
            await _ids(e)
            fresh = list(reads)
            for t in e.state.tasks:  # the polls stop (as with Neo4j away)
                t.cancel()
            await asyncio.sleep(2 * SYNC_S + 0.1)
            await _ids(e)
            return fresh, reads
        finally:
            await e.close()

    fresh, reads = asyncio.run(go())
    assert "repo/user_state" not in fresh
    assert reads.count("repo/user_state") == 1  # past 2 × state_sync_s without a poll: read again


def test_polling_off_reads_every_request(tiny: Settings) -> None:
    async def go() -> list[str]:
        s = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"state_sync_s": 0.0})})
        e = await Engine.create(s, vectors=None, background=True)
        try:
            reads = count_reads(e)
            await _ids(e)
            await _ids(e)
            return reads
        finally:
            await e.close()

    assert asyncio.run(go()).count("repo/user_state") == 2


@pytest.mark.parametrize("writer", ["loader", "journal replay"])
def test_writes_outside_the_engines_are_seen_by_the_poll(tiny: Settings, store, writer: str) -> None:  # noqa: ANN001
    """Writes that do not go through an engine's recordInteraction (a loader, the journal's
    replay, whichever process runs it) stamp their users too."""
    from graphrec.core.records import InteractionRow, InteractionType
    from graphrec.engine.journal import write_rows_sync
    from loaders.writer import GraphWriter, Source

    def write(item: str) -> None:
        row = InteractionRow(user_id="alice", item_id=item, type=InteractionType.PURCHASE, ts=1999.5)
        if writer == "loader":
            GraphWriter(store, batch_size=10, on_error="stop", progress=False).interactions([(row, Source("t", 1))])
        else:
            assert write_rows_sync(store, [{**row.to_param(), "type": row.type.value}]) == []

    async def go() -> tuple[list[str], list[str], float]:
        e = await _engine(tiny)
        try:
            await _synced(e)
            before = await _ids(e)
            await asyncio.to_thread(write, before[0])
            t0 = time.monotonic()
            after = await _ids(e)
            while before[0] in after and time.monotonic() - t0 < SYNC_S + 3.0:
                await asyncio.sleep(0.05)
                after = await _ids(e)
            return before, after, time.monotonic() - t0
        finally:
            await e.close()

    before, after, took = asyncio.run(go())
    assert before[0] not in after and took <= SYNC_S + 1.0


def test_preloaded_states_are_served_without_a_read_and_kept_fresh(tiny: Settings, store) -> None:  # noqa: ANN001
    """The warm-up's preload holds the most recently active users' states: their first request
    reads nothing from Neo4j, and a write elsewhere still takes a preloaded state out of service."""
    from graphrec.core.records import InteractionRow, InteractionType
    from graphrec.engine.journal import write_rows_sync

    async def go() -> tuple[int, list[str], list[str], list[str], list[str]]:
        e = await _engine(tiny)
        try:
            kept = await e.users.preload(100)  # waits for the first poll
            reads = count_reads(e)
            before = await _ids(e)
            first = list(reads)
            # A write that does not go through this engine (a loader): the poll sees its stamp.
            row = InteractionRow(user_id="alice", item_id=before[0], type=InteractionType.PURCHASE, ts=1999.5)
            assert await asyncio.to_thread(write_rows_sync, store, [{**row.to_param(), "type": row.type.value}]) == []
            gen = e.users.sync_state.gen
            while e.users.sync_state.gen < gen + 2:
                await asyncio.sleep(0.05)
            after = await _ids(e)
            return kept, before, first, after, reads
        finally:
            await e.close()

    kept, before, first, after, reads = asyncio.run(go())
    assert kept >= 1  # alice (and the tiny graph's other users with a stamp)
    assert "repo/user_state" not in first and "repo/active_users" not in first
    assert before[0] not in after and reads.count("repo/user_state") == 1  # read again after the write


def test_no_preload_before_any_poll(tiny: Settings) -> None:
    async def go() -> tuple[int, list[str]]:
        e = await Engine.create(tiny, vectors=None, background=False)  # no polls started
        try:
            reads = count_reads(e)
            return await e.users.preload(100), reads
        finally:
            await e.close()

    kept, reads = asyncio.run(go())
    assert kept == 0 and reads == []  # nothing read: a state read before the first poll is never served
