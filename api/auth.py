"""API keys and rate limits.

A key looks like ``grk_<id>_<secret>``; only ``sha256(key)`` is stored (``(:ApiKey)`` in Neo4j)
and compared in constant time. Lookups are cached for ``key_cache_ttl_s`` (bounded), so a
revocation takes effect within seconds across every API process. Keys are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from graphrec.engine.cache import TTLCache
from graphrec.errors import GraphrecError, GraphStoreUnavailable

SCOPES = ("read", "write")


class Unauthenticated(GraphrecError):
    code = "UNAUTHENTICATED"


class Forbidden(GraphrecError):
    code = "FORBIDDEN"


class RateLimited(GraphrecError):
    code = "RATE_LIMITED"


@dataclass(frozen=True)
class Principal:
    key_id: str | None  # None: anonymous
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            if self.key_id is None:
                raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
            raise Forbidden(f"this API key lacks the {scope!r} scope")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    kid = secrets.token_hex(6)
    return kid, f"grk_{kid}_{secrets.token_urlsafe(32)}"


def create_key(store: Any, scopes: list[str], name: str = "") -> tuple[str, str]:
    """Store a new key (sync store); returns ``(id, key)``: the key is shown once, never stored."""
    bad = set(scopes) - set(SCOPES)
    if bad or not scopes:
        raise GraphrecError(f"scopes must be among {SCOPES}, got {sorted(scopes)}")
    kid, key = new_key()
    store.write("api/create_key", id=kid, hash=_hash(key), scopes=sorted(set(scopes)), key_name=name, now=time.time())
    return kid, key


def revoke_key(store: Any, kid: str) -> bool:
    return bool(store.write("api/revoke_key", id=kid, now=time.time()))


def list_keys(store: Any) -> list[dict[str, Any]]:
    return store.read("api/list_keys")


class KeyVerifier:
    """Verifies bearer keys against the graph through a short-lived bounded cache.

    While the graph cannot be reached (or does not answer within ``lookup_timeout_s``), a key seen
    in the last ``stale_s`` seconds is judged on its last known record (stale-if-error): an outage
    of Neo4j must not refuse every caller, since reads still answer (degraded) and writes go to
    the journal. Nothing can be revoked while Neo4j is away, so the last known record is also the
    newest. Keys never seen are refused (the app answers 503)."""

    def __init__(self, store: Any, ttl_s: float = 5.0, maxsize: int = 10_000, stale_s: float = 3600.0,
                 lookup_timeout_s: float = 1.0) -> None:
        self.store = store
        self.cache: TTLCache[dict[str, Any] | None] = TTLCache(maxsize, ttl_s)
        self.known: TTLCache[dict[str, Any]] = TTLCache(maxsize, stale_s)
        self.lookup_timeout_s = lookup_timeout_s

    def _remember(self, kid: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        rec = rows[0] if rows else {"hash": "", "scopes": [], "revoked_at": None, "missing": True}
        self.cache.put(kid, rec)
        self.known.put(kid, rec)
        return rec

    async def _lookup(self, kid: str) -> dict[str, Any]:
        """The key's record from the graph. A lookup that outlives ``lookup_timeout_s`` is
        abandoned, not cancelled (that would kill its pooled connection): its answer, if it comes,
        still refreshes the cache."""
        task = asyncio.ensure_future(self.store.read("api/get_key", id=kid))
        done, _ = await asyncio.wait({task}, timeout=self.lookup_timeout_s)
        if not done:
            def late(t: asyncio.Future[list[dict[str, Any]]]) -> None:
                if not t.cancelled() and t.exception() is None:
                    self._remember(kid, t.result())

            task.add_done_callback(late)
            raise GraphStoreUnavailable("the API key lookup timed out")
        return self._remember(kid, task.result())

    async def verify(self, header: str | None, anonymous_read: bool) -> Principal:
        if not header:
            return Principal(None, frozenset({"read"}) if anonymous_read else frozenset())
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.startswith("grk_") or key.count("_") < 2:
            raise Unauthenticated("malformed Authorization header (expected: Bearer grk_...)")
        kid = key.split("_", 2)[1]
        rec = self.cache.get(kid)
        if rec is None:
            try:
                rec = await self._lookup(kid)
            except GraphStoreUnavailable:
                rec = self.known.get(kid)
                if rec is None:
                    raise
                self.cache.put(kid, rec)  # ask the graph again after ttl_s, not on every request
        ok = hmac.compare_digest(rec["hash"].encode(), _hash(key).encode())
        if not ok or rec.get("missing"):
            raise Unauthenticated("unknown API key")
        if rec["revoked_at"] is not None:
            raise Unauthenticated("this API key was revoked")
        return Principal(kid, frozenset(rec["scopes"]))


class RateLimiter:
    """A token bucket per caller (key id or client address), bounded in the number of callers."""

    def __init__(self, rate: float, burst: int, maxsize: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: TTLCache[list[float]] = TTLCache(maxsize, ttl_s=max(60.0, burst / max(rate, 1e-9)))

    def allow(self, who: str, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        b = self.buckets.get(who) or [float(self.burst), t]
        tokens = min(float(self.burst), b[0] + (t - b[1]) * self.rate)
        if tokens < 1.0:
            self.buckets.put(who, [tokens, t])
            return False
        self.buckets.put(who, [tokens - 1.0, t])
        return True
