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


def _fmt(v: float | None, d: int = 0) -> str:
    """The page's number format (``fmt`` in dashboard.html: en-US grouping, ``d`` decimals). The
    browser rounds the shortest decimal form of the number half away from zero (3.15 -> "3.2",
    2.25 -> "2.3"); Python's ``f"{v:.1f}"`` rounds the binary value (3.15 -> "3.1")."""
    from decimal import ROUND_HALF_UP, Decimal

    return "–" if v is None else f"{Decimal(repr(float(v))).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP):,.{d}f}"


def expected_dashboard(metrics: str, versions: list[Any]) -> dict[str, Any]:
    """Every number the dashboard should show, computed here from a /metrics scrape (and the
    registry's versions), independently of api/dashboard.py but for the quantile rule, which
    tests/api/test_dashboard.py checks against Prometheus' ``histogram_quantile``."""
    from collections import defaultdict

    from prometheus_client.parser import text_string_to_metric_families

    from api.dashboard import histogram_quantile

    samples = [x for fam in text_string_to_metric_families(metrics) for x in fam.samples]
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for x in samples:
        if x.name == "graphrec_request_seconds_bucket":
            buckets[x.labels["operation"]].append((float(x.labels["le"]), x.value))
    latency = []
    for op, b in buckets.items():
        ms = [histogram_quantile(q, b) for q in (0.5, 0.95, 0.99)]
        latency.append([op, _fmt(max(c for _, c in b))] + [_fmt(None if v is None else round(1000 * v, 2), 1) for v in ms])
    cands = {x.labels["source"]: x.value for x in samples if x.name == "graphrec_candidates_total"}
    total = sum(cands.values())
    degraded: dict[str, float] = defaultdict(float)
    for x in samples:
        if x.name == "graphrec_degraded_responses_total":
            degraded[x.labels["reason"]] += x.value
    errors = {x.labels["code"]: x.value for x in samples if x.name == "graphrec_errors_total"}
    one = {x.name: x.value for x in samples if x.name in ("graphrec_journal_pending_bytes", "graphrec_requests_shed_total")}

    def rows(r: list[list[str]]) -> list[list[str]]:
        return sorted(r) or [["none yet"]]

    return {
        "latency": rows(latency),
        "sources": rows([[s, _fmt(n), f"{100 * n / total:,.1f} %", ""] for s, n in cands.items()]),
        "caches": rows([[x.labels["cache"], f"{100 * x.value:,.1f} %"] for x in samples if x.name == "graphrec_cache_hit_ratio"]),
        "degraded": rows([[r, _fmt(n)] for r, n in degraded.items()]),
        "errors": rows([[c, _fmt(n)] for c, n in errors.items()]),
        "models": rows([[v.id, "live" if v.status == "live" else v.status, _fmt(v.metrics.get("ndcg@10"), 4),
                         _fmt(v.metrics.get("recall@100"), 4), _fmt(v.training_seconds)] for v in versions]),
        "degraded-total": _fmt(sum(degraded.values())),
        "journal": _fmt(one.get("graphrec_journal_pending_bytes", 0.0)) + " bytes",
        "shed": _fmt(one.get("graphrec_requests_shed_total", 0.0)) + " requests shed (503 OVERLOADED)",
        "samples": samples,
    }


SHOWN = """() => ({
  ...Object.fromEntries([...document.querySelectorAll('main table')].map(t => [t.id,
      [...t.querySelectorAll('tr')].slice(1).map(tr => [...tr.children].map(c => c.textContent.trim()))])),
  ...Object.fromEntries(['degraded-total', 'journal', 'shed', 'training'].map(id => [id, document.getElementById(id).textContent])),
})"""


