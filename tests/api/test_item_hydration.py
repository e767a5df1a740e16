"""A page of recommendations that asks only for what the in-memory catalogue holds (ids, titles,
years, categories) is answered without reading items from Neo4j; asking for tags or a
description reads them (one round trip for the page), wherever the query asks them (fragments,
aliases, every field that returns recommendations). All give the same titles."""

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
# What the catalogue does not hold, asked through a fragment on the recommendation, beside an alias.
DEEP = ("{ recommendations(userId: \"alice\", first: 5) { items { ...r t: item { title } } } } "
        "fragment r on Recommendation { item { id title ... on Item { tags } } }")
NO_ITEM = "{ recommendations(userId: \"alice\", first: 5) { items { rank score } } }"
# The other fields that return recommendations: (query, data path to the pages, item reads: one
# per page that asks tags or a description, and ``item(id:)``'s own)
OTHERS = [
    ("{ similarItems(itemId: \"heat\", first: 3) { items { item { id title } } } }", ("similarItems",), 0),
    ("{ similarItems(itemId: \"heat\", first: 3) { items { item { id title tags } } } }", ("similarItems",), 1),
    ("{ batchRecommendations(userIds: [\"alice\", \"bob\"], first: 3) { recommendations { items { item { id title } } } } }",
     ("batchRecommendations",), 0),
    ("{ batchRecommendations(userIds: [\"alice\", \"bob\"], first: 3) { recommendations { items { item { title description } } } } }",
     ("batchRecommendations",), 1),
    ("{ item(id: \"heat\") { similar(first: 3) { item { id title } } } }", ("item", "similar"), 1),
    ("{ user(id: \"alice\") { recommendations(first: 3) { items { item { title tags } } } } }", ("user", "recommendations"), 1),
    ("{ user(id: \"alice\") { recentInteractions(first: 3) { item { id title } } } }", ("user", "recentInteractions"), 0),
    ("{ user(id: \"alice\") { recentInteractions(first: 3) { type item { ...t } } } } fragment t on Item { title tags }",
     ("user", "recentInteractions"), 1),
]


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
                for q in (TITLES, TAGS, FRAGMENT, DEEP, NO_ITEM, *(q for q, _, _ in OTHERS)):
                    eng.state.item_cache = type(eng.state.item_cache)(1000, 30.0)  # cold: every page reads
                    del reads[:]
                    r = await c.post("/graphql", json={"query": q})
                    assert r.status_code == 200 and not r.json().get("errors"), r.text
                    data = r.json()["data"]
                    out.append((data.get("recommendations", data), list(reads)))
        finally:
            await eng.close()
        return out

    (titles, t_reads), (tags, g_reads), (frag, f_reads), (deep, d_reads), (no_item, n_reads), *others = asyncio.run(go())
    assert titles["items"], titles
    assert "repo/get_items" not in t_reads  # a list of titles: from memory
    assert g_reads.count("repo/get_items") == 1  # tags: one read for the whole page
    assert "repo/get_items" not in f_reads  # titles through a fragment: from memory
    assert d_reads.count("repo/get_items") == 1  # tags through a fragment: one read
    assert "repo/get_items" not in n_reads and no_item["items"]
    as_pairs = lambda page: [(x["item"]["id"], x["item"]["title"]) for x in page["items"]]  # noqa: E731
    assert as_pairs(titles) == as_pairs(tags) == as_pairs(frag) == as_pairs(deep)
    assert [x["t"]["title"] for x in deep["items"]] == [t for _, t in as_pairs(titles)]
    assert all(x["item"]["title"] for x in titles["items"]) and all("tags" in x["item"] for x in deep["items"])
    for (q, path, n_reads), (data, reads) in zip(OTHERS, others, strict=True):
        for name in path:
            data = data[name]
        if path[-1] in ("similar", "recentInteractions"):  # a list of recommendations or interactions
            recs = data
        else:  # a page, or a page per user
            recs = [r for u in data for r in u["recommendations"]["items"]] if isinstance(data, list) else data["items"]
        assert recs and all(r["item"]["title"] for r in recs), (q, data)
        assert reads.count("repo/get_items") == n_reads, (q, reads)  # every user's page in one read
