"""API keys.

A key looks like ``grk_<id>_<secret>``; only ``sha256(key)`` is stored (``(:ApiKey)`` in Neo4j)
and compared in constant time. Lookups are cached for ``key_cache_ttl_s`` (bounded), so a
revocation takes effect within seconds across every API process. Keys are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from graphrec.core.errors import GraphrecError, GraphStoreUnavailable
from graphrec.engine.cache import TTLCache

SCOPES = ("read", "write", "interact")
# What each scope lets a key do: `interact` (for keys in public HTML, e.g. the widget) records
# interactions and nothing else, from allowed origins only (api/app.py), rate limited per client
# address (api.interact_per_s).
KEY_ID = re.compile(r"[0-9a-f]{12}")  # secrets.token_hex(6): anything else is refused unlooked-up


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
    origins: tuple[str, ...] = ()  # an interact key's own allowed origins (empty: api.interact_origins)

    def require(self, scope: str, *alternatives: str) -> None:
        if scope not in self.scopes and self.scopes.isdisjoint(alternatives):
            if self.key_id is None:
                raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
            raise Forbidden(f"this API key lacks the {scope!r} scope")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    kid = secrets.token_hex(6)
    return kid, f"grk_{kid}_{secrets.token_urlsafe(32)}"


def create_key(store: Any, scopes: list[str], name: str = "", origins: list[str] | None = None) -> tuple[str, str]:
    """Store a new key (sync store); returns ``(id, key)``: the key is shown once, never stored.
    ``origins`` (``https://shop.example``) restrict an ``interact`` key to pages of those sites."""
    bad = set(scopes) - set(SCOPES)
    if bad or not scopes:
        raise GraphrecError(f"scopes must be among {SCOPES}, got {sorted(scopes)}")
    origins = [o.strip().rstrip("/") for o in origins or [] if o.strip()]
    if origins and "interact" not in scopes:
        raise GraphrecError("--origins applies to keys with the interact scope")
    for o in origins:
        if not re.fullmatch(r"https?://[^/\s]+", o):
            raise GraphrecError(f"an origin is scheme://host[:port], got {o!r}")
    kid, key = new_key()
    store.write("api/create_key", id=kid, hash=_hash(key), scopes=sorted(set(scopes)), key_name=name,
                origins=origins, now=time.time())
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
    newest. Keys never seen are refused (the app answers 503 UNAVAILABLE).

    Key ids that are not in the graph are remembered for ``unknown_ttl_s`` (bounded), and ids that
    cannot be ours (not 12 hex digits) are refused without a lookup: neither costs a round trip
    again. ``lookups`` counts the round trips."""

    def __init__(self, store: Any, ttl_s: float = 5.0, maxsize: int = 10_000, stale_s: float = 3600.0,
                 lookup_timeout_s: float = 1.0, unknown_ttl_s: float = 60.0) -> None:
        self.store = store
        self.cache: TTLCache[dict[str, Any] | None] = TTLCache(maxsize, ttl_s)
        self.known: TTLCache[dict[str, Any]] = TTLCache(maxsize, stale_s)
        self.unknown: TTLCache[bool] = TTLCache(maxsize, unknown_ttl_s)
        self.lookup_timeout_s = lookup_timeout_s
        self.lookups = 0
        self._inflight: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}  # bounded by the lookups out

    def _remember(self, kid: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            self.unknown.put(kid, True)
            return MISSING
        rec = rows[0]
        self.unknown.discard(kid)
        self.cache.put(kid, rec)
        self.known.put(kid, rec)
        return rec

    async def _lookup(self, kid: str) -> dict[str, Any]:
        """The key's record from the graph; requests for the same id while its lookup is out wait
        for that one. A lookup that outlives ``lookup_timeout_s`` is abandoned, not cancelled (that
        would kill its pooled connection): its answer, if it comes, still refreshes the cache."""
        task = self._inflight.get(kid)
        if task is None:
            self.lookups += 1
            task = asyncio.ensure_future(self.store.read("api/get_key", id=kid))
            self._inflight[kid] = task

            def settle(t: asyncio.Future[list[dict[str, Any]]]) -> None:
                self._inflight.pop(kid, None)
                if not t.cancelled() and t.exception() is None:
                    self._remember(kid, t.result())

            task.add_done_callback(settle)
        done, _ = await asyncio.wait({task}, timeout=self.lookup_timeout_s)
        if not done:
            raise GraphStoreUnavailable("the API key lookup timed out")
        return self._remember(kid, task.result())

    @staticmethod
    def key_id(header: str | None) -> str | None:
        """The key id of a well-formed ``Bearer grk_<id>_<secret>`` header (None when absent),
        or Unauthenticated."""
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        kid = key.split("_", 2)[1] if key.startswith("grk_") and key.count("_") >= 2 else ""
        if scheme.lower() != "bearer" or not KEY_ID.fullmatch(kid):
            raise Unauthenticated("malformed Authorization header (expected: Bearer grk_...)")
        return kid

    def is_verified(self, kid: str) -> bool:
        """Was this key id found to be ours within ``stale_s``? (Its record may be older than
        ``ttl_s``, so verifying it may still take a lookup: at most one per ``ttl_s`` per id.)"""
        return self.known.peek(kid) is not None

    def looking_up(self, kid: str) -> bool:
        """Is a lookup of this key id out now? (Another request for it waits for that one.)"""
        return kid in self._inflight

    async def verify(self, header: str | None, anonymous_read: bool) -> Principal:
        kid = self.key_id(header)
        if kid is None:
            return Principal(None, frozenset({"read"}) if anonymous_read else frozenset())
        if self.unknown.get(kid):
            raise Unauthenticated("unknown API key")
        rec = self.cache.get(kid)
        if rec is None:
            try:
                rec = await self._lookup(kid)
            except GraphStoreUnavailable:
                rec = self.known.get(kid)
                if rec is None:
                    raise
                self.cache.put(kid, rec)  # ask the graph again after ttl_s, not on every request
        _, _, key = header.partition(" ")  # type: ignore[union-attr]  # checked by key_id
        ok = hmac.compare_digest(rec["hash"].encode(), _hash(key).encode())
        if not ok or rec.get("missing"):
            raise Unauthenticated("unknown API key")
        if rec["revoked_at"] is not None:
            raise Unauthenticated("this API key was revoked")
        scopes = frozenset(rec["scopes"]) | ({"read"} if anonymous_read else set())  # anyone may read then
        return Principal(kid, scopes, tuple(rec.get("origins") or ()))


MISSING: dict[str, Any] = {"hash": "", "scopes": [], "revoked_at": None, "missing": True}

