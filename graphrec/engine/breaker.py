"""A circuit breaker per store: stop hammering a dead store, probe it back.

closed ──(``failures`` consecutive errors)──▶ open ──(``reset_s`` elapsed)──▶ half-open
half-open: one probe call is let through; success closes, failure re-opens.

Only "the store is unavailable" counts as a failure: a query the store refused (a constraint, a
bad parameter) is an answer, and the caller reports it as a success (see Guard.neo4j); a budget
that ran out on the caller's side (a TimeoutError) is no verdict either way. Every caller reports its
probe's outcome (or gives it back with :meth:`release`); a probe that never reports back all the
same expires after ``probe_timeout_s`` (longer than any call may take: a probe still waiting on a
slow store must not be joined by more), and the next caller probes again: a lost probe must not
hold the breaker open for good while the store is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("graphrec.engine")


class CircuitOpen(Exception):
    """Raised instead of calling a store whose breaker is open."""


class Breaker:
    def __init__(self, name: str, failures: int = 3, reset_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 probe_timeout_s: float = 120.0) -> None:
        self.name = name
        self.threshold = failures
        self.reset_s = reset_s
        self.probe_timeout_s = probe_timeout_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.probe_at = 0.0  # when the current probe was let through
        self.opened = 0  # times it went from closed to open (for /metrics and /readyz)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.reset_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one probe at a time (a probe out for
        longer than ``probe_timeout_s`` is taken as lost)."""
        st = self.state
        if st == "closed":
            return True
        if st == "half-open" and (not self.probing or self.clock() - self.probe_at >= self.probe_timeout_s):
            self.probing = True
            self.probe_at = self.clock()
            return True
        return False

    def release(self) -> None:
        """Give back a probe that :meth:`allow` granted but that was not used for a call (or whose
        call ended with no verdict on the store)."""
        self.probing = False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self, cause: BaseException | None = None) -> None:
        """One more consecutive failure (``cause``: the error, named in the log when this one
        opens the breaker: an operator sees why answers went degraded)."""
        self.failures += 1
        self.probing = False
        if self.failures >= self.threshold or self.opened_at is not None:
            if self.opened_at is None:
                self.opened += 1
                log.warning("%s circuit open after %d consecutive failures (the last: %s); probing again in %.0f s",
                            self.name, self.failures, _named(cause), self.reset_s)
            self.opened_at = self.clock()


def _named(exc: BaseException | None) -> str:
    if exc is None:
        return "not given"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
