"""The HTTP envelope of ``/graphql``: what a request must look like before GraphQL sees it.

One JSON object per POST (``application/json``; media types compare case-insensitively, RFC 9110
§8.3.1) with ``query`` a string, ``variables`` an object or null, ``operationName`` a string or
null, ``extensions`` an object or null. Everything else is refused here with a JSON error and a
4xx status, never handed to Strawberry (whose refusals were plain text or, for some, a 500 with a
traceback in the log): a batch (JSON array), an APQ-only body (a ``persistedQuery`` hash with no
query: persisted queries are not supported), invalid or empty JSON, ``NaN``/``Infinity`` (not
JSON, though Python's parser takes them), another content type.

Cross-origin requests (a widget on a shop's pages calling the API on another host) are answered
with CORS headers for any origin: the API's credentials are bearer keys, never cookies, so a page
can only use a key it was given, and an ``interact`` key only from its own origins (api/gate.py).
``Retry-After`` is exposed to scripts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class BadRequest(Exception):
    """A request refused before GraphQL: ``code`` and ``status`` as in api/errors.py."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def _no_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number")


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def parse_operation(content_type: str | None, body: bytes) -> Operation:
    """The one GraphQL operation of a POST body, or :class:`BadRequest`."""
    if media_type(content_type) != "application/json":
        raise BadRequest(f"Content-Type must be application/json, got {media_type(content_type) or 'none'!r}",
                         "UNSUPPORTED_MEDIA", 415)
    if not body.strip():
        raise BadRequest("the request body is empty (expected a JSON object with a query)")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc.__class__.__name__}") from None
    if isinstance(data, list):
        raise BadRequest("batched operations (a JSON array) are not supported: send one operation per request")
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object with a query")
    query, variables, name, ext = (data.get(k) for k in ("query", "variables", "operationName", "extensions"))
    if ext is not None and not isinstance(ext, dict):
        raise BadRequest("extensions must be an object or null")
    if query is None and ext and "persistedQuery" in ext:
        raise BadRequest("persisted queries are not supported: send the query text")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("query must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("variables must be an object or null")
    if name is not None and not isinstance(name, str):
        raise BadRequest("operationName must be a string or null")
    return Operation(query, variables, name, ext)


def cors_preflight(request: Request) -> Response:
    """The answer to a browser's ``OPTIONS`` before a cross-origin POST."""
    resp = Response(status_code=204, headers={"Access-Control-Allow-Methods": "POST",
                                              "Access-Control-Allow-Headers": "authorization, content-type",
                                              "Access-Control-Max-Age": "600", "Allow": "POST"})
    return with_cors(request, resp)


def with_cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Vary"] = "Origin"
    return response


__all__ = ["BadRequest", "Operation", "parse_operation", "media_type", "cors_preflight", "with_cors"]
