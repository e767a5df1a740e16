"""The similar-items widget in a real headless Chromium (Debian's chromium, driven by Playwright):
open /demo, see items rendered, click one, find the CLICK in Neo4j. Screenshot: test-output/demo.png."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from graphrec.core.config import Settings
from graphrec.testing import on_engine
from graphrec.testing.server import live_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).resolve().parents[2] / "test-output"


def _cli_interact_key(settings: Settings, origin: str) -> str:
    import os
    import subprocess
    import sys

    from graphrec.core.graph.store import resolve_password

    n = settings.neo4j
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(settings.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port), "GRAPHREC_NEO4J_PASSWORD": resolve_password(settings)})
    out = subprocess.run([sys.executable, "-m", "graphrec.cli", "apikey", "create", "--scopes", "interact",
                          "--origins", origin, "--name", "widget"], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return out.stdout.strip().splitlines()[-1]


def _demo_items(s: Settings) -> None:
    """The demo page is for MovieLens items: three of its ids put into the tiny catalogue."""
    async def upsert(e: Any) -> None:
        for iid, title in (("50", "Star Wars"), ("1", "Toy Story"), ("100", "Fargo")):
            await e.upsert_item({"id": iid, "title": title, "categories": ["Action"], "tags": ["heist"]})

    on_engine(s, upsert)


def test_demo_page_renders_and_records_a_click(api: Any, store) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (make test installs it)")
    _demo_items(api.settings)
    s: Settings = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"anonymous_read": True})})
    with live_server(create_app(s)) as url:
        # The click needs a key: an interact key made for this page's origin (it may record
        # interactions and nothing else), created with the CLI as a site owner would.
        # The page is served as http://localhost:<port> and the widget under test calls the API at
        # http://127.0.0.1:<port>: another origin, as on a shop's own site (CORS, the key's origin).
        site = url.replace("127.0.0.1", "localhost")
        key = _cli_interact_key(api.settings, site)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(site + "/demo")
            # Read-only widgets need no key at all while anonymous reads are on.
            for w in ("#w50", "#w1", "#w100"):
                page.wait_for_selector(f"{w}[data-graphrec-state=rendered] .graphrec-item", timeout=20_000)
            page.evaluate("""([key, api]) => { const el = document.querySelector('#w50'); el.dataset.endpoint = api;
                el.dataset.apiKey = key; el.removeAttribute('data-graphrec-state'); window.graphrecSimilarItems.mount(el); }""",
                          [key, url + "/graphql"])
            page.wait_for_selector("#w50[data-graphrec-state=rendered] .graphrec-item", timeout=20_000)
            items = page.locator("#w50 .graphrec-item")
            assert items.count() >= 1
            clicked = items.first.get_attribute("data-graphrec-item")
            assert clicked and clicked != "50"
            detail = page.evaluate("""() => new Promise(res => { const el = document.querySelector('#w50');
                el.addEventListener('graphrec:click', e => res(e.detail), {once: true});
                el.querySelector('.graphrec-item').click(); })""")
            assert detail["stored"] == "DIRECT"
            OUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT / "demo.png"), full_page=True)
            browser.close()
    hist = store.read("repo/user_history", user_id="demo-visitor", limit=5)
    assert [(h["item_id"], h["type"]) for h in hist] == [(clicked, "CLICKED")]
    assert (OUT / "demo.png").stat().st_size > 5000


def test_widget_retries_once_when_the_api_sheds_load(api: Any, store) -> None:  # noqa: ANN001
    """An overloaded API answers 503 OVERLOADED with Retry-After before doing any work: the widget
    sends the request once more after that delay and renders, instead of showing an error."""
    import json

    from playwright.sync_api import sync_playwright

    _demo_items(api.settings)
    s: Settings = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"anonymous_read": True})})
    seen: dict[str, int] = {}

    def shed_first(route: Any) -> None:
        body = route.request.post_data or ""
        seen[body] = seen.get(body, 0) + 1
        if seen[body] == 1:
            route.fulfill(status=503, headers={"Retry-After": "1", "Content-Type": "application/json"},
                          body=json.dumps({"data": None, "errors": [{"message": "overloaded", "extensions": {"code": "OVERLOADED"}}]}))
        else:
            route.continue_()

    with live_server(create_app(s)) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.route("**/graphql", shed_first)
            page.goto(url + "/demo")
            for w in ("#w50", "#w1", "#w100"):
                page.wait_for_selector(f"{w}[data-graphrec-state=rendered] .graphrec-item", timeout=20_000)
            browser.close()
    assert len(seen) == 3 and all(n == 2 for n in seen.values()), seen
