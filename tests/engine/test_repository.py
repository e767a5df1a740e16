"""The engine's repository (reads, upserts, recorded interactions) and the collaborative Cypher
paths on a hand-checkable graph."""

from __future__ import annotations

from typing import Any

import pytest

from graphrec.core.config import InteractionSettings
from graphrec.core.errors import KeyConflict, NotFound, ValidationError
from graphrec.engine.engine import Engine
from graphrec.testing import on_engine, tiny_graph

DEFAULT_TYPE_WEIGHTS = InteractionSettings().score_weights

pytestmark = pytest.mark.integration


def test_record_interaction_is_idempotent_and_checks_items(store, neo4j_settings) -> None:  # noqa: ANN001
    tiny_graph(store)
    ev = {"user_id": "newbie", "item_id": "heat", "type": "PURCHASE", "ts": 2000.0, "session_id": "n-1", "key": "k1"}

    async def go(e: Engine) -> None:
        first = await e.record_interaction(ev)
        assert first.created and first.stored == "direct"
        assert not (await e.record_interaction(ev)).created  # retry with the same key
        assert [h.item_id for h in await e.repo.user_history("newbie")] == ["heat"]
        with pytest.raises(NotFound):
            await e.record_interaction({**ev, "item_id": "ghost", "key": "k2"})
        with pytest.raises(ValidationError) as err:
            await e.record_interaction({**ev, "type": "HUG"})
        assert err.value.field == "type"
        with pytest.raises(KeyConflict):
            await e.record_interaction({**ev, "item_id": "alien"})  # the key names another interaction
        assert await e.repo.user_history("nobody") == []

    on_engine(neo4j_settings, go)


def test_history_newest_first(store, neo4j_settings) -> None:  # noqa: ANN001
    tiny_graph(store)

    async def go(e: Engine) -> list[Any]:
        return await e.repo.user_history("bob", limit=2)

    hist = on_engine(neo4j_settings, go)
    assert [(h.item_id, h.type) for h in hist] == [("alien", "PURCHASED"), ("ronin", "CLICKED")]


def test_collaborative_paths(store) -> None:  # noqa: ANN001
    tiny_graph(store)
    common = {"type_weights": DEFAULT_TYPE_WEIGHTS, "now": 2000.0, "half_life_s": 1e6, "history": 20, "fanout": 30, "limit": 10}
    rows = store.read("recs/co_interaction", user_id="alice", **common)
    # alice rated heat and ronin; bob and dave also interacted with alien: recommended, with a reason.
    assert [r["item_id"] for r in rows] == ["alien"] and set(rows[0]["because"]) <= {"heat", "ronin"}
    content = store.read("recs/shared_content", user_id="alice", type_weights=DEFAULT_TYPE_WEIGHTS, history=20, limit=10)
    assert content[0]["item_id"] == "new"  # shares Action and the rare "heist" tag
    sess = store.read("recs/session_co_occurrence", item_ids=["toy"], fanout=10, limit=10)
    assert [r["item_id"] for r in sess] == ["up"]
    pop = store.read("recs/popular", since=0.0, now=2000.0, half_life_s=1e9, type_weights=DEFAULT_TYPE_WEIGHTS,
                     category=None, limit=3)
    assert pop[0]["item_id"] == "alien"  # purchase 3 + rating 1 = 4 beats heat's 1 + 1 + 0.7
    pop_anim = store.read("recs/popular", since=0.0, now=2000.0, half_life_s=1e9, type_weights=DEFAULT_TYPE_WEIGHTS,
                          category="Animation", limit=3)
    assert [r["item_id"] for r in pop_anim] == ["up", "toy"]
    fresh = store.read("recs/fresh_items", since=1800.0, limit=5)
    assert [r["item_id"] for r in fresh] == ["new"]
    assert store.read("recs/latest_ts")[0]["ts"] == 1700.0  # the older of the two newest times


