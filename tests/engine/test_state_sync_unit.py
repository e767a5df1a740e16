"""Held user states: when one may be served (the poll bookkeeping), which a poll marks stale, and
the cache's in-place replace. Pure logic, a fake clock; the integration test with two engines on
one graph is tests/engine/test_state_sync.py."""

from __future__ import annotations

from graphrec.engine.cache import TTLCache
from graphrec.engine.user_state import NO_STAMP, Sync, stale


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_fresh_only_after_a_poll_and_within_twice_the_period() -> None:
    clock = Clock()
    st = Sync(every_s=1.0, overlap_s=5.0, clock=clock)
    assert not st.fresh()  # no poll yet: nothing known
    st.applied(sent_at=clock(), server_now=5000.0, changed={})
    assert st.fresh() and st.since == 4995.0 and st.gen == 1  # the server's clock, minus the overlap
    clock.t += 2.0
    assert st.fresh()
    clock.t += 0.01  # polls failed for more than twice the period: held state is not served
    assert not st.fresh()
    st.applied(sent_at=clock(), server_now=5003.0, changed={})
    assert st.fresh() and st.since == 4998.0


def test_polling_off_never_serves() -> None:
    st = Sync(every_s=0.0, overlap_s=5.0, clock=Clock())
    st.applied(sent_at=100.0, server_now=1.0, changed={})
    assert not st.fresh()


def test_servable_depends_on_the_polls_applied_during_the_read() -> None:
    st = Sync(every_s=1.0, overlap_s=5.0, clock=Clock())
    assert not st.servable("u", 10.0, 0)  # read before any poll: writes before the window unknown
    st.applied(100.0, 50.0, {})
    assert st.servable("u", 10.0, 1)  # no poll during the read
    st.applied(100.5, 51.0, {"u": 12.0, "v": 9.0})
    assert not st.servable("u", 10.0, 1)  # the poll during the read saw a newer write of u
    assert st.servable("u", 12.0, 1)  # ... which the read already had
    assert st.servable("v", 10.0, 1) and st.servable("w", NO_STAMP, 1)
    st.applied(101.0, 52.0, {})
    assert not st.servable("w", NO_STAMP, 1)  # two polls during the read: not known


def test_stale_marks_older_states_and_keeps_them_for_degraded_answers() -> None:
    held: TTLCache[tuple[bytes, float, bool]] = TTLCache(10, 600.0)
    held.put("a", (b"A", 10.0, True))
    held.put("b", (b"B", 20.0, True))
    held.put("c", (b"C", NO_STAMP, True))
    assert stale(held, [("a", 11.0), ("b", 20.0), ("c", 1.0), ("nobody", 5.0)]) == 2
    assert held.peek("a") == (b"A", 10.0, False)  # a newer write: kept, not served
    assert held.peek("b") == (b"B", 20.0, True)  # the state already has that write
    assert held.peek("c") == (b"C", NO_STAMP, False)  # read without a stamp: any stamp is newer
    assert stale(held, [("b", None)]) == 1 and held.peek("b") == (b"B", 20.0, False)  # "whatever its stamp"


def test_replace_keeps_time_and_recency() -> None:
    clock = Clock()
    c: TTLCache[str] = TTLCache(2, 10.0, clock=clock)
    c.put("x", "1")
    clock.t += 1
    c.put("y", "2")
    clock.t += 9.5
    c.replace("x", "1b")
    c.replace("absent", "z")
    assert c.peek("x") is None  # its time was kept: expired
    assert c.peek("absent") is None and len(c) == 2
    c.put("z", "3")  # x, still the least recently used, goes first
    assert [k for k, _ in c.items()] == ["y", "z"]
