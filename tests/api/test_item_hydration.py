"""A page of recommendations that asks only for what the in-memory catalogue holds (ids, titles,
years, categories) is answered without reading items from Neo4j; asking for tags or a
description reads them (one round trip for the page). Both give the same titles."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from api.app import create_app
from graphrec.core.config import Settings
from graphrec.engine.engine import Engine
from graphrec.testing import count_reads, tiny_graph

pytestmark = pytest.mark.integration

TITLES = "{ recommendations(userId: \"alice\", first: 5) { items { item { id title year categories popularity } } } }"
TAGS = "{ recommendations(userId: \"alice\", first: 5) { items { item { id title tags description } } } }"
FRAGMENT = ("{ recommendations(userId: \"alice\", first: 5) { items { item { ...f } } } } "
            "fragment f on Item { id title }")


def test_titles_from_memory_tags_from_the_graph(store, neo4j_settings: Settings) -> None:  # noqa: ANN001
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    tiny_graph(store)
    refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False)
    s = neo4j_settings.model_copy(update={
        "api": neo4j_settings.api.model_copy(update={"anonymous_read": True}),
        "engine": neo4j_settings.engine.model_copy(update={"explore_epsilon": 0.0, "request_budget_ms": 3000.0,
                                                          "source_budget_ms": 2000.0})})

    async def go() -> list[tuple[dict[str, Any], list[str]]]:
        eng = await Engine.create(s, vectors=None, background=False)
        app = create_app(s, engine=eng)
        out = []
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
                reads = count_reads(eng)
                for q in (TITLES, TAGS, FRAGMENT):
                    eng.state.item_cache = type(eng.state.item_cache)(1000, 30.0)  # cold: every page reads
                    del reads[:]
                    r = await c.post("/graphql", json={"query": q})
                    assert r.status_code == 200 and not r.json().get("errors"), r.text
                    out.append((r.json()["data"]["recommendations"], list(reads)))
        finally:
            await eng.close()
        return out

    (titles, t_reads), (tags, g_reads), (frag, f_reads) = asyncio.run(go())
    assert titles["items"], titles
    assert "repo/get_items" not in t_reads  # a list of titles: from memory
    assert g_reads.count("repo/get_items") == 1  # tags: one read for the whole page
    assert f_reads.count("repo/get_items") == 1  # through a fragment: not inspected, read
    as_pairs = lambda page: [(x["item"]["id"], x["item"]["title"]) for x in page["items"]]  # noqa: E731
    assert as_pairs(titles) == as_pairs(tags) == as_pairs(frag)
    assert all(x["item"]["title"] for x in titles["items"])
