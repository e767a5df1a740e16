"""The API process SIGKILLed in the middle of a burst of writes: every interaction it acknowledged
is in Neo4j once the API is back, whether it had been written at once (Neo4j up) or only to the
journal (Neo4j down at the time, the journal replayed by the next API process)."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.harness import (
    RECOMMEND,
    RECORD,
    ApiProcess,
    Reply,
    Stack,
    gql,
    interaction,
    run,
    wait_for,
)


def _burst_then_kill(api: ApiProcess, key: str, prefix: str, kill_after: int, workers: int = 4,
                     timeout: float = 60.0) -> dict[int, Reply]:
    """Writes from ``workers`` concurrent clients; SIGKILL the API once ``kill_after`` were
    acknowledged, while requests are in flight. Returns every request's reply by number."""
    replies: dict[int, Reply] = {}
    counter = iter(range(10**9))
    deadline = time.monotonic() + timeout

    async def go() -> None:
        killed = asyncio.Event()

        async def writer(client: httpx.AsyncClient) -> None:
            while True:  # every writer keeps writing until the API is gone: the kill lands mid-request
                if time.monotonic() > deadline:
                    failed = [r.body for r in replies.values() if not r.ok][:2]
                    raise AssertionError(f"{kill_after} writes were not acknowledged in {timeout:.0f}s: {failed}")
                n = next(counter)
                replies[n] = r = await gql(client, api.url, key, RECORD, {"i": interaction(n, prefix=prefix)})
                if r.status == 0:
                    return
                if sum(x.ok for x in replies.values()) >= kill_after and not killed.is_set():
                    killed.set()
                    asyncio.get_running_loop().call_soon(api.kill)  # while the other writers wait for answers

        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(*(writer(client) for _ in range(workers)))

    run(go())
    return replies


def _acked(replies: dict[int, Reply]) -> dict[str, str]:
    return {r.body["data"]["recordInteraction"]["key"]: r.body["data"]["recordInteraction"]["stored"]
            for r in replies.values() if r.ok}


async def _read(api: ApiProcess, key: str) -> Reply:
    async with httpx.AsyncClient(timeout=10) as client:
        return await gql(client, api.url, key, RECOMMEND, {"u": "u1"})


def _drained(api: ApiProcess) -> bool:
    r = httpx.get(f"{api.url}/readyz", timeout=5)
    return r.status_code == 200 and r.json()["journal_pending_bytes"] == 0


def test_api_killed_mid_burst_loses_no_acknowledged_interaction(stack: Stack) -> None:
    # 1. Neo4j up: acknowledged writes were committed before the answer.
    first = stack.api()
    replies = _burst_then_kill(first, stack.key, "direct", kill_after=150)
    acked = _acked(replies)
    assert first.proc is not None and first.proc.returncode == -9
    assert len(acked) >= 150 and set(acked.values()) == {"DIRECT"}
    sent = {f"direct-{n}" for n in replies}
    found = stack.keys_found("direct-")
    assert len(found) == len(set(found))  # nothing twice
    assert set(acked) <= set(found) <= sent  # every acknowledged one; in-flight ones may or may not be there

    # 2. Neo4j down: acknowledged writes are only in the journal when the API dies.
    second = stack.api()
    # A key this process has checked lately is still honoured while Neo4j is away (api.auth).
    assert run(_read(second, stack.key)).ok
    stack.server.kill()
    replies = _burst_then_kill(second, stack.key, "journal", kill_after=150)
    acked = _acked(replies)
    assert len(acked) >= 150 and set(acked.values()) == {"JOURNAL"}
    stack.server.start()
    third = stack.api()  # the same var dir, hence the same journal: it replays it
    wait_for(lambda: _drained(third), 60, "the journal to be replayed")
    found = stack.keys_found("journal-")
    assert len(found) == len(set(found))
    assert set(acked) <= set(found) <= {f"journal-{n}" for n in replies}
    assert not (stack.var / "journal" / "dead-letter.jsonl").exists()
