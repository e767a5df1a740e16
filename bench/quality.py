"""Offline quality on MovieLens-100K under two protocols, several seeds: the GNN (PinSage),
LightGCN, their score ensembles with EASE, and the four baselines, mean ± spread.

Protocols (full ranking over the catalogue minus each user's history; SKIPPED never relevant):

- ``user-temporal``: per user, the last 20% of interactions by time are the test set (users with
  fewer than 5 stay in train), validation is the last 10% of each user's train
  (:func:`gnn.split.train_val_test`, what ``graphrec train`` uses);
- ``global-time``: one cut at the ``--cut`` quantile of all timestamps; train on everything
  before it, test on what users with at least 5 train interactions did after it (new items
  included as targets); validation is the last 10% of train by time for the same users.
  The global time cut of the evaluation-protocol issue is not on main yet, so it lives here
  (:func:`global_time_split`).

Each seed retrains every model (initialisation, sampling, walks) on the same split: the spread
is the models' own variance. Per model and protocol the table shows mean ± (max - min) / 2 over
the seeds, and the ratio of the mean to EASE's mean.

Models: ``PinSage`` (gnn.train, user vectors pooled from history as served), ``LightGCN``
(its own user vectors), ``LightGCN (pooled)`` (pooled user vectors: what the engine would serve
with ``gnn.model = lightgcn``), the baselines of :func:`gnn.evaluate.baselines`, and
``X + EASE`` ensembles: z-scored per user, weight of EASE chosen on validation.

    python -m bench.quality --seeds 3 --out bench/reports/quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("ndcg@10", "recall@100")
ENSEMBLE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def global_time_split(snap: Any, cut: float = 0.8, val_fraction: float = 0.1,
                      min_train: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (train, validation, test) of a global time cut at quantile ``cut``; test and
    validation only for users with at least ``min_train`` interactions before the cut."""
    from graphrec.core.snapshot import KIND_CODE

    t_cut = float(np.quantile(snap.ts, cut))
    before = snap.ts < t_cut
    counts = np.bincount(snap.user[before], minlength=snap.num_users)
    eligible = counts[snap.user] >= min_train
    relevant = snap.kind != KIND_CODE["SKIPPED"]
    te = ~before & eligible & relevant
    t_val = float(np.quantile(snap.ts[before], 1 - val_fraction))
    va = before & (snap.ts >= t_val) & eligible & relevant
    tr = before & ~va
    return tr, va, te


