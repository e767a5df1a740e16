"""The engine against the real test Neo4j on the tiny catalogue: sources, merge, real-time
feedback across two engine instances, cold start, degraded answers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from graphrec.core.config import Settings
from graphrec.core.errors import NotFound
from graphrec.core.graph.store import AsyncGraphStore
from graphrec.core.records import InteractionType
from graphrec.core.recs.candidate import SourceContext
from graphrec.core.recs.types import RecFilter, RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.engine.sources import SOURCES
from graphrec.engine.sources.neighbour_cache import NeighbourCache
from graphrec.testing import count_reads, tiny_graph

pytestmark = pytest.mark.integration


@pytest.fixture()
def tiny(store, neo4j_settings: Settings) -> Iterator[Settings]:  # noqa: ANN001
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot

    tiny_graph(store)
    refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False)
    s = neo4j_settings.model_copy(update={"engine": neo4j_settings.engine.model_copy(update={"explore_epsilon": 0.0, "request_budget_ms": 3000.0, "source_budget_ms": 2000.0})})
    yield s


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _engine(s: Settings) -> Engine:
    return await Engine.create(s, vectors=None, background=False)


async def _elsewhere(s: Settings, item: dict[str, Any]) -> None:
    """Upsert ``item`` as another API process would: through an engine of its own."""
    other = Engine(s, AsyncGraphStore.from_settings(s))
    try:
        await other.upsert_item(item)
    finally:
        await other.close()


def _warming(s: Settings) -> Settings:
    """``s`` with the start-up warm-up on (the test settings turn it off)."""
    return s.model_copy(update={"engine": s.engine.model_copy(update={"warm_up_s": 20.0})})


def test_each_source(tiny: Settings) -> None:
    async def go() -> dict[str, list[str]]:
        e = await _engine(tiny)
        try:
            ctx = SourceContext(store=e.store, user_id="alice", now=2000.0, timeout_s=2.0, session_items=["toy"],
                                params={"seeds": e.pipeline.seeds((await e.store.read("repo/user_state", user_ids=["alice"], recent=10, max_consumed=100, per_item=0))[0]["recent"], 2000.0),
                                        "catalog": e.catalog, "neighbours": NeighbourCache(), "fresh_window_s": 1000.0})
            out = {}
            for name in ("co_interaction", "content", "session", "popular", "fresh"):
                out[name] = [c.item_id for c in await SOURCES[name](ctx, 10)]
            return out
        finally:
            await e.close()

    out = run(go())
    assert out["co_interaction"][0] == "alien"  # bob and dave: heat → alien
    assert "heat" not in out["co_interaction"] and "ronin" not in out["co_interaction"]  # never the seeds
    assert "new" in out["content"]  # shares Action + heist with heat/ronin
    assert out["session"] == ["up"]  # carol's session: toy → up
    assert out["popular"][0] == "alien"
    assert out["fresh"] == ["new"]


def test_home_feed_merges_sources_and_explains(tiny: Settings) -> None:
    async def go() -> Any:
        e = await _engine(tiny)
        try:
            return await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))
        finally:
            await e.close()

    res = run(go())
    ids = [r.item_id for r in res.items]
    assert not res.degraded and res.request_id
    assert "heat" not in ids and "ronin" not in ids  # consumed
    top = res.items[0]
    assert top.item_id == "alien" and "co_interaction" in top.sources and top.rank == 1
    assert top.reason and "Heat" in top.reason or "Ronin" in (top.reason or "")
    assert top.explain_query and "co_interaction_path" in top.explain_query
    assert [r.rank for r in res.items] == list(range(1, len(ids) + 1))
    assert {"user_state", "merge", "rank", "rules", "total"} <= set(res.timings_ms)


def test_realtime_feedback_across_two_engines(tiny: Settings) -> None:
    async def go() -> tuple[list[str], list[str], str]:
        a, b = await _engine(tiny), await _engine(tiny)
        try:
            req = RecRequest("alice", first=5, context=RequestContext(now=2000.0))
            before = [r.item_id for r in (await b.recommend(req)).items]
            rec = await a.record_interaction({"user_id": "alice", "item_id": before[0], "type": "CLICK", "ts": 1999.0})
            after = [r.item_id for r in (await b.recommend(req)).items]
            return before, after, rec.stored
        finally:
            await a.close()
            await b.close()

    before, after, stored = run(go())
    assert stored == "direct"
    assert before[0] not in after  # engine B sees engine A's click at once, no retraining


def test_cold_start_user_and_new_item(tiny: Settings) -> None:
    async def go() -> tuple[Any, Any, Any]:
        e = await _engine(tiny)
        try:
            cold = await e.recommend(RecRequest("stranger", context=RequestContext(now=2000.0)))
            pref = await e.recommend(RecRequest("stranger2", context=RequestContext(now=2000.0, preferred_categories=("Animation",))))
            sim_new = await e.similar_items("new", 5)
            return cold, pref, sim_new
        finally:
            await e.close()

    cold, pref, sim_new = run(go())
    assert cold.items and not cold.degraded and cold.items[0].item_id == "alien"
    assert {r.item_id for r in pref.items[:2]} == {"up", "toy"}
    assert all("Animation" in (r.reason or "") for r in pref.items[:2])
    assert "new" in [r.item_id for r in cold.items]  # fresh items get exposure
    assert sim_new.items and all(r.item_id != "new" for r in sim_new.items)  # new item reachable by content


def test_similar_items_filters_and_not_found(tiny: Settings) -> None:
    async def go() -> tuple[Any, Any]:
        e = await _engine(tiny)
        try:
            sim = await e.similar_items("heat", 10, RecFilter(exclude_categories=("Horror",)))
            with pytest.raises(NotFound):
                await e.similar_items("ghost", 5)
            return sim, await e.rerank("alice", ["toy", "alien", "up", "ghost"], None)
        finally:
            await e.close()

    sim, rr = run(go())
    ids = [r.item_id for r in sim.items]
    assert "heat" not in ids and "alien" not in ids and "ronin" in ids
    # An id that is not an item is left out and named, never returned as an item without a title.
    assert [r.item_id for r in rr.items][0] == "alien" and len(rr.items) == 3
    assert rr.unknown_ids == ("ghost",) and not rr.degraded


def test_similar_items_of_an_item_with_a_vector_never_walk_the_graph_when_the_index_is_late(tiny: Settings) -> None:
    """No neighbour lists and no answer from the index (late or failed) for an item that has a
    vector: the popular items of its categories, from memory — the live content walk is for cold
    items only (under load it made a late index melt Neo4j at 1M items)."""
    import numpy as np

    from graphrec.core.recs.model import LiveModel

    # A live model that knows only "heat" (a vector, no hybrid): every other item has no vector.
    model = LiveModel("heat-only", ["heat"], np.full((1, 4), 0.5, dtype=np.float32))

    async def late(*_: Any) -> list[Any]:
        return []

    async def go() -> tuple[Any, list[str], dict[str, tuple[str, ...]]]:
        e = await _engine(tiny)
        try:
            e.model = model
            e.candidates.ann = late  # type: ignore[method-assign]
            for rel in e.neighbours.caches:
                e.neighbours.put(rel, "heat", ())
            reads = count_reads(e)
            cats = {i: it.categories for i, it in e.catalog.items.items()}
            return await e.similar_items("heat", 5), reads, cats
        finally:
            await e.close()

    sim, reads, cats = run(go())
    assert sim.items and all(r.sources == ("popular",) for r in sim.items)
    assert all(set(cats[r.item_id]) & set(cats["heat"]) for r in sim.items)  # its categories' popular items
    assert "heat" not in [r.item_id for r in sim.items]
    assert "recs/item_content_live" not in reads


def test_every_surface_takes_the_fresh_window_from_the_settings(tiny: Settings) -> None:
    """A fresh source configured on similarItems keeps engine.fresh_window_days, as the home feed
    does: a window of a quarter of an hour before the graph's clock holds only the item created
    after the others."""
    engine = tiny.engine.model_copy(update={"fresh_window_days": 900 / 86400, "sources": {
        **tiny.engine.sources, "SIMILAR_ITEMS": {"fresh": 1.0}}})
    s = tiny.model_copy(update={"engine": engine})

    async def go() -> tuple[list[str], list[str]]:
        e = await _engine(s)
        try:
            home = await e.recommend(RecRequest("alice", first=10, context=RequestContext(now=e.catalog.now)))
            sim = await e.similar_items("heat", 10)
            return ([r.item_id for r in home.items if "fresh" in r.sources], [r.item_id for r in sim.items])
        finally:
            await e.close()

    home_fresh, similar = run(go())
    assert home_fresh == ["new"] and similar == ["new"]


def test_degraded_when_neo4j_is_unreachable(tiny: Settings) -> None:
    budgets = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"request_budget_ms": 80.0, "source_budget_ms": 40.0})})

    async def go() -> tuple[Any, Any]:
        e = await _engine(budgets)
        try:
            dead = budgets.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:1", "connection_timeout_s": 0.5})
            await e.store.close()
            e.store = AsyncGraphStore(dead, "x" * 12)  # a real driver against a closed port
            r1 = await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))
            r2 = await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))
            return r1, r2
        finally:
            await e.close()

    r1, r2 = run(go())
    for r in (r1, r2):
        assert r.degraded and "neo4j" in r.degraded_reasons and r.items  # popular list from memory
        assert r.timings_ms["total"] < 2000
    assert r2.items[0].item_id == "alien"


def test_interactions_journal_while_neo4j_is_away_and_replay_once(tiny: Settings, store, tmp_path) -> None:  # noqa: ANN001
    from pydantic import SecretStr

    from graphrec.core.graph.store import resolve_password

    s = tiny.model_copy(update={"var_dir": tmp_path, "neo4j": tiny.neo4j.model_copy(
        update={"password": SecretStr(resolve_password(tiny))})})

    async def go() -> tuple[list[str], int, int]:
        e = await _engine(s)
        live = e.store
        try:
            e.store = AsyncGraphStore(s.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:1", "connection_timeout_s": 0.3}), "x" * 12)
            stored = []
            for k in range(3):
                r = await e.record_interaction({"user_id": "erin", "item_id": "up", "type": "VIEW", "ts": 3000.0 + k,
                                                "dwell_seconds": 5, "key": f"erin-{k}"})
                stored.append(r.stored)
            # Not in this process's catalogue while Neo4j cannot say whether it exists (it may have
            # been upserted through another worker): journalled, and dead-lettered by the replay.
            ghost = await e.record_interaction({"user_id": "erin", "item_id": "ghost", "type": "VIEW", "ts": 1.0})
            assert ghost.stored == "journal"
            await e.store.close()
            e.store = live
            e.neo4j_breaker.success()
            first = await e.replay_journal()
            second = await e.replay_journal()
            assert e.journal.dead_lettered() == 1
            return stored, first, second
        finally:
            await e.close()

    stored, first, second = run(go())
    assert stored == ["journal"] * 3 and (first, second) == (4, 0)  # the three views and the dead letter
    assert store.counts()["VIEWED"] == 1 + 3  # carol's view in the tiny graph + the three replayed
    hist = store.read("repo/user_history", user_id="erin", limit=10)
    assert sorted(h["ts"] for h in hist) == [3000.0, 3001.0, 3002.0]


def test_what_the_engine_caches_is_untracked_by_the_cyclic_collector_at_once(tiny: Settings) -> None:
    """What the engine keeps between requests (cached items, neighbour lists, result-cache keys and
    answers) must leave the collector's view at the first collection that sees it: at 1M items
    the caches held ~100k entries, and as dataclass instances or nested tuples they made each
    full collection 70-350 ms per API worker (graphrec/engine/cache.py)."""
    import gc

    async def go() -> list[tuple[Any, Any]]:
        e = await _engine(tiny)
        try:
            items = await e.get_items(["heat", "alien"])
            again = await e.get_items(["heat", "alien"])  # from the cache: the same values back
            assert again == items and again["heat"].categories == items["heat"].categories
            await e.similar_items("heat", 3, RecFilter(exclude_categories=("Horror",)))
            await e.recommend(RecRequest("alice", first=3))
            caches = [e.item_cache, e.results, e.last_good, *e.neighbours.caches.values()]
            return [entry for c in caches for entry in c.items()]
        finally:
            await e.close()

    entries = run(go())
    assert len(entries) >= 2 + 2 * 2 + 2  # items; two answers in both result caches; neighbour lists
    gc.collect()
    assert [(k, v) for k, v in entries if gc.is_tracked(k) or gc.is_tracked(v)] == []


def test_item_fields_are_read_through_a_cache_that_upserts_invalidate(tiny: Settings, store) -> None:  # noqa: ANN001
    s = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"item_cache_ttl_s": 0.5})})

    async def go() -> tuple[list[str | None], int]:
        e = await _engine(s)
        reads = count_reads(e)
        try:
            titles = [(await e.get_items(["heat", "alien"]))["heat"].title]
            titles.append((await e.get_items(["heat"]))["heat"].title)  # from the cache
            n_cached = reads.count("repo/get_items")
            await e.upsert_item({"id": "heat", "title": "Heat (1995)"})  # this engine's own write: seen at once
            titles.append((await e.get_items(["heat"]))["heat"].title)
            await _elsewhere(s, {"id": "heat", "title": "Heat, elsewhere"})  # another process's write
            titles.append((await e.get_items(["heat"]))["heat"].title)  # still the cached one
            await asyncio.sleep(0.6)
            titles.append((await e.get_items(["heat"]))["heat"].title)  # after the TTL: re-read
            return titles, n_cached
        finally:
            await e.close()

    titles, n_cached = run(go())
    assert n_cached == 1
    assert titles[2:] == ["Heat (1995)", "Heat (1995)", "Heat, elsewhere"]
    assert titles[0] == titles[1]


def test_catalog_refresh_reads_changes_and_full_reads_notify(tiny: Settings, store) -> None:  # noqa: ANN001
    async def go() -> tuple[Any, Any, list[str], int]:
        e = await _engine(tiny)
        fulls: list[str] = []
        e.catalog_listeners.append(lambda: fulls.append("full"))
        reads = count_reads(e)
        try:
            await _elsewhere(tiny, {"id": "brand-new", "title": "Brand New", "categories": ["Drama"]})
            await _elsewhere(tiny, {"id": "heat", "available": False})
            assert any(i == "heat" for i, _ in e.catalog.popular)
            await e.refresh_catalog()  # incremental: only the two changed items are read
            assert all(i != "heat" for i, _ in e.catalog.popular)  # kept lists drop unavailable items
            inc = (dict(e.catalog.items), list(reads))
            await e.refresh_catalog(full=True)
            return inc, e.catalog, fulls, reads.count("recs/catalog")
        finally:
            await e.close()

    (items, reads), cat, fulls, full_reads = run(go())
    assert "recs/catalog" not in reads and "recs/catalog_changed" in reads
    # The popular lists are not due yet (engine.popular_refresh_s): none of their queries ran
    # (recs/popular_shared, recs/popular_lease, recs/popular_page, recs/popular_store).
    assert [r for r in reads if r.startswith("recs/popular")] == []
    assert items["brand-new"].title == "Brand New" and items["brand-new"].categories == ("Drama",)
    assert items["heat"].available is False
    assert all(i != "heat" for i, _ in cat.popular)  # unavailable items leave the popular lists
    assert fulls == ["full"] and full_reads >= 1
    assert set(cat.items) == set(items)


def test_a_refresh_that_changes_no_item_keeps_what_requests_derived_from_the_items(tiny: Settings) -> None:
    """The unavailable ids (a scan of every item: ~0.1-0.2 s at 1M, in the first request after a
    refresh) survive a refresh that read no changed item, and are derived again after one that did."""
    async def go() -> None:
        e = await _engine(tiny)
        try:
            await _elsewhere(tiny, {"id": "heat", "available": False})
            await e.refresh_catalog()
            gone = e.catalog.unavailable()
            assert "heat" in gone
            e.catalog.started_at = time.time() + 1000.0  # the next refresh reads no changed item
            await e.refresh_catalog()
            assert e.catalog.unavailable() is gone
            await _elsewhere(tiny, {"id": "heat", "available": True})
            await e.refresh_catalog()  # reads heat's change
            assert "heat" not in e.catalog.unavailable()
            e.catalog.started_at = time.time() + 1000.0
            await e.upsert_item({"id": "ronin", "available": False})  # in place, through this engine
            await e.refresh_catalog()
            assert "ronin" in e.catalog.unavailable()
        finally:
            await e.close()

    run(go())


def test_a_page_of_changes_is_read_as_the_whole_catalogue(tiny: Settings) -> None:
    """recs/catalog_changed sorts the changed ids (it seeks the updated_at index): a refresh whose
    changes fill a page reads every item by id instead (a bulk upsert), and says it was a full read."""
    from graphrec.engine.catalog import load_catalog

    async def go() -> None:
        e = await _engine(tiny)
        try:
            await _elsewhere(tiny, {"id": "heat", "available": False})
            await _elsewhere(tiny, {"id": "ronin", "available": False})
            reads = count_reads(e)
            before = e.catalog
            small = await load_catalog(e.store, e.state.type_weights, 86400.0, 86400.0, previous=before, page=1000,
                                       refresh_popular=False)
            assert "recs/catalog" not in reads and small.full_at == before.full_at
            bulk = await load_catalog(e.store, e.state.type_weights, 86400.0, 86400.0, previous=before, page=2,
                                      refresh_popular=False)
            assert "recs/catalog" in reads and bulk.full_at > before.full_at
            assert not bulk.items["heat"].available and not bulk.items["ronin"].available
            assert set(bulk.items) == set(small.items)
        finally:
            await e.close()

    run(go())


def test_popular_lists_are_computed_once_for_all_engines(tiny: Settings, store) -> None:  # noqa: ANN001
    """The window queries run once per popular_refresh_s for the fleet: the first engine computes
    and stores the lists, the others adopt them; a lease held elsewhere makes an engine keep its own."""
    import time

    from neo4j import RoutingControl

    async def go() -> None:
        a = await _engine(tiny)
        b = await _engine(tiny)
        try:
            assert (a.shared_popular.computed, b.shared_popular.computed) == (1, 0)
            assert a.catalog.popular == b.catalog.popular and a.catalog.popular[0][0] == "alien"
            assert a.catalog.popular_at == b.catalog.popular_at > 0
            # Due again for A: it recomputes; B's full refresh adopts A's new copy.
            a.shared_popular.max_age_s = 0.0
            await a.refresh_catalog(full=True)
            await b.refresh_catalog(full=True)
            assert (a.shared_popular.computed, b.shared_popular.computed) == (2, 0)
            assert b.catalog.popular_at == a.catalog.popular_at
            # Stale, and another process holds the lease: B keeps its lists and does not compute.
            store.run_text("MATCH (m:GraphrecMeta {key: 'popular'}) SET m.computed_at = 0.0, "
                           "m.lease_holder = 'elsewhere', m.lease_until = $until", routing=RoutingControl.WRITE,
                           until=time.time() + 60)
            before = b.catalog.popular_at
            await b.refresh_catalog(full=True)
            assert b.shared_popular.computed == 0 and b.catalog.popular_at == before and b.catalog.popular
        finally:
            await a.close()
            await b.close()

    run(go())


def test_a_cached_result_comes_back_whole(tiny: Settings) -> None:
    """The result cache keeps a result as a JSON string (untracked by the GC): a hit returns the
    same recommendations, field by field, with a new request id."""

    async def go() -> tuple[Any, Any]:
        e = await _engine(tiny)
        try:
            req = RecRequest("alice", first=5, context=RequestContext(now=2000.0))
            return await e.recommend(req), await e.recommend(req)
        finally:
            await e.close()

    miss, hit = run(go())
    assert "cache_hit" not in miss.timings_ms and hit.timings_ms["cache_hit"] == 1.0
    assert hit.items == miss.items and hit.items and isinstance(hit.items[0].sources, tuple)
    assert hit.request_id != miss.request_id and hit.model_version == miss.model_version and not hit.degraded


def test_the_model_searches_its_own_collection_warmed_before_it_serves(tiny: Settings, tmp_path: Any) -> None:
    """Query vectors and index vectors come from one model: the engine searches the collection
    the live model was published to (not whatever the alias points at now), opens it off the
    event loop before the model serves, and falls back to the alias if it was pruned."""
    import numpy as np

    from graphrec.core.recs.model import LiveModel
    from graphrec.core.vectors.edge import EdgeIndex

    builder = EdgeIndex(tmp_path)
    for name, ids in (("a", ["a1", "a2"]), ("b", ["b1", "b2"])):
        builder.create_collection(name, 4)
        builder.upsert(name, ids, np.eye(4, dtype=np.float32)[:2], [{}, {}])
        builder.finalize(name)
    builder.set_alias(tiny.qdrant.alias, "b")
    builder.close()

    async def go() -> tuple[list[str], list[str], Any, Any, Any]:
        e = await Engine.create(tiny, vectors=EdgeIndex(tmp_path, read_only=True), background=False)
        try:
            q = np.array([1, 0, 0, 0], dtype=np.float32)
            own = LiveModel("v-a", ["a1", "a2"], np.eye(4, dtype=np.float32)[:2], collection="a")
            await e.guard.warm_vectors(own)
            warmed = set(e.vectors._shards)
            e.model = own
            from_own = [c.item_id for c in await e.candidates.ann(q, 2, RecFilter(), [], set())]
            gone = LiveModel("v-x", ["a1"], np.eye(4, dtype=np.float32)[:1], collection="pruned")
            await e.guard.warm_vectors(gone)
            e.model = gone
            from_alias = [c.item_id for c in await e.candidates.ann(q, 2, RecFilter(), [], set())]
            # The index unavailable at start, reopened later for a model whose collection is gone:
            # it opens (and searches through the alias), it does not stay "unavailable".
            e.vectors.close()
            e.vectors, e.open_vectors = None, lambda: EdgeIndex(tmp_path, read_only=True)
            e.model = LiveModel("v-y", ["a1"], np.eye(4, dtype=np.float32)[:1], collection="pruned-too")
            await e.guard.reopen_vectors()
            reopened = (e.vectors is not None, e.model.collection, sorted(e.vectors._shards) if e.vectors else [])
            return from_own, from_alias, warmed, gone.collection, reopened
        finally:
            await e.close()

    from_own, from_alias, warmed, collection, reopened = run(go())
    assert "a" in warmed
    assert from_own == ["a1", "a2"]
    assert collection is None and from_alias == ["b1", "b2"]
    assert reopened == (True, None, ["b"])


def test_slow_answers_are_logged_with_their_stage_timings(tiny: Settings, caplog: pytest.LogCaptureFixture) -> None:
    slow = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"slow_log_ms": 0.001})})

    async def go() -> Any:
        e = await _engine(slow)
        try:
            return await e.recommend(RecRequest("alice", first=3))
        finally:
            await e.close()

    with caplog.at_level("WARNING", logger="graphrec.engine"):
        res = run(go())
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("slow recommendations"))
    assert res.request_id in line and "user_state=" in line and "source." in line


def test_similar_items_repeat_from_the_result_cache(tiny: Settings) -> None:
    """The answer is the same for every user, so a repeat is served from the result cache without
    a store read; another size or filter is its own entry."""

    async def go() -> tuple[Any, Any, Any, list[str]]:
        e = await _engine(tiny)
        try:
            a = await e.similar_items("heat", 3)
            reads = count_reads(e)
            b = await e.similar_items("heat", 3)
            seen = list(reads)
            c = await e.similar_items("heat", 3, RecFilter(exclude_categories=("Horror",)))
            return a, b, c, seen
        finally:
            await e.close()

    a, b, c, reads_for_repeat = run(go())
    assert [r.item_id for r in b.items] == [r.item_id for r in a.items] and a.items
    assert [r.sources for r in b.items] == [r.sources for r in a.items]
    assert b.timings_ms.get("cache_hit") == 1.0 and "cache_hit" not in a.timings_ms and reads_for_repeat == []
    assert "cache_hit" not in c.timings_ms


def test_while_neo4j_is_away_the_last_complete_answer_is_served_stale(tiny: Settings) -> None:
    """With Neo4j unreachable, a user (or an item page) answered completely before gets that answer
    again, marked degraded with "neo4j" and "stale", instead of the popular list; a request never
    answered completely still gets the popular list; with stale_ttl_s = 0 nobody gets a stale one."""

    async def go(s: Settings) -> dict[str, Any]:
        e = await _engine(s)
        seen: list[Any] = []
        e.observers.append(lambda op, r: seen.append((op, r)))
        try:
            req = RecRequest("alice", first=4, context=RequestContext(now=2000.0))
            out: dict[str, Any] = {"before": await e.recommend(req), "similar_before": await e.similar_items("heat", 3)}
            e.results = type(e.results)(10, 30.0)  # the short-lived result cache has expired
            # Neo4j goes away; short budgets so that each degraded answer comes quickly.
            e.cfg = e.cfg.model_copy(update={"request_budget_ms": 80.0, "source_budget_ms": 40.0})
            dead = s.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:1", "connection_timeout_s": 0.5})
            await e.store.close()
            e.store = AsyncGraphStore(dead, "x" * 12)  # a real driver against a closed port
            seen.clear()
            out["during"] = await e.recommend(req)
            out["other_size"] = await e.recommend(RecRequest("alice", first=3, context=RequestContext(now=2000.0)))
            e.catalog.items.pop("heat", None)  # not in memory: its existence is asked of Neo4j
            out["similar_during"] = await e.similar_items("heat", 3)
            out["observed"] = [(op, r.degraded_reasons) for op, r in seen]
            return out
        finally:
            await e.close()

    out = run(go(tiny))
    before, during = out["before"], out["during"]
    assert not before.degraded and before.items
    assert during.degraded and during.degraded_reasons == ("neo4j", "stale")
    assert [r.item_id for r in during.items] == [r.item_id for r in before.items]
    assert [r.reason for r in during.items] == [r.reason for r in before.items]
    assert during.timings_ms["stale_hit"] == 1.0 and during.request_id != before.request_id
    assert out["other_size"].degraded and "stale" not in out["other_size"].degraded_reasons  # the popular list
    sim = out["similar_during"]
    assert sim.degraded and "stale" in sim.degraded_reasons
    assert [r.item_id for r in sim.items] == [r.item_id for r in out["similar_before"].items]
    # The metrics count stale answers, of similarItems too.
    assert ("recommendations", ("neo4j", "stale")) in out["observed"]
    assert ("similarItems", ("neo4j", "stale")) in out["observed"]

    off = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"stale_ttl_s": 0.0})})
    out = run(go(off))
    assert out["during"].degraded and "stale" not in out["during"].degraded_reasons


def test_start_up_rehearses_the_write_path_without_writing(tiny: Settings, store, monkeypatch) -> None:  # noqa: ANN001
    """warm_up plans recordInteraction's statements (the first write after a Neo4j start took
    ~1 s instead of ~0.2 s without it) in a transaction it rolls back: the graph is unchanged."""
    before = store.counts()
    clock = store.read("recs/latest_ts")[0]["ts"]
    rehearsed: list[tuple[str, str | None]] = []
    real = AsyncGraphStore.rehearse

    async def spy(self: AsyncGraphStore, statements: list[Any]) -> None:
        rehearsed.extend((n, (ids or {}).get("rel")) for n, ids, _ in statements)
        await real(self, statements)

    monkeypatch.setattr(AsyncGraphStore, "rehearse", spy)

    async def go() -> None:
        e = await _engine(tiny)  # warm_up runs in Engine.create
        try:
            await e.store.rehearse([("load/users", None, {"rows": [{"id": "rehearsed", "created_at": None, "props": {}}], "now": 1.0})])
        finally:
            await e.close()

    run(go())
    # Start-up rehearsed what recordInteraction runs, for every interaction type (then the test's own).
    assert {("load/interactions", t.value) for t in InteractionType} <= set(rehearsed)
    assert {("load/sessions", None), ("load/advance_clock", None)} <= set(rehearsed)
    assert store.counts() == before
    assert store.read("recs/latest_ts")[0]["ts"] == clock
    assert store.read("repo/get_users", ids=["rehearsed"]) == []  # a statement that would create one, rolled back


def test_start_up_commits_the_write_paths_shape_and_leaves_nothing_behind(tiny: Settings, store) -> None:  # noqa: ANN001
    """Engine.warm_writes commits repo/warm_commit (engine.warm_up_commits times at least, in
    rounds of 25) on two GraphrecMeta nodes of its own, then removes them, and those of a warm-up
    killed an hour ago: the graph is as before."""
    from neo4j import RoutingControl

    before = store.counts()
    store.run_text("CREATE (:GraphrecMeta {key: 'warm-up:killed', last_at: 1.0})"
                   "-[:WARMED_UP]->(:GraphrecMeta {key: 'warm-up:killed:session', last_at: 1.0})",
                   routing=RoutingControl.WRITE)

    def leftovers() -> list[dict[str, Any]]:
        return store.run_text("MATCH (m:GraphrecMeta) WHERE m.key STARTS WITH 'warm-up:' RETURN m.key AS key "
                              "UNION ALL MATCH ()-[r:WARMED_UP]->() RETURN r.key AS key")

    async def go(s: Settings) -> tuple[int, list[str], list[dict[str, Any]]]:
        e = await _engine(s)
        e.cfg = _warming(s).engine
        writes: list[str] = []
        real = e.store.write

        async def counting(name: str, *a: Any, **kw: Any) -> Any:
            writes.append(name)
            if name == "repo/warm_commit" and kw["round"] == 30:  # committed, mid-way: visible to others
                writes.append(f"seen {len(leftovers())}")
            return await real(name, *a, **kw)

        e.store.write = counting  # type: ignore[method-assign]
        try:
            done = await e.warm_writes()
            assert e.stats.get("warm_up_commits", 0) == done
            return done, writes, leftovers()
        finally:
            await e.close()

    done, writes, left = run(go(tiny))
    assert done >= tiny.engine.warm_up_commits == 50 and done % 25 == 0
    assert writes.count("repo/warm_commit") == done and writes[-1] == "repo/warm_commit_done"
    assert "seen 6" in writes  # its two nodes and the relationship of the round before, and the killed ones
    assert left == [] and store.counts() == before  # and the killed warm-up's nodes are gone
    off = tiny.engine.model_copy(update={"warm_up_commits": 0})
    assert run(go(tiny.model_copy(update={"engine": off})))[0] == 0


def test_start_up_serves_sample_users_until_answers_stop_getting_faster(tiny: Settings) -> None:
    """Engine.create warms the read path with real recommendations (rounds of 25, 200 at least),
    observed by nobody, counted in no source's candidates (the dashboard's and /metrics' shares
    are clients' traffic: the warm-up's ~200 answers used to show as ~1,200 ``popular`` hits
    before any client asked) and leaving no cached answer; warm_up_s = 0 turns it off."""
    async def go(s: Settings) -> tuple[float, int, int, list[Any], list[str]]:
        e = await _engine(s)
        seen: list[Any] = []
        e.observers.append(lambda op, r: seen.append(op))
        try:
            again = await e.warm_requests()
            counted = [k for k in e.stats if k.startswith(("candidates.", "late_or_failed."))]
            return e.stats.get("warm_up_requests", 0.0), again, len(e.results) + len(e.last_good), seen, counted
        finally:
            await e.close()

    at_start, again, cached, seen, counted = run(go(_warming(tiny)))
    assert at_start >= 200 and again >= 200 and at_start % 25 == 0
    assert cached == 0 and seen == [] and counted == []
    off = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"warm_up_s": 0.0})})
    assert run(go(off))[:2] == (0.0, 0)


def test_a_failing_warm_up_request_ends_the_warm_up_not_the_start(tiny: Settings, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> tuple[int, list[Any]]:
        e = await _engine(tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"warm_up_s": 0.0})}))
        try:
            e.cfg = e.cfg.model_copy(update={"warm_up_s": 20.0})
            calls: list[Any] = []

            async def broken(req: Any) -> Any:
                calls.append(req)
                raise ValueError("a bug in a source")

            e.recommend = broken  # type: ignore[method-assign]
            return await e.warm_requests(), calls
        finally:
            await e.close()

    with caplog.at_level("WARNING", logger="graphrec.engine"):
        served, calls = run(go())
    assert served == 0 and len(calls) == 1
    assert any("warm-up stopped" in r.getMessage() for r in caplog.records)


def test_the_live_models_hybrid_ranks_the_home_feed(tiny: Settings) -> None:
    """When the live version has a hybrid model (gnn.itemitem), the engine asks it for
    candidates (the ``hybrid`` source) and ranks every candidate by its scores: here its
    item-item weights point from alice's newest item (ronin) to "up", an item no other source
    puts first; consumed items stay out. Without the hybrid, "alien" leads (the test above)."""
    import numpy as np

    from graphrec.core.recs.hybrid import HybridScorer
    from graphrec.core.recs.model import LiveModel

    ids = ["heat", "ronin", "toy", "up", "alien", "new"]
    n = len(ids)
    ease = np.zeros((n, n), dtype=np.float32)
    ease[ids.index("ronin"), ids.index("up")] = 1.0
    ease[ids.index("ronin"), ids.index("toy")] = 0.5
    trend = np.array([5.0, 0.0, 0.0, 0.0, 4.0, 0.0], dtype=np.float32)  # heat and alien trend
    scorer = HybridScorer(ease, np.zeros((n, n), np.float32), trend, {"ease": 1.0},
                          {"position_half": 1.0, "history": 50, "trans_history": 20})

    async def go() -> Any:
        e = await _engine(tiny)
        try:
            e.model = LiveModel("v-hybrid", ids, np.eye(n, 4, dtype=np.float32), hybrid=scorer)
            res = await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))
            cold = await e.recommend(RecRequest("stranger", context=RequestContext(now=2000.0)))
            pref = await e.recommend(RecRequest("stranger2", context=RequestContext(
                now=2000.0, preferred_categories=("Animation",))))
            # With return weights (the trend alone) for users back after a day or more: alice asking
            # at 2000 is not returning; asking thirty days later, she is ranked by the trend.
            # (A version each: the result cache's key leaves the clock out.)
            e.model = LiveModel("v-returning", ids, np.eye(n, 4, dtype=np.float32), hybrid=returning)
            soon = await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))
            e.model = LiveModel("v-returning-2", ids, np.eye(n, 4, dtype=np.float32), hybrid=returning)
            later = await e.recommend(RecRequest("alice", context=RequestContext(now=2000.0 + 30 * 86400.0)))
            return res, cold, pref, soon, later
        finally:
            await e.close()

    returning = dataclasses.replace(scorer, params={**scorer.params, "return_days": 1.0},
                                    return_weights={"trend": 1.0})
    res, cold, pref, soon, later = run(go())
    assert [r.item_id for r in soon.items[:2]] == ["up", "toy"]
    assert later.items[0].item_id == "alien", [r.item_id for r in later.items]
    # A user without history: the trend; one who stated categories: those categories first, as
    # without a hybrid (test_cold_start_user_and_new_item).
    assert [r.item_id for r in cold.items[:2]] == ["heat", "alien"]
    assert {r.item_id for r in pref.items[:2]} == {"up", "toy"}
    ranked = [r.item_id for r in res.items]
    assert ranked[:2] == ["up", "toy"], ranked
    assert "hybrid" in res.items[0].sources
    assert "heat" not in ranked and "ronin" not in ranked


def test_the_neighbour_lists_files_serve_the_same_answers_without_reading_neo4j(tiny: Settings, store,  # noqa: ANN001
                                                                                caplog: pytest.LogCaptureFixture) -> None:
    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.testing import count_reads

    files = tiny.var_dir / "neighbours"
    refresh(store, export_snapshot(store, progress=False), tiny.interactions.score_weights, k=10, progress=False,
            index_dir=files)
    version = store.read("load/meta_get", key="neighbours")[0]["props"]["version"]
    without_files = tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"neighbour_files": False})})
    users = ("alice", "bob", "carol", "dave")

    async def answers(e: Engine) -> list[list[tuple[str, float, tuple[str, ...]]]]:
        out = []
        for u in users:
            res = await e.recommend(RecRequest(u, first=10, context=RequestContext(now=2000.0, session_id="s1")))
            assert not res.degraded
            out.append([(r.item_id, r.score, r.sources) for r in res.items])
        for i in ("heat", "alien", "toy"):
            out.append([(r.item_id, r.score, r.sources) for r in (await e.similar_items(i, first=10)).items])
        return out

    async def go() -> None:
        a, b = await _engine(tiny), await _engine(without_files)
        try:
            assert a.neighbours.index is not None and a.neighbours.index.version == version
            assert b.neighbours.index is None and a.readiness()["neighbour_files"] == version
            reads = count_reads(a)
            assert await answers(a) == await answers(b)
            assert "recs/neighbour_lists" not in reads and a.neighbours.round_trips == 0
            assert b.neighbours.round_trips > 0
            # A refresh that wrote no files here (another machine's): its version is not ours, so
            # the lists are read from the graph again.
            refresh(store, export_snapshot(store, progress=False), tiny.interactions.score_weights, k=10, progress=False)
            await a.refresh_neighbour_files()
            assert a.neighbours.index is None and a.readiness()["neighbour_files"] is None
            # Files that are not whole (a copy cut short) are refused with a warning, not served.
            refresh(store, export_snapshot(store, progress=False), tiny.interactions.score_weights, k=10, progress=False,
                    index_dir=files)
            newest = store.read("load/meta_get", key="neighbours")[0]["props"]["version"]
            (files / newest / "CO_INTERACTED.rows.npy").write_bytes(b"")
            with caplog.at_level(logging.WARNING, logger="graphrec.engine"):
                await a.refresh_neighbour_files()
            assert a.neighbours.index is None and "not usable" in caplog.text
            assert [r.item_id for r in (await a.recommend(RecRequest("alice", context=RequestContext(now=2000.0)))).items]
        finally:
            await a.close()
            await b.close()

    run(go())
