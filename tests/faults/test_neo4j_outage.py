"""Neo4j stopped during a burst of reads and writes through the API, then restarted: reads answer
degraded, writes go to the journal, the journal replays, and Neo4j ends up with exactly the
interactions the API acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.faults.harness import RECOMMEND, RECORD, Reply, Stack, gql, interaction, run, wait_for


async def _traffic(url: str, key: str, stop: asyncio.Event, writes: dict[int, Reply], reads: list[Reply],
                   writers: int = 3, readers: int = 2) -> None:
    counter = iter(range(10**9))

    async def writer(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            n = next(counter)
            writes[n] = await gql(client, url, key, RECORD, {"i": interaction(n)})
            await asyncio.sleep(0.02)

    async def reader(client: httpx.AsyncClient, k: int) -> None:
        n = k
        while not stop.is_set():
            reads.append(await gql(client, url, key, RECOMMEND, {"u": f"u{n % 200}"}))
            n += readers
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(writer(client) for _ in range(writers)), *(reader(client, k) for k in range(readers)))


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _stored(r: Reply) -> str:
    return str(r.body["data"]["recordInteraction"]["stored"])


def test_neo4j_stopped_mid_burst_reads_degrade_writes_journal_and_replay(stack: Stack) -> None:
    api = stack.api()
    clicked_before = _clicked(stack)
    writes: dict[int, Reply] = {}
    reads: list[Reply] = []
    marks: dict[str, float] = {}

    def after(mark: str, replies: Any) -> list[Reply]:
        """Replies to requests sent once ``mark`` was reached (and answered before Neo4j restarted)."""
        end = marks.get("starting", float("inf"))
        return [r for r in replies if marks.get(mark, float("inf")) < r.sent and r.t < end]

    async def scenario() -> None:
        nonlocal stranger
        stop = asyncio.Event()
        traffic = asyncio.create_task(_traffic(api.url, stack.key, stop, writes, reads))
        try:
            await _until(lambda: sum(r.ok for r in writes.values()) >= 30 and len(reads) >= 10, 60, "traffic")
            await asyncio.to_thread(stack.server.stop)
            marks["down"] = time.monotonic()
            # Down for 3 s (the breaker's probes fail and it re-opens) and until enough requests
            # were sent, and answered, while it was down.
            await _until(lambda: time.monotonic() - marks["down"] > 3 and len(after("down", writes.values())) >= 10
                         and len(after("down", reads)) >= 5, 60, "answers while Neo4j is down")
            async with httpx.AsyncClient(timeout=30) as client:  # a key never seen is not let in meanwhile
                stranger = await gql(client, api.url, "grk_0123456789ab_" + "x" * 43, RECORD, {"i": interaction(-1)})
            marks["starting"] = time.monotonic()
            await asyncio.to_thread(stack.server.start)
            marks["up"] = time.monotonic()
            # Up until writes go straight to Neo4j again.
            await _until(lambda: sum(r.ok and _stored(r) == "DIRECT" for r in writes.values() if r.sent > marks["up"]) >= 10,
                         60, "direct writes after the restart")
        finally:
            stop.set()
            await traffic

    stranger: Reply | None = None
    run(scenario())
    assert stranger is not None and stranger.status == 503 and not stranger.ok, stranger

    # Every request had an answer: writes acknowledged, reads answered (degraded while Neo4j was away).
    failed_writes = [(r.status, r.body.get("errors")) for r in writes.values() if not r.ok]
    assert not failed_writes, f"{len(failed_writes)} of {len(writes)} writes failed: {failed_writes[:3]}"
    failed_reads = [(r.status, r.body.get("errors")) for r in reads if not r.ok]
    assert not failed_reads, f"{len(failed_reads)} of {len(reads)} reads failed: {failed_reads[:3]}"
    for r in after("down", reads):
        rec = r.body["data"]["recommendations"]
        assert rec["degraded"] and "neo4j" in rec["degradedReasons"], rec
        assert len(rec["items"]) == 5 and all(x["item"]["title"] for x in rec["items"]), rec  # from memory
    assert {_stored(r) for r in after("down", writes.values())} == {"JOURNAL"}

    # The API replays the journal by itself once Neo4j is back; then answers are whole again.
    def drained() -> bool:
        r = httpx.get(f"{api.url}/readyz", timeout=10)
        return r.status_code == 200 and r.json()["journal_pending_bytes"] == 0

    wait_for(drained, 60, "the journal to be replayed")
    accepted = sorted(r.body["data"]["recordInteraction"]["key"] for r in writes.values())
    found = stack.keys_found("burst-")
    assert len(found) == len(set(found)), "an interaction was written twice"
    assert sorted(found) == accepted
    assert _clicked(stack) == clicked_before + len(accepted)
    assert not (stack.var / "journal" / "dead-letter.jsonl").exists()
    journalled = sum(_stored(r) == "JOURNAL" for r in writes.values())
    print(f"{len(writes)} writes ({journalled} journalled), {len(reads)} reads; "
          f"Neo4j down {marks['starting'] - marks['down']:.1f}s, restart {marks['up'] - marks['starting']:.1f}s")

    async def fresh() -> list[Reply]:
        async with httpx.AsyncClient(timeout=15) as client:
            return [await gql(client, api.url, stack.key, RECOMMEND, {"u": f"u{n}"}) for n in range(5)]

    for r in run(fresh()):
        assert r.ok and not r.body["data"]["recommendations"]["degraded"], r.body


def _clicked(stack: Stack) -> int:
    with stack.store() as st:
        return int(st.counts().get("CLICKED", 0))
