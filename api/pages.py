"""The API's pages for people: GraphiQL (served with its own assets, offline), the Neo4j Browser
guide and style sheet, and the operator's dashboard.

``routes(state, settings)`` gives the Starlette routes; ``graphiql_page`` is what ``/graphql``
answers to a browser when ``api.graphiql`` is on. Example ids (a user with history, an item
linked to them) are read from the graph once a minute, so the examples run on any catalogue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.assets import ASSETS, assets_dir, missing
from graphrec.config import Settings

STATIC = Path(__file__).resolve().parent / "static"
EXAMPLES_TTL_S = 60.0

DEFAULT_QUERY = """\
# graphrec's GraphQL API: press the run button (Ctrl-Enter).
# The user id (Variables, below) is one from the graph.
query Recommendations($userId: ID!, $first: Int!) {
  recommendations(userId: $userId, first: $first) {
    requestId
    degraded
    modelVersion
    items { rank score sources reason item { id title categories } }
  }
}
"""

_MEDIA = {".js": "application/javascript", ".css": "text/css"}


class Examples:
    """Ids for the examples (GraphiQL's variables, the guide's parameters), read at most once a minute."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self._at = -EXAMPLES_TTL_S
        self._ids: dict[str, str] = {}

    async def ids(self) -> dict[str, str]:
        if time.monotonic() - self._at < EXAMPLES_TTL_S:
            return self._ids
        eng = self.state.get("engine")
        if eng is not None:
            try:
                rows = await eng.store.read("api/example_ids", timeout=5.0)
                self._ids = {k: str(v) for k, v in rows[0].items()} if rows else {}
            except Exception:  # noqa: BLE001 - Neo4j down: the examples keep the last ids
                pass
        self._at = time.monotonic()
        return self._ids


async def graphiql_page(examples: Examples, settings: Settings) -> Response:
    lacking = missing(settings.cache_dir)
    if lacking:
        return HTMLResponse(
            "<!doctype html><title>GraphiQL is not installed</title><p>GraphiQL's files are not installed "
            f"in {assets_dir(settings.cache_dir)} (missing: {', '.join(lacking)}): run <code>make setup</code> "
            "(or <code>python -m api.assets</code>) once with access to the npm registry.</p>", status_code=503)
    ids = await examples.ids()
    defaults = {"query": DEFAULT_QUERY,
                "variables": json.dumps({"userId": ids.get("user_id", "196"), "first": 5}, indent=2)}
    html = (STATIC / "graphiql.html").read_text().replace("__DEFAULTS__", json.dumps(defaults).replace("</", "<\\/"))
    return HTMLResponse(html)


def routes(state: dict[str, Any], settings: Settings) -> list[Route]:
    served = {name for _, _, name in ASSETS}

    async def graphiql_asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = assets_dir(settings.cache_dir) / name
        if name not in served or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path, media_type=_MEDIA[path.suffix],
                            headers={"Cache-Control": "public, max-age=86400"})

    return [Route("/graphiql/{name}", graphiql_asset)]


__all__ = ["Examples", "graphiql_page", "routes"]
