"""What a client sees when something goes wrong: one table from errors to ``extensions.code``
and to the HTTP status of an answer refused before GraphQL ran.

=================  ======  =========================================================
code               HTTP    meaning
=================  ======  =========================================================
BAD_USER_INPUT     400     the request is wrong (malformed HTTP or JSON, a bad
                           variable, over the query cost budget, invalid input);
                           inside a GraphQL answer (HTTP 200) for a field's input
UNSUPPORTED_MEDIA  415     the body is not ``application/json``
METHOD_NOT_ALLOWED 405     anything but POST on ``/graphql`` (GET only for GraphiQL)
UNAUTHENTICATED    401     no, a malformed, unknown or revoked API key
FORBIDDEN          403     the key lacks the scope, or the origin is not allowed
NOT_FOUND          200     an unknown id where one is required
RATE_LIMITED       429     too many requests or too much query cost (``Retry-After``)
OVERLOADED         503     too many requests in progress, or connections open
                           (``api.max_connections``) (``Retry-After``)
UNAVAILABLE        503     Neo4j cannot be reached (its breaker is open, or the key
                           lookup failed); retry later (``Retry-After``)
INTERNAL           500     a bug: logged, never described to the client
=================  ======  =========================================================

``code_of`` is the only place an exception becomes a code: graphrec's errors carry theirs
(``GraphrecError.code``); the few whose class says "INTERNAL" but which are the service's state
rather than a bug are overridden here.
"""

from __future__ import annotations

import math

from graphql import GraphQLError
from starlette.responses import JSONResponse

from api import metrics as M
from graphrec.core.errors import GraphrecError, GraphStoreUnavailable, VectorStoreUnavailable
from graphrec.engine.breaker import CircuitOpen

# Errors that are the service's state, not a bug (their class code is INTERNAL).
STATE_CODES: dict[type[BaseException], str] = {
    GraphStoreUnavailable: "UNAVAILABLE",
    VectorStoreUnavailable: "UNAVAILABLE",
    CircuitOpen: "UNAVAILABLE",
}

STATUS: dict[str, int] = {
    "BAD_USER_INPUT": 400, "UNSUPPORTED_MEDIA": 415, "METHOD_NOT_ALLOWED": 405, "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403, "NOT_FOUND": 404, "RATE_LIMITED": 429, "OVERLOADED": 503, "UNAVAILABLE": 503, "INTERNAL": 500,
}

# Codes whose answer tells the client when to come back.
RETRYABLE = frozenset({"RATE_LIMITED", "OVERLOADED", "UNAVAILABLE"})


def code_of(exc: BaseException | None) -> str:
    """The client-facing code of an error raised while serving a request. ``None`` (a GraphQL
    syntax, validation or variable error, which has no original exception) and graphql-core's own
    coercion errors are the request's fault: BAD_USER_INPUT."""
    if exc is None or isinstance(exc, GraphQLError):
        return "BAD_USER_INPUT"
    for cls in type(exc).__mro__:
        if cls in STATE_CODES:
            return STATE_CODES[cls]
    if isinstance(exc, GraphrecError):
        return exc.code
    return "INTERNAL"


def error_response(code: str, message: str, status: int | None = None, retry_after: float | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A GraphQL-shaped JSON error for a request refused before GraphQL ran. Every refusal with a
    retryable code carries ``Retry-After`` (whole seconds, at least 1)."""
    M.ERRORS.labels(code).inc()
    resp = JSONResponse({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status or STATUS.get(code, 400), headers=headers)
    if code in RETRYABLE or retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, math.ceil(retry_after or 1)))
    return resp


__all__ = ["code_of", "error_response", "STATUS", "RETRYABLE"]
