"""The API's pages for people: GraphiQL (served with its own assets, offline), the Neo4j Browser
guide and style sheet, and the operator's dashboard.

``routes(state, settings)`` gives the Starlette routes; ``graphiql_page`` is what ``/graphql``
answers to a browser when ``api.graphiql`` is on. Example ids (a user with history, an item
linked to them) are read from the graph once a minute, so the examples run on any catalogue.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from api import dashboard
from api.assets import ASSETS, assets_dir, missing
from graphrec.core.config import Settings
from graphrec.core.progress import describe, read_status

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
# Neo4j Browser (on Neo4j's own port) fetches the guide and the style sheet from here (a
# cross-origin fetch with a preflight).
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*",
         "Access-Control-Allow-Methods": "GET, OPTIONS", "Cache-Control": "no-cache"}

# The Browser guide's slides: (title, what it shows, explore query, parameters as the guide sets them).
# Parameters are filled from the graph (Examples); {user_id}, {item_id}, {seed_id} are replaced.
GUIDE: tuple[tuple[str, str, str | None, str], ...] = (
    ("The graph of record",
     "Users, items, their categories, tags and knowledge-graph entities, and every interaction as a typed "
     "relationship (RATED, VIEWED, CLICKED, PURCHASED, SKIPPED). Run the schema view: items are captioned by "
     "title, users by id, tags and categories by name (graphrec's style sheet, applied on connect).",
     None, ""),
    ("One user's recent history",
     "The 25 most recent interactions of a user and those items' categories. Click the first block to set "
     "the parameter, then the query.",
     "explore/user_neighbourhood", "{{user_id: {user_id}}}"),
    ("Why this recommendation?",
     "The collaborative reason behind recommending an item: paths from the user through an item they "
     "interacted with and another user who interacted with both. This is what the API's "
     "co_interaction source follows, and what its explainQuery field points to.",
     "explore/co_interaction_path", "{{user_id: {user_id}, item_id: {item_id}}}"),
    ("Neighbours of what you saw",
     "What the neighbour sources compute at request time: the materialised CO_INTERACTED neighbours of "
     "weighted seed items (graphrec refresh-neighbours), summed.",
     "explore/neighbours_of", "{{seeds: [{{id: {seed_id}, w: 1.0}}], per_seed: 20, limit: 10}}"),
)


def _cypher_string(value: str) -> str:
    return json.dumps(value)  # a double-quoted Cypher string literal, escapes included


def guide_html(ids: dict[str, str]) -> str:
    """The Browser guide (``:play <api>/guide``): HTML slides with runnable blocks."""
    from graphrec.core import cypher

    vals = {k: _cypher_string(ids.get(k, d)) for k, d in (("user_id", "196"), ("item_id", "50"), ("seed_id", "1"))}
    slides = []
    for title, text, name, params in GUIDE:
        blocks = []
        if name is None:
            blocks.append("CALL db.schema.visualization()")
        else:
            q = cypher.load(name)
            body = q.render(nrel="CO_INTERACTED") if q.slots else q.text
            body = "\n".join(line for line in body.splitlines() if not line.startswith("//"))
            blocks += [":params " + params.format(**vals), body.strip()]
        pres = "".join(f'<pre class="code runnable pre-scrollable">{html.escape(b)}</pre>' for b in blocks)
        source = f"<p><small>cypher/{name}.cypher</small></p>" if name else ""
        slides.append(f'<slide class="row-fluid"><div class="col-sm-12"><h3>{html.escape(title)}</h3>'
                      f"<p>{html.escape(text)}</p>{pres}{source}</div></slide>")
    slides.append('<slide class="row-fluid"><div class="col-sm-12"><h3>The model registry</h3>'
                  "<p>Every trained version with its metrics; the live one serves embeddings.</p>"
                  '<pre class="code runnable pre-scrollable">MATCH (m:ModelVersion) RETURN m.id AS id, m.kind AS kind, '
                  "m.status AS status, m.created_at AS created_at ORDER BY created_at DESC LIMIT 10</pre></div></slide>")
    return ('<article class="guide"><carousel class="deck container-fluid">'
            + "".join(slides) + "</carousel></article>")


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


def routes(state: dict[str, Any], settings: Settings, exposition: Callable[[], bytes]) -> list[Route]:
    """The pages' routes. ``exposition``: the Prometheus text /metrics serves (the dashboard's numbers)."""
    served = {name for _, _, name in ASSETS}

    async def graphiql_asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = assets_dir(settings.cache_dir) / name
        if name not in served or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path, media_type=_MEDIA[path.suffix],
                            headers={"Cache-Control": "public, max-age=86400"})

    examples = Examples(state)

    async def guide(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_CORS)
        return HTMLResponse(guide_html(await examples.ids()), headers=_CORS)

    async def browser_style(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_CORS)
        return FileResponse(STATIC / "browser-style.grass", media_type="text/plain", headers=_CORS)

    async def allowed(request: Request) -> Response | None:
        """None when the caller may read (the read scope, or anonymous reads on), else the refusal."""
        try:
            principal = await state["verifier"].verify(request.headers.get("authorization"), settings.api.anonymous_read)
        except Exception:  # noqa: BLE001 - an invalid key, or the key store down
            principal = None
        if principal is None or "read" not in principal.scopes:
            return JSONResponse({"error": "the dashboard needs an API key with the read scope (open /dashboard#key=<key>)"},
                                status_code=401)
        return None

    async def dashboard_page(request: Request) -> Response:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    async def dashboard_json(request: Request) -> Response:
        refused = await allowed(request)
        if refused is not None:
            return refused
        data = await dashboard.snapshot(state.get("engine"), exposition().decode())
        data["training"] = describe(read_status(settings.var_dir))  # graphrec train's progress file
        return JSONResponse(data, headers={"Cache-Control": "no-store"})

    async def learning_curve(request: Request) -> Response:
        refused = await allowed(request)
        if refused is not None:
            return refused
        eng = state.get("engine")
        version = request.path_params["version"]
        if eng is not None:
            for v in await eng.model_versions(100):  # only a registered version's own plot
                if v.id == version and v.artifact_dir and (Path(v.artifact_dir) / "learning_curve.png").is_file():
                    return FileResponse(Path(v.artifact_dir) / "learning_curve.png", media_type="image/png")
        return PlainTextResponse("not found", status_code=404)

    return [Route("/graphiql/{name}", graphiql_asset), Route("/guide", guide, methods=["GET", "OPTIONS"]),
            Route("/browser/style.grass", browser_style, methods=["GET", "OPTIONS"]),
            Route("/dashboard", dashboard_page), Route("/dashboard.json", dashboard_json),
            Route("/dashboard/curve/{version}.png", learning_curve)]


__all__ = ["Examples", "graphiql_page", "guide_html", "routes"]
