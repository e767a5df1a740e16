"""Issue 21, the data side, against the real test Neo4j on the tiny catalogue: idempotency keys
that name one interaction on both write paths, future timestamps and the graph's clock, an item
upserted moments before, and degraded answers that still exclude what the user consumed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphrec.core.config import Settings
from graphrec.core.errors import KeyConflict, ValidationError
from graphrec.core.graph.store import AsyncGraphStore
from graphrec.core.recs.types import RecRequest, RequestContext
from graphrec.engine.engine import Engine
from graphrec.testing import tiny_graph

pytestmark = pytest.mark.integration


@pytest.fixture()
def tiny(store, neo4j_settings: Settings, tmp_path: Path) -> Iterator[Settings]:  # noqa: ANN001
    from pydantic import SecretStr

    from gnn.neighbours import refresh
    from graphrec.core.export import export_snapshot
    from graphrec.core.graph.store import resolve_password

    tiny_graph(store)
    refresh(store, export_snapshot(store, progress=False), neo4j_settings.interactions.score_weights, k=10, progress=False)
    yield neo4j_settings.model_copy(update={
        "var_dir": tmp_path,  # a journal of this test's own
        "neo4j": neo4j_settings.neo4j.model_copy(update={"password": SecretStr(resolve_password(neo4j_settings))}),
        "engine": neo4j_settings.engine.model_copy(update={"explore_epsilon": 0.0, "request_budget_ms": 3000.0,
                                                          "source_budget_ms": 2000.0})})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _engine(s: Settings) -> Engine:
    return await Engine.create(s, vectors=None, background=False)


def _unreachable(s: Settings) -> AsyncGraphStore:
    """A real driver against a closed port: Neo4j unavailable."""
    return AsyncGraphStore(s.neo4j.model_copy(update={"uri": "bolt://127.0.0.1:1", "connection_timeout_s": 0.3}), "x" * 12)


def _click(user: str, key: str, item: str = "up", **kw: Any) -> dict[str, Any]:
    return {"user_id": user, "item_id": item, "type": "CLICK", "ts": time.time(), "key": key, **kw}


# ---- finding 1 / 9: a key names one interaction, on the direct path and the journal's --------------
def test_a_key_reused_for_another_interaction_is_refused_on_both_paths(tiny: Settings, store) -> None:  # noqa: ANN001
    async def go() -> dict[str, Any]:
        e = await _engine(tiny)
        out: dict[str, Any] = {}
        try:
            out["first"] = await e.record_interaction(_click("erin", "k-direct"))
            out["retry"] = await e.record_interaction(_click("erin", "k-direct"))
            for name, data in (("other_user", _click("frank", "k-direct")), ("other_item", _click("erin", "k-direct", "toy")),
                               ("other_type", {**_click("erin", "k-direct"), "type": "VIEW"})):
                with pytest.raises(KeyConflict) as exc:
                    await e.record_interaction(data)
                out[name] = exc.value
            # Another process (an engine of its own) wrote the key: the graph says so.
            e2 = await _engine(tiny)
            try:
                with pytest.raises(KeyConflict):
                    await e2.record_interaction(_click("frank", "k-direct"))
                live = e2.store
                e2.store = _unreachable(tiny)  # Neo4j away: the journal applies the same meaning
                out["journalled"] = await e2.record_interaction(_click("gina", "k-journal"))
                with pytest.raises(KeyConflict):
                    await e2.record_interaction(_click("hank", "k-journal"))
                out["journal_retry"] = await e2.record_interaction(_click("gina", "k-journal"))
                await e2.store.close()
                e2.store = live
                e2.neo4j_breaker.success()
                out["replayed"] = await e2.replay_journal()
            finally:
                await e2.close()
            return out
        finally:
            await e.close()

    out = run(go())
    assert out["first"].created and out["first"].stored == "direct"
    assert not out["retry"].created  # the same interaction again: a retry
    assert all(out[k].code == "BAD_USER_INPUT" and out[k].field == "key" for k in ("other_user", "other_item", "other_type"))
    assert out["journalled"].stored == "journal" and out["journalled"].created
    assert not out["journal_retry"].created and out["replayed"] == 1
    rows = store.run_text("MATCH (u:User)-[r]->(i:Item) WHERE r.key IN ['k-direct', 'k-journal'] "
                          "RETURN r.key AS key, u.id AS user, type(r) AS type ORDER BY key")
    assert rows == [{"key": "k-direct", "user": "erin", "type": "CLICKED"}, {"key": "k-journal", "user": "gina", "type": "CLICKED"}]


# ---- finding 1: poison entries are dead-lettered, never block, never open the breaker -----------
def test_a_poison_journal_entry_is_dead_lettered_and_the_rest_replays(tiny: Settings, store) -> None:  # noqa: ANN001
    """The journal of issue 21 (two entries with one key, different users; the second with a
    value no CLICK may have) plus one more conflicting entry, a line that is not JSON, and good
    entries after them: the good ones land, the rest is dead-lettered with reasons, the breaker
    stays closed."""
    import json

    now = time.time()
    lines = [
        {"dwell": None, "item": "up", "key": "k-1", "session": None, "ts": now - 20, "type": "CLICKED", "user": "a", "value": None},
        {"dwell": 0.0, "item": "up", "key": "k-1", "session": None, "ts": now - 10, "type": "CLICKED", "user": "b", "value": -95464.0},
        {"dwell": None, "item": "up", "key": "k-1", "session": None, "ts": now - 9, "type": "CLICKED", "user": "b", "value": None},
        {"dwell": None, "item": "up", "key": "k-2", "session": None, "ts": now - 5, "type": "CLICKED", "user": "c", "value": None},
    ]
    journal = tiny.var_dir / "journal"
    journal.mkdir(parents=True)
    text = "".join(json.dumps(x) + "\n" for x in lines[:3]) + "not json\n" + json.dumps(lines[3]) + "\n"
    (journal / "interactions.jsonl").write_text(text)

    async def go() -> tuple[int, str, int]:
        e = await _engine(tiny)
        try:
            n = await e.replay_journal()
            return n, e.neo4j_breaker.state, e.journal.pending()
        finally:
            await e.close()

    n, state, pending = run(go())
    rows = store.run_text("MATCH (u:User)-[r:CLICKED]->(:Item {id: 'up'}) WHERE r.key IN ['k-1', 'k-2'] "
                          "RETURN r.key AS key, u.id AS user ORDER BY key")
    assert rows == [{"key": "k-1", "user": "a"}, {"key": "k-2", "user": "c"}]
    assert (n, state, pending) == (5, "closed", 0)
    letters = [json.loads(x) for x in (journal / "dead-letter.jsonl").read_text().splitlines()]
    reasons = sorted(d["reason"] for d in letters)
    assert reasons[0].startswith("idempotency key already names a different interaction")
    assert reasons[1] == "invalid interaction: value: a CLICK value must be between 0 and 1"
    assert reasons[2] == "malformed journal line (not a JSON object)"
    assert all(d["at"] >= now for d in letters)


def _journal_clicks(s: Settings, keys: list[str], user: str = "erin") -> None:
    import json

    journal = s.var_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with open(journal / "interactions.jsonl", "a") as fh:
        for n, key in enumerate(keys):
            fh.write(json.dumps({"dwell": None, "item": "up", "key": key, "session": None, "ts": now - 30 + n,
                                 "type": "CLICKED", "user": user, "value": None}) + "\n")


def test_neo4j_refusing_replayed_rows_never_opens_the_breaker(tiny: Settings, store, monkeypatch) -> None:  # noqa: ANN001
    """The rule "a failure that is not Neo4j unavailable never opens the Neo4j breaker", met for
    real: a concurrent writer stores each journalled key for another user between the replay's
    check and its write, so Neo4j refuses the batch and then every row (constraint violations),
    more rows than the breaker's threshold. They are dead-lettered with Neo4j's reason, and the
    breaker stays closed with no failure counted: the engine writes at once afterwards."""
    import json

    from graphrec.core.graph.store import GraphStore, resolve_password
    from graphrec.engine.journal import _statements

    class ConcurrentWriter(GraphStore):
        """The replay's own store; right after its check, "another process" writes the keys."""

        def read(self, name: str, identifiers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
            rows = super().read(name, identifiers, **params)
            if name == "load/interaction_refs":
                for key in params["keys"]:
                    self.write_many(_statements([{"key": key, "user": "racer", "item": "up", "type": "CLICKED",
                                                  "ts": time.time() - 60, "value": None, "dwell": None, "session": None}]))
            return rows

    keys = [f"k-race-{n}" for n in range(5)]
    _journal_clicks(tiny, keys)
    monkeypatch.setattr(GraphStore, "from_settings", classmethod(lambda cls, st: ConcurrentWriter(st.neo4j, resolve_password(st))))

    async def go() -> tuple[int, str, int, Any]:
        e = await _engine(tiny)
        try:
            assert e.neo4j_breaker.threshold <= len(keys)
            n = await e.replay_journal()
            state, failures = e.neo4j_breaker.state, e.neo4j_breaker.failures
            direct = await e.record_interaction(_click("erin", "k-after-race"))
            return n, state, failures, direct
        finally:
            await e.close()

    n, state, failures, direct = run(go())
    assert (n, state, failures) == (5, "closed", 0)
    assert direct.stored == "direct" and direct.created
    letters = [json.loads(x) for x in (tiny.var_dir / "journal" / "dead-letter.jsonl").read_text().splitlines()]
    assert [d["row"]["key"] for d in letters] == keys
    assert all(d["reason"].startswith("refused by Neo4j: ") and "constraint violated" in d["reason"] for d in letters)
    assert store.run_text("MATCH (u:User)-[r:CLICKED]->() WHERE r.key STARTS WITH 'k-race-' RETURN DISTINCT u.id AS user") \
        == [{"user": "racer"}]


def test_neo4j_unavailable_to_the_replay_opens_the_breaker_and_nothing_is_dead_lettered(tiny: Settings) -> None:
    """The other side of the rule: a replay that cannot reach Neo4j counts against the breaker,
    which opens at its threshold (the replay then waits for it); the rows stay pending, never
    dead-lettered, and are written once Neo4j can be reached again."""

    async def go() -> dict[str, Any]:
        e = await _engine(tiny)
        try:
            live = e.settings
            e.settings = tiny.model_copy(update={"neo4j": tiny.neo4j.model_copy(update={
                "uri": "bolt://127.0.0.1:1", "connection_timeout_s": 0.3})})  # the replay's store: nothing listens
            out: dict[str, Any] = {"replays": []}
            for _ in range(e.neo4j_breaker.threshold):
                assert e.neo4j_breaker.state == "closed"
                out["replays"].append(await e.replay_journal())
            out["state"], out["pending"] = e.neo4j_breaker.state, e.journal.pending()
            e.settings = live
            e.neo4j_breaker.success()  # Neo4j is back (a probe succeeded)
            out["after"] = await e.replay_journal()
            return out
        finally:
            await e.close()

    _journal_clicks(tiny, ["k-away-0", "k-away-1"])
    out = run(go())
    assert out["replays"] == [0, 0, 0] and out["state"] == "open" and out["pending"] > 0
    assert out["after"] == 2 and not (tiny.var_dir / "journal" / "dead-letter.jsonl").exists()
    assert store_keys(tiny) == ["k-away-0", "k-away-1"]


def store_keys(s: Settings) -> list[str]:
    from graphrec.core.graph.store import GraphStore

    with GraphStore.from_settings(s) as st:
        return [r["key"] for r in st.run_text("MATCH ()-[r:CLICKED]->() WHERE r.key STARTS WITH 'k-away-' "
                                               "RETURN r.key AS key ORDER BY key")]


# ---- finding 4: future timestamps and the graph's clock -------------------------------------------
def _sources(res: Any) -> list[tuple[str, tuple[str, ...]]]:
    return [(r.item_id, r.sources) for r in res.items]


def test_a_write_from_the_future_is_refused_and_a_wrecked_clock_is_repaired(tiny: Settings, store) -> None:  # noqa: ANN001
    """Issue 21: one VIEW stamped 2099 moved the clock to 2099 and every user's recommendations
    became the popular list. Now it is BAD_USER_INPUT naming the field, and a clock already
    wrecked (by a write from before the limit) is set right by ``graphrec clock repair``."""
    from typer.testing import CliRunner

    import graphrec.cli as cli

    async def recs() -> Any:
        e = await _engine(tiny)
        try:
            await e.refresh_catalog(full=True)
            return await e.recommend(RecRequest("alice", first=5))
        finally:
            await e.close()

    async def future() -> ValidationError:
        e = await _engine(tiny)
        try:
            with pytest.raises(ValidationError) as exc:
                await e.record_interaction({"user_id": "x", "item_id": "heat", "type": "VIEW", "ts": "2099-12-31T00:00:00Z"})
            return exc.value
        finally:
            await e.close()

    before = run(recs())
    assert any("co_interaction" in s for _, s in _sources(before))
    err = run(future())
    assert err.code == "BAD_USER_INPUT" and err.field == "ts" and "future" in str(err)
    # (the clock: the older of the data's two newest times, 1800 and 1700)
    assert store.read("recs/latest_ts")[0]["ts"] == 1700.0
    assert _sources(run(recs())) == _sources(before)

    # A clock wrecked before the limit existed: the CLI repairs it from the data.
    store.write("load/advance_clock", ts=4_102_000_000.0, runner_up=4_101_000_000.0, slack=0.0)
    wrecked = run(recs())
    assert _sources(wrecked) != _sources(before)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("graphrec.cli.common.get_settings", lambda: tiny)  # the CLI on the test Neo4j
        result = CliRunner().invoke(cli.app, ["clock", "repair"])
    assert result.exit_code == 0, result.output
    assert "now 1800" in result.output
    assert store.read("recs/latest_ts")[0]["ts"] == 1800.0
    assert _sources(run(recs())) == _sources(before)


def test_a_single_outlier_cannot_move_the_clock(store) -> None:  # noqa: ANN001
    """Issue 21: the clock is the older of the two newest times it was given, so one event far
    ahead of all others (within the allowed skew) leaves "now" alone until a second confirms it;
    the clock never moves back, and duplicates of the outlier do not confirm it."""

    def advance(ts: float, runner_up: float | None = None) -> float:
        store.write("load/advance_clock", ts=ts, runner_up=runner_up, slack=0.0)
        return store.read("recs/latest_ts")[0]["ts"]

    assert advance(1800.0, 1700.0) == 1700.0  # a batch: its two newest times
    assert advance(1900.0) == 1800.0  # a later event: the clock follows, one event behind
    outlier = time.time() + 200  # far ahead of the data, yet within loader.max_clock_skew_s
    assert advance(outlier) == 1900.0
    assert advance(outlier) == 1900.0  # the same time again is not a second witness
    assert advance(1950.0) == 1950.0  # ordinary traffic still moves it; the outlier waits on top
    assert advance(1000.0) == 1950.0  # never back
    assert advance(outlier + 10) == outlier  # a second event that far ahead: time has moved


# ---- finding 9: an item upserted moments before, while Neo4j is slow ------------------------------
def test_an_item_upserted_moments_before_is_known_while_neo4j_is_slow(tiny: Settings, store) -> None:  # noqa: ANN001
    async def go() -> tuple[Any, int]:
        e = await _engine(tiny)
        try:
            await e.upsert_item({"id": "brand-new", "title": "Brand New Too", "categories": ["Action"]})
            # Neo4j slow: every call outlives its budget (a timeout setting, the real store).
            e.cfg = e.cfg.model_copy(update={"request_budget_ms": 0.001})
            res = await e.record_interaction(_click("erin", "k-new", item="brand-new"))
            e.cfg = e.cfg.model_copy(update={"request_budget_ms": 3000.0})
            await asyncio.sleep(0.5)  # the abandoned calls settle
            e.neo4j_breaker.success()
            return res, await e.replay_journal()
        finally:
            await e.close()

    res, replayed = run(go())
    assert res.stored == "journal" and res.created and replayed == 1
    assert store.run_text("MATCH (:User {id: 'erin'})-[r:CLICKED {key: 'k-new'}]->(:Item {id: 'brand-new'}) "
                          "RETURN count(r) AS n") == [{"n": 1}]


def test_an_item_upserted_on_another_worker_is_journalled_while_neo4j_is_away(tiny: Settings, store) -> None:  # noqa: ANN001
    """A worker whose catalogue does not have an item yet (upserted through another worker) and
    cannot ask Neo4j answered NOT_FOUND, and the interaction was lost. It is journalled now (the
    graph cannot say whether the item exists); the replay writes it, and dead-letters, with its
    reason, one for an item that really does not exist."""
    import json

    async def go() -> tuple[Any, Any, int]:
        worker = await _engine(tiny)  # its catalogue is read now, before the upsert
        other = await _engine(tiny)
        try:
            assert worker.catalog.loaded and "elsewhere" not in worker.catalog.items
            await other.upsert_item({"id": "elsewhere", "title": "Upserted Elsewhere", "categories": ["Action"]})
            live = worker.store
            worker.store = _unreachable(tiny)  # Neo4j away for this worker
            try:
                res = await worker.record_interaction(_click("erin", "k-elsewhere", item="elsewhere"))
                ghost = await worker.record_interaction(_click("erin", "k-ghost", item="never-was"))
            finally:
                await worker.store.close()
                worker.store = live
            worker.neo4j_breaker.success()
            return res, ghost, await worker.replay_journal()
        finally:
            await other.close()
            await worker.close()

    res, ghost, replayed = run(go())
    assert (res.stored, res.created, ghost.stored, replayed) == ("journal", True, "journal", 2)
    assert store.run_text("MATCH (:User {id: 'erin'})-[r:CLICKED]->(i:Item) WHERE r.key IN ['k-elsewhere', 'k-ghost'] "
                          "RETURN r.key AS key, i.id AS item") == [{"key": "k-elsewhere", "item": "elsewhere"}]
    letters = [json.loads(x) for x in (tiny.var_dir / "journal" / "dead-letter.jsonl").read_text().splitlines()]
    assert [(d["row"]["key"], d["reason"]) for d in letters] == [("k-ghost", "unknown item id 'never-was'")]


# ---- finding 10: a degraded answer still excludes what the user consumed ---------------------------
def test_a_degraded_answer_never_recommends_what_the_user_consumed(tiny: Settings) -> None:
    """Issue 21: with Neo4j slow, a degraded answer ranked the user's own rated items. The state
    read before (and what was recorded since) is kept: it is excluded. A user whose state was never
    read (zoe: not even by the start-up warm-up) is answered with "consumed_unknown" among the reasons."""

    async def go() -> dict[str, Any]:
        e = await _engine(tiny)
        try:
            out = {"before": await e.recommend(RecRequest("alice", first=100, context=RequestContext(now=2000.0)))}
            await e.record_interaction({"user_id": "alice", "item_id": "alien", "type": "PURCHASE", "ts": 1900.0})
            # Neo4j slow: the user state read outlives its budget (and every source its own).
            e.cfg = e.cfg.model_copy(update={"request_budget_ms": 0.001, "source_budget_ms": 0.001, "stale_ttl_s": 0.0})
            out["during"] = await e.recommend(RecRequest("alice", first=100, context=RequestContext(now=2000.0)))
            out["stranger"] = await e.recommend(RecRequest("zoe", first=100, context=RequestContext(now=2000.0)))
            e.cfg = e.cfg.model_copy(update={"stale_ttl_s": 600.0})
            out["stale"] = await e.recommend(RecRequest("alice", first=100, context=RequestContext(now=2000.0)))
            return out
        finally:
            await e.close()

    out = run(go())
    consumed = {"heat", "ronin", "alien"}  # rated, rated, bought just now
    assert not out["before"].degraded and not {r.item_id for r in out["before"].items} & {"heat", "ronin"}
    for name in ("during", "stale"):
        res = out[name]
        assert res.degraded and "neo4j" in res.degraded_reasons and res.items, name
        assert not {r.item_id for r in res.items} & consumed, (name, [r.item_id for r in res.items])
        assert "consumed_unknown" not in res.degraded_reasons
    assert "stale" in out["stale"].degraded_reasons
    # The stale answer lost what was consumed since; the popular list filled it up again.
    assert [r.rank for r in out["stale"].items] == list(range(1, len(out["stale"].items) + 1))
    assert {r.item_id for r in out["stale"].items} == {"new", "toy", "up"}  # all the tiny catalogue has left
    assert "consumed_unknown" in out["stranger"].degraded_reasons


# ---- dead letters: listed, requeued once their cause is fixed, replayed from the CLI --------------
def test_an_operator_requeues_dead_letters_after_creating_the_missing_item(tiny: Settings, store) -> None:  # noqa: ANN001
    """A click journalled for an item nobody created is dead-lettered by ``graphrec journal
    replay``; ``dead-letters`` lists it with its reason; once the item exists, ``requeue --item``
    and ``replay`` write it: the interaction acknowledged while Neo4j was away is in the graph."""
    import json
    import os
    import subprocess
    import sys

    from neo4j import RoutingControl

    n = tiny.neo4j
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(tiny.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port), "COLUMNS": "200",
                "GRAPHREC_NEO4J_PASSWORD": n.password.get_secret_value() if n.password else ""})

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "graphrec.cli", "journal", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return " ".join(out.stdout.split())

    journal = tiny.var_dir / "journal"
    journal.mkdir(parents=True)
    row = {"dwell": None, "item": "late", "key": "k-late", "session": None, "ts": time.time() - 5, "type": "CLICKED",
           "user": "erin", "value": None}
    (journal / "interactions.jsonl").write_text(json.dumps(row) + "\n")
    first = cli("replay")
    assert "replayed 1 journal lines" in first and "1 dead-lettered" in first
    listed = cli("dead-letters")
    assert "k-late" in listed and "unknown item id 'late'" in listed and "1 dead letters" in listed
    store.run_text("CREATE (:Item {id: 'late', title: 'Late'})", routing=RoutingControl.WRITE)
    assert "requeued 1 interactions" in cli("requeue", "--item", "late")
    assert "replayed 1 journal lines" in cli("replay")
    got = store.run_text("MATCH (:User {id: 'erin'})-[r:CLICKED]->(:Item {id: 'late'}) RETURN r.key AS key")
    assert got == [{"key": "k-late"}]
    assert "0 dead letters" in cli("dead-letters") and len(list(journal.glob("dead-letter.requeued-*.jsonl"))) == 1
