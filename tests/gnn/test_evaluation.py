"""The evaluation protocol: what counts as relevant, the two splits, the table's shape."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot


def _snap() -> Snapshot:
    """3 users x 8 items, 6 interactions each. Held out per user (the last 20% = the last 2 of
    6): user 0 skipped both; users 1 and 2 clicked one and skipped the other."""
    user, item, ts, kind = [], [], [], []
    for u in range(3):
        for k in range(6):
            user.append(u)
            item.append((u + k) % 8)
            ts.append(1000.0 * k + u)
            skip = k == 5 or (u == 0 and k == 4)
            kind.append(KIND_CODE["SKIPPED"] if skip else KIND_CODE["CLICKED"])
    n = len(user)
    return Snapshot([f"u{u}" for u in range(3)], [f"i{i}" for i in range(8)], np.array(user), np.array(item),
                    np.array(ts), np.array(kind, dtype=np.int8), np.zeros(n, np.float32),
                    [ItemContent(title=f"t{i}") for i in range(8)])


def test_skipped_is_never_a_relevant_test_item() -> None:
    """A user whose held-out interactions are all skips has nothing relevant to find: not
    evaluated, by the GNN's metrics, the baselines or the offline replay; the others' skipped
    items are not targets."""
    from gnn.evaluate import baselines, gnn_metrics
    from gnn.ranking.offline import targets
    from gnn.split import train_val_test

    snap = _snap()
    tr, va, te = train_val_test(snap)
    skipped = te & (snap.kind == KIND_CODE["SKIPPED"])
    assert skipped.sum() == 4 and (te & ~skipped).sum() == 2
    truth = targets(snap, te)
    assert sorted(truth) == [1, 2]
    for u in (1, 2):
        assert truth[u] == {snap.item_ids[i] for i in snap.item[te & ~skipped & (snap.user == u)]}
    params = {"type_weights": {"CLICKED": 1.0}, "rating_center": 0.0, "half_life_days": 1e9, "max_history": 0}
    emb = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    assert gnn_metrics(emb, snap, tr | va, te, params)["users"] == 2
    for name, row in baselines(snap, tr, va, te, seed=1, progress=False).items():
        assert row["users"] == 2, name


def _timeline_snap() -> Snapshot:
    """10 users x 10 items over 100 time steps; user 9 and item 9 appear only at the end."""
    rng = np.random.default_rng(3)
    user, item, ts = [], [], []
    for t in range(100):
        late = t >= 90
        user.append(9 if late and t % 2 else int(rng.integers(0, 9)))
        item.append(9 if late and t % 3 == 0 else int(rng.integers(0, 9)))
        ts.append(float(t))
    n = len(user)
    return Snapshot([f"u{u}" for u in range(10)], [f"i{i}" for i in range(10)], np.array(user), np.array(item),
                    np.array(ts), np.full(n, KIND_CODE["CLICKED"], dtype=np.int8), np.zeros(n, np.float32),
                    [ItemContent(title=f"t{i}") for i in range(10)])


def test_global_time_split_cuts_at_a_quantile_and_counts_new_users_and_items() -> None:
    from gnn.evaluate import make_split
    from gnn.split import global_time_split

    snap = _timeline_snap()
    tr, va, te, t_cut = global_time_split(snap, cut=0.8, val_fraction=0.1)
    assert t_cut == np.quantile(snap.ts, 0.8)
    assert (snap.ts[te] >= t_cut).all() and (snap.ts[tr | va] < t_cut).all()
    assert snap.ts[va].min() > snap.ts[tr].max()  # validation: the end of the time before T
    assert not (tr & va).any() and (tr | va | te).all()
    split = make_split(snap, "global-time", cut=0.8)
    assert split.meta["cut"] == 0.8 and split.meta["new_test_users"] == 1  # user 9
    assert split.meta["new_item_test_interactions"] == int((te & (snap.item == 9)).sum()) > 0
    ut = make_split(snap, "user-temporal")
    assert ut.meta["new_test_users"] == 0  # per-user holdout: every test user has history


def test_every_family_runs_on_every_split_and_a_new_family_is_one_function() -> None:
    """The table's shape: {protocol: {row: metrics}}; a family scoring every item (as LightGCN
    would) is added with score_rows."""
    from gnn.evaluate import (
        FAMILIES,
        EvalContext,
        evaluate_splits,
        format_tables,
        make_split,
        score_rows,
    )
    from graphrec.core.config import EngineSettings, InteractionSettings
    from graphrec.core.gnn_config import GNNConfig

    snap = _timeline_snap()
    splits = {p: make_split(snap, p) for p in ("user-temporal", "global-time")}

    def popularity(snap: Snapshot, split, ctx):  # noqa: ANN001, ANN202
        pop = np.bincount(snap.item[split.hist], minlength=snap.num_items).astype(float)
        return {"counts": score_rows(snap, split, lambda u: np.tile(pop, (len(u), 1)))}

    ctx = EvalContext(GNNConfig(), seed=1, progress=False, engine=EngineSettings(),
                      interactions=InteractionSettings())
    tables = evaluate_splits(snap, splits, ctx, {"baselines": FAMILIES["baselines"], "counts": popularity})
    assert set(tables) == {"user-temporal", "global-time"}
    for protocol, rows in tables.items():
        assert {"MostPopular", "ItemKNN", "ALS", "EASE", "counts"} <= set(rows)
        # Every test user is counted, new ones (global-time: user 9) included.
        assert rows["counts"]["users"] == rows["EASE"]["users"] == splits[protocol].meta["test_users"]
    text = format_tables(tables, {p: s.meta for p, s in splits.items()})
    assert "[user-temporal]" in text and "[global-time]" in text and "(1 new)" in text


def test_tables_over_seeds_give_mean_spread_and_the_served_rows_ratios() -> None:
    """gnn.evaluate.aggregate: per protocol, row and metric the seeds' mean and half range (rows
    missing in a run are left out); format_tables prints mean ± spread and each served row as a
    multiple of EASE and of EASE + MostPopular for new users."""
    from gnn.evaluate import aggregate, format_tables

    def run(h: float, e: float) -> dict[str, dict[str, dict[str, float]]]:
        return {"global-time": {"served: hybrid (x)": {"ndcg@10": h, "recall@100": 2 * h},
                                "EASE": {"ndcg@10": e, "recall@100": e},
                                "EASE + MostPopular for new users": {"ndcg@10": 2 * e, "recall@100": 2 * e}}}

    first, second = run(0.30, 0.10), run(0.20, 0.10)
    second["global-time"]["only here"] = {"ndcg@10": 1.0}
    mean, spread = aggregate([first, second])
    assert set(mean["global-time"]) == {"served: hybrid (x)", "EASE", "EASE + MostPopular for new users"}
    assert mean["global-time"]["served: hybrid (x)"]["ndcg@10"] == pytest.approx(0.25)
    assert spread["global-time"]["served: hybrid (x)"]["ndcg@10"] == pytest.approx(0.05)
    text = format_tables(mean, None, spread)
    assert "0.2500 ± 0.0500" in text
    assert "served: hybrid (x) / EASE: NDCG@10 x2.500, Recall@100 x5.000" in text
    assert "served: hybrid (x) / EASE + MostPopular for new users: NDCG@10 x1.250, Recall@100 x2.500" in text