def test_the_paged_popular_lists_rank_as_one_scan_of_the_window(store) -> None:  # noqa: ANN001
    """window_lists reads the window page by page, each page returning only the items that can
    still enter the lists: whatever the page size, the lists are recs/popular's ranking, overall
    and within each category, and later pages return fewer items once the lists are full."""
    import asyncio

    from graphrec.engine.catalog import window_lists

    tiny_graph(store)
    returned: list[int] = []

    class Reader:  # the engine's async store, over the session's sync one
        async def read(self, name: str, plain: bool = False, **params: object) -> list[dict]:
            rows = store.read(name, **params)
            returned.append(len(rows[0]["items"]))
            return rows

    common = {"since": 0.0, "now": 2000.0, "half_life_s": 1e9, "type_weights": DEFAULT_TYPE_WEIGHTS}

    def popular(category: str | None, limit: int) -> list[tuple[str, float]]:
        return [(r["item_id"], r["score"]) for r in store.read("recs/popular", category=category, limit=limit, **common)]

    categories = [r["c"] for r in store.run_text("MATCH (c:Category) RETURN c.name AS c")]
    rows: dict[tuple[int, int], int] = {}  # (page size, list size) -> item rows the pages returned
    for page in (1, 2, 3, 100):
        for top, per_category in ((1, 1), (3, 2), (50, 50)):
            returned.clear()
            (overall, by_cat), _ = asyncio.run(window_lists(Reader(), DEFAULT_TYPE_WEIGHTS, 0.0, 1e9, 2000.0, top,
                                                       per_category, page_items=page, duty=0.9))
            assert [i for i, _ in overall] == [i for i, _ in popular(None, top)], (page, top)
            assert [s for _, s in overall] == pytest.approx([s for _, s in popular(None, top)])
            for c in categories:
                assert [i for i, _ in by_cat.get(c, [])] == [i for i, _ in popular(c, per_category)], (page, c)
            rows[page, top] = sum(returned)
    # Lists of one fill on the first pages, and later pages leave out what cannot enter them;
    # lists of 50 never fill, so every scored item comes back.
    assert rows[1, 1] < rows[1, 50] and rows[2, 1] < rows[2, 50]


def test_the_clock_moves_forward_and_only_past_the_slack(store) -> None:  # noqa: ANN001
    """load/advance_clock never moves the clock back, moves it only when two events say so (see
    test_hostile_data for the outlier), and with a slack writes (and locks) nothing until the
    clock is that far behind: recordInteraction passes engine.clock_slack_s."""
    def clock() -> float | None:
        return store.read("recs/latest_ts")[0]["ts"]

    def advance(ts: float, slack: float) -> list[dict[str, float]]:
        return store.write("load/advance_clock", ts=ts, runner_up=None, slack=slack)

    assert advance(1000.0, 0.0) == [{"ts": 1000.0}]
    assert advance(1030.0, 60.0) == []  # 30 s behind: left
    assert clock() == 1000.0
    assert advance(1061.0, 60.0) == [{"ts": 1000.0}]  # a single later event: noted, not yet the clock
    assert advance(1070.0, 60.0) == [{"ts": 1061.0}]  # a second one: the clock moves
    advance(500.0, 0.0)  # older: never back
    assert clock() == 1061.0


def test_fill_pool_leaves_that_many_connections_open_and_stops_on_a_dead_server(neo4j_settings) -> None:  # noqa: ANN001
    """The API opens ``neo4j.warm_connections`` at start, so a step up in the request rate does not
    open them all at once under load. The driver keeps them (its pool, read through the driver's
    internals: no public count); a failed open ends the fill at once, not after its timeout."""
    import asyncio
    import time

    from graphrec.core.errors import GraphStoreUnavailable
    from graphrec.core.graph.store import AsyncGraphStore, resolve_password

    async def main() -> None:
        st = AsyncGraphStore(neo4j_settings.neo4j, resolve_password(neo4j_settings))
        try:
            await st.fill_pool(6)
            assert sum(len(c) for c in st.driver._pool.connections.values()) == 6
        finally:
            await st.close()
        dead = AsyncGraphStore(neo4j_settings.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:1",
                                                                       "connection_timeout_s": 0.3}), "x" * 12)
        t = time.monotonic()
        try:
            with pytest.raises(GraphStoreUnavailable):
                await dead.fill_pool(6, timeout=20.0)
        finally:
            await dead.close()
        assert time.monotonic() - t < 10

    asyncio.run(main())
