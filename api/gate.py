"""Admission of a ``/graphql`` POST, in order, each step refusing with a JSON error
(api/errors.py) before anything costly runs:

1. the credentials: an address that has spent its refused-credentials budget
   (``AddressGuard``) gets 429 at once unless its key was verified before (within
   ``KeyVerifier.stale_s``) or is being looked up for another request; otherwise one token of the
   budget is taken, the key is verified (401 / 503 UNAVAILABLE while Neo4j cannot be asked), and
   the token is given back if the key was good (a key that passed without a token is charged
   when it is refused);
2. an ``interact`` key: its origin (403) and its own rate per client address;
3. the rate limit per key (anonymous: per address) (429);
4. the body, read up to ``api.max_body_bytes`` (413);
5. the envelope: one JSON operation (api/http.py: 400 / 415).

Every 429 and 503 carries ``Retry-After``.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from api.auth import KeyVerifier, Principal, Unauthenticated
from api.errors import error_response
from api.http import BadRequest, Operation, parse_operation
from api.limits import AddressGuard, RateLimiter
from graphrec.core.config import ApiSettings
from graphrec.core.errors import GraphStoreUnavailable


class Gate:
    def __init__(self, cfg: ApiSettings) -> None:
        self.cfg = cfg
        self.limiter = RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst)
        self.interact = RateLimiter(cfg.interact_per_s, cfg.interact_burst)
        self.guard = AddressGuard(cfg.auth_failures_per_s, cfg.auth_failures_burst)
        self.verifier: KeyVerifier | None = None  # set at start-up (it needs the key store)

    async def admit(self, request: Request) -> tuple[Principal, Operation] | Response:
        cfg = self.cfg
        addr = request.client.host if request.client else "unknown"
        principal = await self._authenticate(request, addr)
        if isinstance(principal, Response):
            return principal
        if "interact" in principal.scopes and not principal.scopes & {"write"}:
            origin = request.headers.get("origin", "").rstrip("/")
            allowed = principal.origins or tuple(cfg.interact_origins)
            if origin not in allowed:
                return error_response("FORBIDDEN", f"origin {origin or '(none)'!r} is not allowed for this key")
            who = f"{principal.key_id}@{addr}"
            if not self.interact.allow(who):
                return error_response("RATE_LIMITED", "rate limit exceeded", retry_after=self.interact.retry_after(who))
        who = principal.key_id or addr
        if not self.limiter.allow(who):
            return error_response("RATE_LIMITED", "rate limit exceeded", retry_after=self.limiter.retry_after(who))
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cfg.max_body_bytes:
            return error_response("BAD_USER_INPUT", f"request body over {cfg.max_body_bytes} bytes", 413)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > cfg.max_body_bytes:
                    return error_response("BAD_USER_INPUT", f"request body over {cfg.max_body_bytes} bytes", 413)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        request._body = bytes(body)  # re-readable by Strawberry
        try:
            return principal, parse_operation(request.headers.get("content-type"), request._body)
        except BadRequest as exc:
            return error_response(exc.code, str(exc), exc.status)

    async def _authenticate(self, request: Request, addr: str) -> Principal | Response:
        assert self.verifier is not None
        header = request.headers.get("authorization")
        try:
            kid = self.verifier.key_id(header)
        except Unauthenticated:
            kid = ""  # malformed: refused below, without a lookup
        # Passes the address's budget: a key verified before, a key whose lookup is already out
        # (this request waits for it, no new lookup), or no key where anonymous reads are on.
        passes = (self.verifier.is_verified(kid) or self.verifier.looking_up(kid)) if kid \
            else kid is None and self.cfg.anonymous_read
        if not passes:
            # Take the address's token before the lookup, not after it fails: requests sent all at
            # once would otherwise all pass this check while the first lookups are still out.
            if self.guard.blocked(addr):
                return self._too_many_failures(addr)
            self.guard.failed(addr)
        try:
            principal = await self.verifier.verify(header, self.cfg.anonymous_read)
        except Unauthenticated as exc:
            if passes:
                self.guard.failed(addr)
            return error_response("UNAUTHENTICATED", str(exc))
        except GraphStoreUnavailable:
            # The token stays spent: a lookup was tried (and, Neo4j slow, may still be running), so
            # made-up keys cannot buy unlimited lookup attempts while Neo4j is slow or away.
            return error_response("UNAVAILABLE", "authentication is unavailable (the key store cannot be reached); "
                                  "retry later", retry_after=5)
        if not principal.scopes:
            if passes:
                self.guard.failed(addr)
            return error_response("UNAUTHENTICATED", "an API key is required (Authorization: Bearer <key>)")
        if not passes:
            self.guard.refund(addr)  # a good key after all
        return principal

    def _too_many_failures(self, addr: str) -> Response:
        return error_response("RATE_LIMITED", "too many requests with missing or invalid credentials from this address",
                              retry_after=self.guard.retry_after(addr))


__all__ = ["Gate"]
