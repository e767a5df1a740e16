"""The engine's background loop (graphrec.engine.engine._every): a period counted from each
call's end, or from its start (the state polls), never overlapping calls."""

from __future__ import annotations

import asyncio
import statistics

from graphrec.engine.engine import _every


def starts(period: float, takes: float, from_start: bool, calls: int = 5) -> list[float]:
    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        began: list[float] = []
        running = 0

        async def fn() -> None:
            nonlocal running
            running += 1
            assert running == 1  # never two at once
            began.append(loop.time())
            await asyncio.sleep(takes)
            running -= 1

        task = asyncio.create_task(_every(period, fn, first=0.0, from_start=from_start))
        while len(began) < calls:
            await asyncio.sleep(0.01)
        task.cancel()
        return began

    return asyncio.run(go())


def gaps(times: list[float]) -> float:
    return statistics.median(b - a for a, b in zip(times, times[1:], strict=False))


def test_the_period_counts_from_the_start_when_asked() -> None:
    assert gaps(starts(0.3, 0.2, from_start=True)) < 0.42  # 0.3: the call's 0.2 s is inside the period
    assert gaps(starts(0.3, 0.2, from_start=False)) > 0.45  # 0.5: the period after the call's end


def test_a_call_longer_than_the_period_is_followed_at_once() -> None:
    assert gaps(starts(0.2, 0.3, from_start=True, calls=4)) < 0.42  # 0.3 (counted from the end: 0.5)
