"""A circuit breaker per store: stop hammering a dead store, probe it back.

closed ──(``failures`` consecutive errors)──▶ open ──(``reset_s`` elapsed)──▶ half-open
half-open: one probe call is let through; success closes, failure re-opens.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitOpen(Exception):
    """Raised instead of calling a store whose breaker is open."""


class Breaker:
    def __init__(self, name: str, failures: int = 3, reset_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.threshold = failures
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.reset_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one probe at a time."""
        st = self.state
        if st == "closed":
            return True
        if st == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def release(self) -> None:
        """Give back a probe that :meth:`allow` granted but that was not used for a call."""
        self.probing = False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self) -> None:
        self.failures += 1
        self.probing = False
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()
