"""Per-caller limits, each a bounded, expiring token bucket per key (``TTLCache``): no limit here
can grow without bound, whatever a flood of callers or key ids does.

- ``RateLimiter``: requests per API key (anonymous callers: per client address).
- ``AddressGuard``: requests that are refused for their credentials (no key where one is needed,
  a malformed, unknown or revoked key) per client address. Once an address has spent its budget,
  its requests with a key not verified before are refused with 429 before the key is looked up,
  so a flood of made-up keys costs no Neo4j lookups; keys verified before still pass. The token
  is taken before the lookup (and given back if the key is good), so requests sent all at once
  cannot look up more keys than the budget.
- ``CostBudget``: query cost (api/cost.py) per API key per window.
"""

from __future__ import annotations

import math
import time

from graphrec.engine.cache import TTLCache


class RateLimiter:
    """A token bucket per caller, bounded in the number of callers. ``allow(who, n)`` takes ``n``
    tokens when there are that many; ``retry_after(who, n)`` is how long until there will be."""

    def __init__(self, rate: float, burst: float, maxsize: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.buckets: TTLCache[tuple[float, float]] = TTLCache(maxsize, ttl_s=max(60.0, burst / max(rate, 1e-9)))

    def tokens(self, who: str, now: float | None = None) -> float:
        t = time.monotonic() if now is None else now
        b = self.buckets.peek(who)
        return self.burst if b is None else min(self.burst, b[0] + (t - b[1]) * self.rate)

    def allow(self, who: str, now: float | None = None, n: float = 1.0) -> bool:
        t = time.monotonic() if now is None else now
        tokens = self.tokens(who, t)
        if tokens < n:
            self.buckets.put(who, (tokens, t))
            return False
        self.buckets.put(who, (tokens - n, t))
        return True

    def charge(self, who: str, n: float = 1.0, now: float | None = None) -> None:
        """Take ``n`` tokens (down to zero) without asking."""
        t = time.monotonic() if now is None else now
        self.buckets.put(who, (max(0.0, self.tokens(who, t) - n), t))

    def give_back(self, who: str, n: float = 1.0, now: float | None = None) -> None:
        """Return ``n`` tokens taken for something that did not count (up to the burst)."""
        t = time.monotonic() if now is None else now
        self.buckets.put(who, (min(self.burst, self.tokens(who, t) + n), t))

    def retry_after(self, who: str, n: float = 1.0, now: float | None = None) -> int:
        """Whole seconds until ``n`` tokens are there (at least 1)."""
        missing = max(0.0, min(n, self.burst) - self.tokens(who, now))
        return max(1, math.ceil(missing / max(self.rate, 1e-9)))


class AddressGuard:
    """Refused-credential requests per client address (``auth_failures_per_s``, burst
    ``auth_failures_burst``)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.buckets = RateLimiter(rate, burst)

    def blocked(self, address: str) -> bool:
        return self.buckets.tokens(address) < 1.0

    def failed(self, address: str) -> None:
        self.buckets.charge(address)

    def refund(self, address: str) -> None:
        """Give back the token taken before a lookup that did not fail the caller."""
        self.buckets.give_back(address)

    def retry_after(self, address: str) -> int:
        return self.buckets.retry_after(address)


class CostBudget:
    """Query cost per caller per window: ``limit`` cost units every ``window_s`` seconds, refilled
    continuously (a token bucket of ``limit`` tokens at ``limit / window_s`` per second)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.buckets = RateLimiter(limit / window_s, limit)

    def spend(self, who: str, cost: int) -> bool:
        return self.buckets.allow(who, n=float(cost))

    def left(self, who: str) -> int:
        return int(self.buckets.tokens(who))

    def retry_after(self, who: str, cost: int) -> int:
        return self.buckets.retry_after(who, float(cost))


__all__ = ["RateLimiter", "AddressGuard", "CostBudget"]