def split(snap: Any, protocol: str, cut: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from gnn.split import train_val_test

    if protocol == "user-temporal":
        return train_val_test(snap)
    return global_time_split(snap, cut)


def _z(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return (s - s.mean(axis=1, keepdims=True)) / (s.std(axis=1, keepdims=True) + 1e-9)


def score_fn_metrics(score: Any, snap: Any, hist: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from gnn.metrics import interaction_matrix, ranking_metrics

    mh = interaction_matrix(snap.user[hist], snap.item[hist], snap.num_users, snap.num_items)
    mt = interaction_matrix(snap.user[target], snap.item[target], snap.num_users, snap.num_items)
    return ranking_metrics(score, mh, mt)


def ensemble(model_score: Any, ease_score: Any, val_model: Any, val_ease: Any, snap: Any,
             tr: np.ndarray, va: np.ndarray, hist: np.ndarray, te: np.ndarray) -> tuple[dict[str, float], float]:
    """``model + w × EASE`` (per-user z-scores), ``w`` chosen on validation by NDCG@10 + Recall@100."""
    def val_of(w: float) -> float:
        m = score_fn_metrics(lambda u: _z(val_model(u)) + w * _z(val_ease(u)), snap, tr, va)
        return m["ndcg@10"] + m["recall@100"]

    w = max(ENSEMBLE_WEIGHTS, key=val_of)
    return score_fn_metrics(lambda u: _z(model_score(u)) + w * _z(ease_score(u)), snap, hist, te), w


def run_one(protocol: str, seed: int, cut: float, models: list[str], pinsage_epochs: int | None) -> dict[str, Any]:
    """Every model on one protocol and seed: tuned/early-stopped on validation, refit on train +
    validation, tested once."""
    import torch

    from gnn.baselines import EASE
    from gnn.evaluate import baselines, gnn_metrics
    from gnn.features import build_features
    from gnn.metrics import interaction_matrix
    from gnn.train import train
    from gnn.user import user_matrix, user_params
    from graphrec.core.config import load_settings
    from loaders import movielens

    torch.set_num_threads(1)
    settings = load_settings()
    cfg = settings.gnn
    if pinsage_epochs:
        cfg = cfg.model_copy(update={"epochs": pinsage_epochs})
    snap = movielens.snapshot(movielens.fetch(settings.cache_dir))
    tr, va, te = split(snap, protocol, cut)
    hist = tr | va
    n_u, n_i = snap.num_users, snap.num_items
    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    base = baselines(snap, tr, va, te, seed, progress=False)
    rows.update({k: {m: v[m] for m in METRICS} for k, v in base.items()})
    lam = base["EASE"]["lambda"]
    ease_val = EASE(lam).fit(interaction_matrix(snap.user[tr], snap.item[tr], n_u, n_i))
    ease_test = EASE(lam).fit(interaction_matrix(snap.user[hist], snap.item[hist], n_u, n_i))
    timing: dict[str, float] = {"baselines_s": time.perf_counter() - t0}

    def pooled(emb: np.ndarray, params: dict[str, Any], mask: np.ndarray) -> Any:
        now = float(snap.ts[mask].max())
        users = user_matrix(emb, snap.user[mask], snap.item[mask], snap.kind[mask], snap.value[mask], snap.ts[mask],
                            n_u, now, params)
        return lambda u: users[u] @ emb.T

    if "pinsage" in models:
        t = time.perf_counter()
        res = train(snap, tr, va, cfg, seed=seed, progress=False)
        fit = train(snap, hist, None, cfg.model_copy(update={"epochs": max(1, res.best_epoch)}), seed=seed,
                    progress=False, prior_weight=res.user_params["prior_weight"])
        rows["PinSage"] = {m: v for m, v in gnn_metrics(fit.item_emb, snap, hist, te, fit.user_params).items() if m in METRICS}
        rows["PinSage"]["best_epoch"] = res.best_epoch
        r, w = ensemble(pooled(fit.item_emb, fit.user_params, hist), ease_test.score,
                        pooled(res.item_emb, res.user_params, tr), ease_val.score, snap, tr, va, hist, te)
        rows["PinSage + EASE"] = {**{m: r[m] for m in METRICS}, "ease_weight": w}
        timing["pinsage_s"] = time.perf_counter() - t
    if "lightgcn" in models:
        from gnn.lightgcn import train_lightgcn

        t = time.perf_counter()
        lcfg = cfg.lightgcn
        feats = build_features(snap, hist, cfg)
        lg = train_lightgcn(snap, tr, va, lcfg, seed=seed, dim=cfg.dim, progress=False)
        lfit = train_lightgcn(snap, hist, None, lcfg, seed=seed, dim=cfg.dim, progress=False, epochs=max(1, lg.best_epoch),
                              alpha=lg.alpha, features=feats)
        own = score_fn_metrics(lambda u: lfit.user_emb[u] @ lfit.item_emb.T, snap, hist, te)
        rows["LightGCN"] = {**{m: own[m] for m in METRICS}, "best_epoch": lg.best_epoch, "alpha": lg.alpha}
        pl = gnn_metrics(lfit.item_emb, snap, hist, te, user_params(cfg))
        rows["LightGCN (pooled)"] = {m: pl[m] for m in METRICS}
        r, w = ensemble(lambda u: lfit.user_emb[u] @ lfit.item_emb.T, ease_test.score,
                        lambda u: lg.user_emb[u] @ lg.item_emb.T, ease_val.score, snap, tr, va, hist, te)
        rows["LightGCN + EASE"] = {**{m: r[m] for m in METRICS}, "ease_weight": w}
        timing["lightgcn_s"] = time.perf_counter() - t
    return {"protocol": protocol, "seed": seed, "rows": rows, "timing": timing,
            "train": int(tr.sum()), "val": int(va.sum()), "test": int(te.sum()),
            "test_users": int(len(np.unique(snap.user[te])))}


def table(runs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    out: dict[str, Any] = {}
    lines = []
    for protocol in sorted({r["protocol"] for r in runs}):
        rs = [r for r in runs if r["protocol"] == protocol]
        names = list(rs[0]["rows"])
        ease = {m: float(np.mean([r["rows"]["EASE"][m] for r in rs])) for m in METRICS}
        head = f"{protocol} ({len(rs)} seeds; test users {rs[0]['test_users']})"
        lines += [head, f"{'model':<22}" + "".join(f"{m:>22}{'× EASE':>9}" for m in METRICS), "-" * 84]
        out[protocol] = {}
        for n in names:
            vals = {m: [r["rows"][n][m] for r in rs] for m in METRICS}
            cells = ""
            out[protocol][n] = {}
            for m in METRICS:
                mean, spread = float(np.mean(vals[m])), (max(vals[m]) - min(vals[m])) / 2
                cells += f"{mean:>14.4f} ± {spread:.4f}{mean / ease[m]:>9.3f}"
                out[protocol][n][m] = {"mean": mean, "spread": spread, "ratio_to_ease": mean / ease[m], "values": vals[m]}
            lines.append(f"{n:<22}{cells}")
        lines.append("")
    return "\n".join(lines), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--protocols", nargs="+", default=["user-temporal", "global-time"],
                    choices=["user-temporal", "global-time"])
    ap.add_argument("--cut", type=float, default=0.8, help="global-time: quantile of timestamps")
    ap.add_argument("--models", nargs="+", default=["pinsage", "lightgcn"], choices=["pinsage", "lightgcn"])
    ap.add_argument("--pinsage-epochs", type=int, default=None, help="cap on PinSage epochs (default: gnn.epochs)")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/quality.json"))
    a = ap.parse_args()
    from bench.common import write_report

    runs = []
    for protocol in a.protocols:
        for seed in range(42, 42 + a.seeds):
            t = time.perf_counter()
            runs.append(run_one(protocol, seed, a.cut, a.models, a.pinsage_epochs))
            print(f"{protocol} seed {seed}: {time.perf_counter() - t:.0f} s "
                  + ", ".join(f"{n} {r['ndcg@10']:.4f}/{r['recall@100']:.4f}" for n, r in runs[-1]["rows"].items()),
                  file=sys.stderr, flush=True)
            text, summary = table(runs)
            write_report(a.out, {"benchmark": "quality", "args": {k: str(v) for k, v in vars(a).items()},
                                 "summary": summary, "runs": runs})
    print(text)
    print(json.dumps({"report": str(a.out)}))


if __name__ == "__main__":
    main()