def test_dashboard_shows_the_numbers_of_metrics(tmp_path: Path) -> None:
    """/dashboard of a server with a trained (small) model after realistic traffic: every number on
    the page (request counts and latency percentiles per operation, candidate counts and shares,
    cache hit ratios, degraded answers, journal backlog, errors, requests shed, the versions'
    metrics) is the one a /metrics scrape taken at the same moment says (the versions': the
    registry's); the learning curve shows. The screenshot in docs/img/ is this page."""
    import random

    import httpx

    from gnn.lifecycle import run_pipeline
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.gnn_config import GNNConfig
    from graphrec.core.graph import schema
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.progress import describe, read_status
    from graphrec.core.registry import Registry
    from graphrec.testing import own_neo4j
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec
    from loaders.writer import GraphWriter

    small = GNNConfig(dim=16, hidden=32, epochs=3, patience=3, batch_users=64, walks_per_item=20, neighbors=5,
                      easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(5, 50), examples_per_user=1)
    spec = SyntheticSpec(users=150, items=120, interactions=4000, categories=6, seed=5)
    with own_neo4j(tmp_path / "dashboard") as s:
        s = s.model_copy(update={
            "gnn": small, "training": s.training.model_copy(update={"tolerance": 1.0, "refit_full": False}),
            "api": s.api.model_copy(update={"anonymous_read": True, "rate_limit_per_s": 1000.0, "rate_limit_burst": 2000,
                                            "cost_per_window": 10**12})})
        with GraphStore.from_settings(s) as store:
            schema.apply(store)
            cat = SyntheticCatalog(spec)
            w = GraphWriter(store, batch_size=2000, progress=False)
            w.users(cat.users())
            w.items(cat.items())
            w.interactions(cat.interactions())
            refresh(store, export_snapshot(store, progress=False), s.interactions.score_weights, k=10, progress=False)
        out = run_pipeline(s, progress=False, evaluate_pipeline=False)
        assert out["status"] == "promoted", out
        with live_server(create_app(s)) as url, chromium_page(1400, 1100) as (page, watch):
            # Traffic as a demo sees it: users' feeds (some asked twice: result-cache hits),
            # similar items, a few bad queries.
            rnd = random.Random(7)
            with httpx.Client(base_url=url, timeout=30) as http:
                for _ in range(120):
                    u = f"u{rnd.randrange(spec.users)}"
                    q = f'{{ recommendations(userId: "{u}", first: 10) {{ items {{ rank }} }} }}'
                    assert http.post("/graphql", json={"query": q}).status_code == 200
                for _ in range(40):
                    q = f'{{ similarItems(itemId: "i{rnd.randrange(spec.items)}", first: 5) {{ items {{ rank }} }} }}'
                    assert http.post("/graphql", json={"query": q}).status_code == 200
                for _ in range(3):
                    assert http.post("/graphql", json={"query": "{ nope }"}).status_code == 200
            page.goto(url + "/dashboard", wait_until="networkidle")
            page.wait_for_selector(f"#models td:text-is('{out['version']}')", timeout=20_000)
            page.wait_for_selector("#curves img", timeout=20_000)
            import time as _t

            _t.sleep(2.5)  # the engine's gauges are refreshed every second
            before = page.get_attribute("body", "data-refreshed")
            page.wait_for_function(f"() => document.body.dataset.refreshed !== '{before}'", timeout=10_000)
            metrics = httpx.get(url + "/metrics").text  # no traffic between the page's refresh and this scrape
            shown = page.evaluate(SHOWN)
            IMG.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(IMG / "dashboard.png"), full_page=True)
            watch.assert_clean()
        with GraphStore.from_settings(s) as store:
            versions = Registry(store, s.var_dir / "models").list("gnn", 10)
        want = expected_dashboard(metrics, versions)
        for table in ("latency", "sources", "caches", "degraded", "errors"):
            assert sorted(shown[table]) == want[table], (table, shown[table], want[table])
        assert sorted(row[:5] for row in shown["models"]) == want["models"], shown["models"]
        for one in ("degraded-total", "journal", "shed"):
            assert shown[one] == want[one], (one, shown[one], want[one])
        # The traffic shows: both operations counted, every source with candidates, a live model.
        requests = {x.labels["operation"]: x.value for x in want["samples"] if x.name == "graphrec_requests_total"}
        assert requests["recommendations"] >= 120 and requests["similarItems"] >= 40  # (the process's counters)
        assert len(shown["sources"]) >= 3 and ["live"] == [r[1] for r in shown["models"] if r[0] == out["version"]]
        assert shown["training"] == describe(read_status(s.var_dir))  # graphrec train's progress line
