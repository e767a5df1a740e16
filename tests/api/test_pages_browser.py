"""The API's pages for people in a real headless Chromium (Debian's chromium, Playwright), with
every request that leaves 127.0.0.1 blocked and counted: GraphiQL runs its default query offline,
the dashboard renders the numbers of /metrics. Screenshots go to docs/img/ (shown in the README)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from api.app import create_app
from graphrec.core.config import Settings
from graphrec.testing.server import live_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No name resolves except loopback: a page that reaches for a CDN fails loudly in the checks below.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


class Watch:
    """Console errors, failed loads and requests that tried to leave loopback, for one page."""

    def __init__(self, page: Any) -> None:
        self.console: list[str] = []
        self.failed: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: self.failed.append(f"{r.url} {r.status}") if r.status >= 400 else None)

        def guard(route: Any) -> None:
            if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)

    def assert_clean(self) -> None:
        assert not self.outside, f"requests left the machine: {self.outside}"
        assert not self.failed, f"failed loads: {self.failed}"
        assert not self.console, f"console errors: {self.console}"


@contextmanager
def chromium_page(width: int = 1400, height: int = 900) -> Iterator[tuple[Any, Watch]]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (make chromium installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page, Watch(page)
        finally:
            browser.close()


def demo_settings(api: Any) -> Settings:
    s: Settings = api.settings
    return s.model_copy(update={"api": s.api.model_copy(update={"anonymous_read": True, "graphiql": True})})


def test_graphiql_runs_its_default_query_offline(api: Any) -> None:
    from api.assets import install

    install(api.settings.cache_dir)  # what make setup does; a no-op when installed
    with live_server(create_app(demo_settings(api))) as url, chromium_page() as (page, watch):
        page.goto(url + "/graphql", wait_until="networkidle")
        page.wait_for_selector(".graphiql-execute-button", timeout=30_000)
        variables = json.loads(page.evaluate(
            "() => document.querySelectorAll('.graphiql-editor-tool .CodeMirror')[0].CodeMirror.getValue()"))
        # a user of the tiny graph who has history, read from the graph (not a MovieLens id)
        assert variables["first"] == 5 and variables["userId"] in {"alice", "bob", "carol", "dave"}
        page.click(".graphiql-execute-button")
        page.wait_for_function(
            "() => { const cm = document.querySelector('.result-window .CodeMirror');"
            " return cm && cm.CodeMirror.getValue().includes('requestId'); }", timeout=30_000)
        result = json.loads(page.evaluate("() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"))
        assert "errors" not in result, result
        items = result["data"]["recommendations"]["items"]
        assert items and all(it["item"]["title"] for it in items)
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMG / "graphiql.png"))
        watch.assert_clean()
    assert (IMG / "graphiql.png").stat().st_size > 20_000


def test_graphiql_page_says_how_to_install_missing_assets(api: Any, tmp_path: Path) -> None:
    import httpx

    s = demo_settings(api)
    s = s.model_copy(update={"cache_dir": tmp_path})
    with live_server(create_app(s)) as url:
        r = httpx.get(url + "/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 503 and "make setup" in r.text
    assert not re.search(r"https?://(?!127\.0\.0\.1)", r.text)


def test_neo4j_browser_opens_the_guide_and_captions_items_by_title(tmp_path: Path) -> None:
    """A Neo4j of the test's own whose Browser is configured by graphrec (neo4j.conf written by
    Neo4jServer): after login the style sheet and the guide come from the API; a guide query
    draws items captioned by their titles; no usage banner; nothing leaves the machine."""
    from api.pages import GUIDE
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
    from graphrec.testing import TINY_ITEMS, own_neo4j, tiny_graph
    from graphrec.testing.server import free_port

    api_port = free_port()
    with own_neo4j(tmp_path / "browser", api_port=api_port) as s:
        with GraphStore.from_settings(s) as store:
            schema.apply(store)
            tiny_graph(store)
            refresh(store, export_snapshot(store, progress=False), s.interactions.score_weights, k=10, progress=False)
        conf = (s.var_dir / "neo4j" / "conf" / "neo4j.conf").read_text()
        assert "client.allow_telemetry=false" in conf and "dbms.usage_report.enabled=false" in conf
        s = s.model_copy(update={"api": s.api.model_copy(update={"anonymous_read": True, "port": api_port})})
        with live_server(create_app(s), port=api_port), chromium_page(1400, 1000) as (page, watch):
            page.goto(f"http://127.0.0.1:{s.neo4j.http_port}/browser/", wait_until="networkidle")
            page.fill("[data-testid=boltaddress]", f"bolt://127.0.0.1:{s.neo4j.bolt_port}")
            page.fill("[data-testid=username]", "neo4j")
            page.fill("[data-testid=password]", s.neo4j.password.get_secret_value())
            page.click("[data-testid=connect]")
            # post_connect_cmd: the guide and the style sheet, both from the API
            page.wait_for_selector("text=The graph of record", timeout=60_000)
            head = page.locator("h3", has_text="Why this recommendation?")
            for _ in range(len(GUIDE)):
                if head.is_visible():
                    break
                page.click("[data-testid=nextSlide]")
                page.wait_for_timeout(300)
            blocks = head.locator("xpath=..").locator("pre.runnable")
            assert blocks.count() == 2  # :params with ids from the graph, then the query
            for block in blocks.all():
                block.click()
                page.click("[data-testid=editor-Run]")
                page.wait_for_timeout(1500)
            page.wait_for_selector("svg .node", timeout=30_000)
            captions = {t.strip() for t in page.locator("svg .node text").all_text_contents()}
            titles = {it["title"] for it in TINY_ITEMS}
            assert captions & titles and captions <= titles | {"alice", "bob", "carol", "dave"}, captions
            IMG.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(IMG / "neo4j-browser.png"))
            # The Browser's page itself asks for web fonts, analytics, feedback and error-reporting
            # scripts on the internet: the content security policy in neo4j.conf refuses them before
            # any connection (console errors, failure "csp"), and it probes Bolt's port over HTTP.
            probe = f"http://127.0.0.1:{s.neo4j.bolt_port}/"
            assert not watch.outside, watch.outside
            assert all(f.endswith(" csp") or f.startswith(probe) for f in watch.failed), watch.failed
            assert all("Content Security Policy" in m or "ERR_EMPTY_RESPONSE" in m for m in watch.console), watch.console
        with GraphStore.from_settings(s) as store:
            client = {r["name"]: r["value"] for r in store.run_text("CALL dbms.clientConfig() YIELD name, value")}
        assert client["client.allow_telemetry"] == "false"  # no usage banner, no usage data


def test_dashboard_shows_the_numbers_of_metrics(api: Any, tmp_path: Path) -> None:
    """/dashboard renders, from the same collectors as /metrics: after some traffic, the request
    counts, candidate shares, cache hit ratios and journal backlog on the page are those of a
    /metrics scrape taken at the same moment; a registered version and its learning curve show."""
    import httpx
    from neo4j import RoutingControl

    from gnn.evaluate import plot_learning_curve
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.registry import Registry, new_version_id

    s = demo_settings(api)
    with GraphStore.from_settings(s) as store:
        reg = Registry(store, s.var_dir / "models")  # where every process looks for artifacts
        vid = new_version_id("gnn")
        reg.register("gnn", vid, seed=42, config={}, metrics={"ndcg@10": 0.1234, "recall@100": 0.5678},
                     snapshot={}, training_seconds=12.0)
        plot_learning_curve([{"epoch": e, "loss": 1.0 / e, "val_ndcg@10": 0.05 * e} for e in range(1, 6)],
                            reg.artifact_dir(vid) / "learning_curve.png")
        # (not promoted: a live version needs its embeddings, which only training writes)
    try:
        with live_server(create_app(s)) as url, chromium_page(1400, 1100) as (page, watch):
            q = {"query": '{ recommendations(userId: "alice", first: 3) { items { rank } } }'}
            for user in ("alice", "bob", "carol", "alice"):
                q["query"] = q["query"].replace("alice", user)
                assert httpx.post(url + "/graphql", json=q).status_code == 200
            assert httpx.post(url + "/graphql", json={"query": "{ nope }"}).status_code == 200  # an error
            page.goto(url + "/dashboard", wait_until="networkidle")
            page.wait_for_selector(f"#models td:text-is('{vid}')", timeout=20_000)
            page.wait_for_selector("#curves img", timeout=20_000)
            import time as _t

            _t.sleep(2.5)  # the engine's gauges are refreshed every second
            before = page.get_attribute("body", "data-refreshed")
            page.wait_for_function(f"() => document.body.dataset.refreshed !== '{before}'", timeout=10_000)
            metrics = httpx.get(url + "/metrics").text
            shown = {row[0]: row[1:] for row in page.evaluate(
                "() => [...document.querySelectorAll('main table tr')].map(tr => [...tr.children].map(c => c.textContent.trim()))")
                if row}
            journal = page.text_content("#journal")
            training = page.text_content("#training")
            IMG.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(IMG / "dashboard.png"), full_page=True)
            watch.assert_clean()
    finally:
        with GraphStore.from_settings(s) as store:
            store.run_text("MATCH (m:ModelVersion) DETACH DELETE m", routing=RoutingControl.WRITE)
    from prometheus_client.parser import text_string_to_metric_families

    samples = [x for fam in text_string_to_metric_families(metrics) for x in fam.samples]
    requests = {x.labels["operation"]: x.value for x in samples if x.name == "graphrec_requests_total"
                and x.labels["status"] == "200"}
    assert requests.get("recommendations", 0) >= 4
    counts = {x.labels["operation"]: x.value for x in samples if x.name == "graphrec_request_seconds_count"}
    for op, n in counts.items():
        assert shown[op][0] == f"{n:,.0f}", (op, shown[op], n)
    cands = {x.labels["source"]: x.value for x in samples if x.name == "graphrec_candidates_total"}
    total = sum(cands.values())
    assert total > 0
    for src, n in cands.items():
        assert shown[src][:2] == [f"{n:,.0f}", f"{100 * n / total:.1f} %"], (src, shown[src])
    for x in samples:
        if x.name == "graphrec_cache_hit_ratio":
            assert shown[x.labels["cache"]] == [f"{100 * x.value:.1f} %"]
        if x.name == "graphrec_journal_pending_bytes":
            assert journal == f"{x.value:,.0f} bytes"
    assert shown[vid][:4] == ["candidate", "0.1234", "0.5678", "12"]
    # The error counters are the process's (earlier tests in the session count too): the page
    # shows what /metrics says, and at least the one error sent above.
    errors = {x.labels["code"]: x.value for x in samples if x.name == "graphrec_errors_total"}
    assert errors.get("BAD_USER_INPUT", 0) >= 1
    for code, n in errors.items():
        assert shown[code] == [f"{n:,.0f}"], (code, shown[code], n)
    from graphrec.core.progress import describe, read_status

    assert training == describe(read_status(s.var_dir))  # graphrec train's progress line
