"""Pure helpers of the benchmarks (the benchmarks themselves run outside the suite)."""

from __future__ import annotations

from bench.loadgen import Outcome, p99_by_window


def test_p99_by_window_groups_requests_by_when_they_were_due() -> None:
    # 100 requests in each of three 10 s windows; the second window has a burst of 2 slow ones.
    out = Outcome()
    for w in range(3):
        for k in range(100):
            out.sent_at_s.append(w * 10 + k * 0.1)
            out.latency_ms.append(500.0 if (w == 1 and k >= 98) else 10.0 + k * 0.01)
    got = p99_by_window(out, 10.0)
    assert len(got) == 3 and got[1] == 500.0 and got[0] == got[2] == 11.0  # nearest-rank p99 of 10.00..10.99, to 0.1 ms
    assert p99_by_window(Outcome()) == []
