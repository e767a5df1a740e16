"""What the API serves, scored on a held-out split of MovieLens-100K: the service as a user runs it.

The split's history (train + validation of :func:`gnn.evaluate.make_split`) is written as CSV
files and loaded into a Neo4j of its own through the CSV loader (``graphrec load users / items /
interactions``; the test part never reaches the graph), then ``graphrec train`` (and with
``--ranker`` ``graphrec train-ranker``) as documented, then ``graphrec serve``; every test user
is asked ``recommendations(userId, first: 100)`` over HTTP, without a request ``now`` (the
engine's clock is the graph's). The answers are scored as the offline tables score a model
(NDCG@10 and Recall@100 of the user's held-out positives; what the user saw before is never
recommended by the engine, and ranked out offline) beside EASE, with MostPopular for users
without history, fit on the same history (its lambda chosen on the split's validation).

    python -m bench.served_quality --protocol user-temporal --seed 7
    python -m bench.served_quality --protocol global-time --cut 0.85 --seed 3 --ranker
    python -m bench.served_quality --protocol user-temporal --holdout 0.1  # a split no evaluation uses

Its own Neo4j (``var/served-quality``, Bolt 7690, HTTP 7477) is started fresh and stopped
afterwards; the demo database is never touched. The report goes to
``bench/reports/served-quality-<protocol>.json``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import write_report

BOLT, HTTP = 7690, 7477
HOST = "127.0.0.1"
QUERY = "query($u: ID!) { recommendations(userId: $u, first: 100) { degraded degradedReasons items { item { id } } } }"
#: The snapshot's interaction kinds as the CSV loader spells them.
LOADER_TYPE = {"RATED": "RATE", "CLICKED": "CLICK", "VIEWED": "VIEW", "PURCHASED": "PURCHASE", "SKIPPED": "SKIP"}


def write_csvs(snap: Any, hist: np.ndarray, out: Path) -> dict[str, Path]:
    """The users and interactions of ``hist`` and every item, as the CSV loader reads them (items
    without ``created_at``: the loader sets it from their first interaction in the graph)."""
    from graphrec.core.snapshot import KIND_CODE

    names = {code: LOADER_TYPE[k] for k, code in KIND_CODE.items() if k in LOADER_TYPE}
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{k}.csv" for k in ("users", "items", "interactions")}
    idx = np.nonzero(hist)[0]
    with open(paths["users"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id"])
        for u in np.unique(snap.user[idx]):
            w.writerow([snap.user_ids[u]])
    with open(paths["items"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "year", "available", "categories"])
        for iid, it in zip(snap.item_ids, snap.items, strict=True):
            w.writerow([iid, it.title, it.year if it.year is not None else "", "true", "|".join(it.categories)])
    with open(paths["interactions"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "type", "ts", "value"])
        for j in idx:
            w.writerow([snap.user_ids[snap.user[j]], snap.item_ids[snap.item[j]], names[int(snap.kind[j])],
                        repr(float(snap.ts[j])), repr(float(snap.value[j]))])
    return paths


def replay(snap: Any, split: Any, var: Path, truth: dict[int, set[str]], lists: dict[int, list[str]]) -> dict[str, Any]:
    """The offline replay (:mod:`gnn.ranking.offline`) of the version the API served, on the same
    history: each test user's 100 as the engine picks them (the API's ``first: 100``) and as the
    evaluation tables rank them (:func:`gnn.ranking.offline.evaluate`), with the share of the
    API's lists the first reproduces."""
    from gnn.ranking.offline import World, evaluate, fusion_scorer
    from graphrec.core.config import load_settings
    from graphrec.core.graph.store import GraphStore
    from graphrec.core.recs.model import LiveModel
    from graphrec.core.registry import Registry

    base = load_settings()  # with the scratch graph's place and ports, as the steps ran (``env``)
    settings = base.model_copy(update={"var_dir": var, "neo4j": base.neo4j.model_copy(
        update={"uri": None, "password": None, "bolt_port": BOLT, "http_port": HTTP})})
    with GraphStore.from_settings(settings) as store:
        v = Registry(store, var / "models").live("gnn")
    assert v is not None
    model = LiveModel.load(v.id, v.artifact_dir or "")
    world = World.build(snap, split.hist, model, engine=settings.engine, type_weights=settings.interactions.score_weights)
    scorer = fusion_scorer(world)
    page = {u: [c.item_id for c in world.serve(u, scorer, 100, explore_seed=settings.seed)[0]]  # as the engine explores
            for u in truth}
    overlap = [len(set(page[u]) & set(lists.get(u, []))) / max(1, len(lists.get(u, []))) for u in truth]
    return {"replay, first: 100": {**scored(page, truth, snap), "overlap_with_api": float(np.mean(overlap))},
            "replay as the tables rank (10 served + candidates)": {**evaluate(world, truth, scorer), "users": len(truth)}}


