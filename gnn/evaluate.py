"""``graphrec evaluate``: the GNN against strong baselines in the same run, on the same split.

Protocol (MovieLens-100K or any snapshot): every interaction counts; per user the last 20% by
time are the test set, users with fewer than 5 interactions stay in train; the validation split
(last 10% of each user's train) selects epochs and baseline hyperparameters; the test split is
scored once. Full ranking over the whole catalogue minus each user's train items.

Writes the table as JSON and two PNGs: the learning curve of the run and the metric history
across model versions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnn.baselines import ALS, EASE, ItemKNN, MostPopular
from gnn.data import Snapshot
from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.user import user_matrix

METRICS = ("ndcg@10", "recall@10", "recall@100", "hitrate@10", "coverage@10")


def _tune(make: Any, grid: list[Any], train: Any, val: Any) -> Any:
    best, best_v = grid[0], -1.0
    for g in grid:
        v = ranking_metrics(make(g).fit(train).score, train, val)["ndcg@10"]
        if v > best_v:
            best, best_v = g, v
    return best


def baselines(snap: Snapshot, tr: np.ndarray, va: np.ndarray, te: np.ndarray, seed: int, progress: bool = True) -> dict[str, dict[str, float]]:
    """MostPopular, ItemKNN, ALS and EASE: tuned on validation, refit on train+validation, tested."""
    n_u, n_i = snap.num_users, snap.num_items
    m_tr = interaction_matrix(snap.user[tr], snap.item[tr], n_u, n_i)
    m_va = interaction_matrix(snap.user[va], snap.item[va], n_u, n_i)
    full = tr | va
    m_full = interaction_matrix(snap.user[full], snap.item[full], n_u, n_i)
    m_te = interaction_matrix(snap.user[te], snap.item[te], n_u, n_i)
    lam = _tune(EASE, [100.0, 250.0, 500.0, 1000.0], m_tr, m_va)
    k = _tune(lambda k: ItemKNN(k=k), [50, 100, 200], m_tr, m_va)
    factors = _tune(lambda f: ALS(factors=f, seed=seed), [32, 64, 128], m_tr, m_va)
    models: list[MostPopular | ItemKNN | ALS | EASE] = [MostPopular(), ItemKNN(k=k), ALS(factors=factors, seed=seed), EASE(lam)]
    out: dict[str, dict[str, float]] = {}
    for m in models:
        t0 = time.perf_counter()
        m.fit(m_full)
        res = ranking_metrics(m.score, m_full, m_te)
        res["fit_seconds"] = round(time.perf_counter() - t0, 2)
        out[m.name] = res
    out["EASE"]["lambda"] = lam
    out["ItemKNN"]["k"] = k
    out["ALS"]["factors"] = factors
    return out


def gnn_metrics(item_emb: np.ndarray, snap: Snapshot, hist: np.ndarray, te: np.ndarray, params: dict[str, Any]) -> dict[str, float]:
    now = float(snap.ts[hist].max())
    users = user_matrix(item_emb, snap.user[hist], snap.item[hist], snap.kind[hist], snap.value[hist], snap.ts[hist],
                        snap.num_users, now, params)
    m_hist = interaction_matrix(snap.user[hist], snap.item[hist], snap.num_users, snap.num_items)
    m_te = interaction_matrix(snap.user[te], snap.item[te], snap.num_users, snap.num_items)
    return ranking_metrics(lambda u: users[u] @ item_emb.T, m_hist, m_te)


def format_table(rows: dict[str, dict[str, float]]) -> str:
    head = f"{'model':<26}" + "".join(f"{m:>13}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<26}" + "".join(f"{r.get(m, float('nan')):>13.4f}" for m in METRICS))
    return "\n".join(lines)


def write_report(out_dir: Path, rows: dict[str, dict[str, float]], meta: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "evaluation.json"
    path.write_text(json.dumps({"protocol": "temporal: last 20% per user held out; users with <5 interactions in train; "
                                "full ranking minus train items", **meta, "results": rows}, indent=2, default=str))
    return path


def plot_learning_curve(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(ep, [h["loss"] for h in history], color="tab:blue", label="training loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(ep, [h["val_ndcg@10"] for h in history], color="tab:orange", label="validation NDCG@10")
    ax2.set_ylabel("validation NDCG@10", color="tab:orange")
    fig.suptitle("GNN learning curve")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_version_history(versions: list[dict[str, Any]], path: Path) -> None:
    """``versions``: oldest first, each ``{"id", "metrics": {...}, "status"}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(len(versions)))
    for m in ("ndcg@10", "recall@100"):
        ax.plot(xs, [v["metrics"].get(m, float("nan")) for v in versions], marker="o", label=m)
    ax.set_xticks(xs, [v["id"][-11:] for v in versions], rotation=30, ha="right", fontsize=7)
    for x, v in zip(xs, versions, strict=True):
        if v.get("status") == "live":
            ax.axvline(x, color="green", alpha=0.2)
    ax.set_title("metrics across model versions (green: live)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