def scored(lists: dict[int, list[str]], truth: dict[int, set[str]], snap: Any) -> dict[str, Any]:
    """The tables' list metrics (a user without a list scores 0), and how many users."""
    from gnn.ranking.offline import list_metrics

    return {**list_metrics(lists, truth, snap.num_items), "users": len(truth)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=("user-temporal", "global-time"), default="user-temporal")
    ap.add_argument("--cut", type=float, default=0.8, help="global-time: the train's quantile of timestamps")
    ap.add_argument("--holdout", type=float, default=0.2,
                    help="user-temporal: the fraction of each user's interactions held out (the protocol's: 0.2)")
    ap.add_argument("--seed", type=int, default=7, help="the split's seed (its validation users)")
    ap.add_argument("--ranker", action="store_true", help="also `graphrec train-ranker` before serving")
    ap.add_argument("--var-dir", type=Path, default=Path("var/served-quality"))
    ap.add_argument("--heap", default="1g")
    ap.add_argument("--pagecache", default="512m")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    import httpx

    from bench.hybrid_quality import reference
    from gnn.evaluate import make_split
    from gnn.ranking.offline import targets
    from gnn.split import relevant
    from graphrec.core.config import load_settings
    from graphrec.testing.server import free_port
    from loaders import movielens

    settings = load_settings()
    snap = movielens.snapshot(movielens.fetch(settings.cache_dir))
    split = make_split(snap, a.protocol, a.cut, settings.gnn.validation_fraction, 0, a.seed, a.holdout)
    var = a.var_dir.resolve()
    env = dict(os.environ, GRAPHREC_VAR_DIR=str(var), GRAPHREC_NEO4J_BOLT_PORT=str(BOLT),
               GRAPHREC_NEO4J_HTTP_PORT=str(HTTP), GRAPHREC_NEO4J_HEAP=a.heap, GRAPHREC_NEO4J_PAGECACHE=a.pagecache)
    exe = [sys.executable, "-m", "graphrec.cli"]
    steps: dict[str, float] = {}

    def step(name: str, *argv: str) -> None:
        print(f"=== {name}", flush=True)
        t0 = time.perf_counter()
        subprocess.run([*exe, *argv], env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
        steps[name] = round(time.perf_counter() - t0, 1)

    subprocess.call([*exe, "neo4j", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(var, ignore_errors=True)
    paths = write_csvs(snap, split.hist, var / "csv")
    log = open(var / "steps.log", "w")  # noqa: SIM115 - every step's output, closed at the end
    report: dict[str, Any] = {"benchmark": "served_quality", "protocol": a.protocol, "seed": a.seed,
                              "cut": a.cut if a.protocol == "global-time" else None,
                              "holdout": a.holdout if a.protocol == "user-temporal" else None, "split": split.meta}
    server = None
    try:
        step("neo4j start", "neo4j", "start")
        for kind in ("users", "items", "interactions"):
            step(f"load {kind}", "load", kind, str(paths[kind]))
        step("train", "train")
        if a.ranker:
            step("train-ranker", "train-ranker")
        port = free_port()
        server = subprocess.Popen([*exe, "serve", "--port", str(port), "--workers", "1"], stdout=log,
                                  stderr=subprocess.STDOUT,
                                  env=dict(env, GRAPHREC_API_ANONYMOUS_READ="true", GRAPHREC_API_RATE_LIMIT_PER_S="100000",
                                           GRAPHREC_API_RATE_LIMIT_BURST="100000"))
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - t0 > 300:
                raise SystemExit("the API did not become ready")
            time.sleep(0.5)
        truth = targets(snap, split.test)
        lists: dict[int, list[str]] = {}
        errors = degraded = 0
        reasons: collections.Counter[str] = collections.Counter()  # why answers were degraded
        print(f"=== asking {len(truth)} test users", flush=True)
        t0 = time.perf_counter()
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as client:
            for u in truth:
                r = client.post("/graphql", json={"query": QUERY, "variables": {"u": snap.user_ids[u]}})
                body = r.json()
                if r.status_code != 200 or body.get("errors") or not body.get("data"):
                    errors += 1
                    continue
                rec = body["data"]["recommendations"]
                degraded += bool(rec["degraded"])
                reasons.update(rec["degradedReasons"])
                lists[u] = [x["item"]["id"] for x in rec["items"]]
        steps["ask"] = round(time.perf_counter() - t0, 1)
        known = set(np.unique(snap.user[relevant(snap, split.hist)]).tolist())
        rows: dict[str, Any] = {}
        refs: dict[str, dict[str, float]] = {}
        for group, sel in (("all", None), ("known users", True), ("new users", False)):
            part = {u: t for u, t in truth.items() if sel is None or (u in known) == sel}
            if part and (sel is None or len(part) < len(truth)):
                name = "served (API)" + ("" if sel is None else f", {group}")
                rows[name] = scored(lists, part, snap)
                users = np.isin(np.arange(snap.num_users), list(part))
                refs[name] = reference(snap, replace(split, test=split.test & users[snap.user]))
        if not a.ranker:
            rows.update(replay(snap, split, var, truth, lists))
        report.update(rows=rows, references=refs, errors=errors, degraded=degraded,
                      degraded_reasons=dict(reasons), steps=steps,
                      x={k: {m: rows[k][m] / r[m] for m in ("ndcg@10", "recall@100")} for k, r in refs.items()})
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        subprocess.call([*exe, "neo4j", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log.close()
    for name, m in report["rows"].items():
        extra = f"  (same as the API: {m['overlap_with_api']:.1%} of its items)" if "overlap_with_api" in m else ""
        print(f"{name[:48]:48s} users {m['users']:4d}  NDCG@10 {m['ndcg@10']:.4f}  Recall@100 {m['recall@100']:.4f}{extra}")
        if name in report["references"]:
            r, x = report["references"][name], report["x"][name]
            print(f"{'  EASE + MostPopular, same users':48s}             NDCG@10 {r['ndcg@10']:.4f}  Recall@100 "
                  f"{r['recall@100']:.4f}  -> served x{x['ndcg@10']:.3f}, x{x['recall@100']:.3f}")
    print(f"{report['errors']} errors, {report['degraded']} degraded {json.dumps(report['degraded_reasons'])}; "
          f"steps {json.dumps(steps)}")
    write_report(a.out or Path(f"bench/reports/served-quality-{a.protocol}.json"), report)


if __name__ == "__main__":
    main()
