"""Offline quality on MovieLens-100K under both evaluation protocols, several seeds: what
``graphrec train`` serves (the hybrid, and the engine's pipeline replayed with it), the GNN alone,
optionally LightGCN, and the baselines, mean ± spread, with ratios to EASE.

The splits are :func:`gnn.evaluate.make_split`'s (the protocols of ``graphrec evaluate``:
``user-temporal`` and ``global-time``, new users and items counted) and the rows are
:data:`gnn.evaluate.FAMILIES`' functions, so this benchmark and the pipeline share one definition.
Every choice is made on each protocol's own validation window (epochs, the trend prior, the
hybrid's hyperparameters and weights; baselines' hyperparameters), then every model is refit on
train + validation and tested once.

EASE scores nothing for a user without history; under the global cut most test users are new, so
the table also has ``EASE + MostPopular for new users`` and gives ratios to both, and a breakdown
of each row over known and new test users. The hybrid is chosen as ``graphrec train`` chooses it:
once, jointly on the validation of both protocols (``--choice-protocols``), each with the GNN fit
on its own train; ``--fits DIR`` caches the GNN fits so that a rerun on the same splits and seeds
(e.g. after changing the hybrid) does not retrain them.

Each seed retrains every model (initialisation, sampling, walks) on the same split: the spread
(max - min) / 2 over seeds is the models' own variance (the baselines are deterministic but ALS).

    OMP_NUM_THREADS=1 python -m bench.quality --seeds 3 --pinsage-epochs 40 --fits var/fits \
        --out bench/reports/quality.json
    # or one process per protocol, then one table and plot:
    python -m bench.quality --merge bench/reports/quality-user-temporal.json \
        bench/reports/quality-global-time.json --out bench/reports/quality.json
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
REFERENCES = ("EASE", "EASE + MostPopular for new users")


def by_group(snap: Any, split: Any, ctx: Any, families: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Every family's rows with the test restricted to known users (a positive interaction in the
    split's history) and to new users (none): ``{group: {row: metrics}}``; groups without test
    users are left out. The fits are the ones cached in ``ctx`` for this protocol."""
    from dataclasses import replace

    from gnn.split import relevant

    known = np.zeros(snap.num_users, dtype=bool)
    known[snap.user[relevant(snap, split.hist)]] = True
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, users in (("known users", known), ("new users", ~known)):
        test = split.test & users[snap.user]
        if not relevant(snap, test).any():
            continue
        sub = replace(split, test=test)
        rows: dict[str, dict[str, float]] = {}
        for fn in families.values():
            rows.update(fn(snap, sub, ctx))
        out[group] = rows
    return out


def run_one(protocol: str, seed: int, cut: float, models: list[str], pinsage_epochs: int | None,
            groups: bool, choice_protocols: list[str] | None = None, fits: Path | None = None) -> dict[str, Any]:
    """Every family on one protocol and seed. The hybrid's choices are made as ``graphrec train``
    makes them: jointly on the validation of every protocol of ``choice_protocols`` (default: both,
    the global cut at ``cut``), each with the GNN fit on its train. ``fits``: a directory caching
    the GNN fits per (protocol, cut, seed, epoch cap) so that reruns of the same split and seed
    reuse them."""
    import pickle

    import torch

    from gnn.evaluate import FAMILIES, EvalContext, make_split, served_embeddings, train_embeddings
    from graphrec.core.config import load_settings
    from loaders import movielens

    torch.set_num_threads(1)
    settings = load_settings()
    cfg = settings.gnn.model_copy(update={"threads": 1})
    if pinsage_epochs:
        cfg = cfg.model_copy(update={"epochs": pinsage_epochs})
    cfg = cfg.model_copy(update={"lightgcn": cfg.lightgcn.model_copy(update={"enabled": "lightgcn" in models})})
    snap = movielens.snapshot(movielens.fetch(settings.cache_dir))
    protocols = list(dict.fromkeys([protocol, *(choice_protocols or ["user-temporal", "global-time"])]))
    splits = {p: make_split(snap, p, cut, cfg.validation_fraction, 0, seed) for p in protocols}
    split = splits[protocol]
    ctx = EvalContext(cfg, seed, progress=False, engine=settings.engine, choice_splits=splits,
                      interactions=settings.interactions)
    for p, sp_ in splits.items():  # each protocol's GNN: epochs early-stopped on its own validation
        f = fits / f"{p}-{cut}-{seed}-e{cfg.epochs}.pkl" if fits else None
        if f is not None and f.exists() and "lightgcn" not in models:
            d = pickle.loads(f.read_bytes())
            ctx.fitted[p], ctx.train_fit[p] = d["fitted"][p], d["train_fit"][p]
            if p == protocol:
                ctx.epochs, ctx.prior_weight = d["epochs"], d["prior_weight"]
            continue
        c = EvalContext(cfg, seed, progress=False, engine=settings.engine, interactions=settings.interactions)
        served_embeddings(snap, sp_, c)
        train_embeddings(snap, sp_, c)
        ctx.fitted[p], ctx.train_fit[p] = c.fitted[p], c.train_fit[p]
        if p == protocol:
            ctx.epochs, ctx.prior_weight, ctx.lgcn_epochs, ctx.lgcn_alpha = c.epochs, c.prior_weight, c.lgcn_epochs, c.lgcn_alpha
            ctx.lgcn_fitted.update(c.lgcn_fitted)
        if f is not None and "lightgcn" not in models:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(pickle.dumps({"fitted": c.fitted, "train_fit": c.train_fit, "epochs": c.epochs,
                                        "prior_weight": c.prior_weight}))
    families = {k: f for k, f in FAMILIES.items() if k != "pipeline" or "pipeline" in models}
    rows: dict[str, dict[str, float]] = {}
    timing: dict[str, float] = {}
    for name, fn in families.items():
        t = time.perf_counter()
        rows.update(fn(snap, split, ctx))
        timing[f"{name}_s"] = round(time.perf_counter() - t, 1)
    out: dict[str, Any] = {"protocol": protocol, "seed": seed, "cut": cut, "rows": rows, "timing": timing,
                           "meta": split.meta, "epochs": ctx.epochs, "prior_weight": ctx.prior_weight,
                           "hybrid": ctx.hybrid_choice.as_dict() if ctx.hybrid_choice is not None else None}
    if groups:
        out["groups"] = by_group(snap, split, ctx, {k: f for k, f in families.items() if k != "pipeline"})
    return out


def summarise(runs: list[dict[str, Any]], key: str = "rows") -> dict[str, Any]:
    """Per protocol (and group): mean, spread and values over seeds, ratios to the references."""
    out: dict[str, Any] = {}
    for protocol in dict.fromkeys(r["protocol"] for r in runs):
        rs = [r for r in runs if r["protocol"] == protocol]
        tables = ({"all": [r["rows"] for r in rs]} if key == "rows"
                  else {g: [r["groups"][g] for r in rs] for g in rs[0].get("groups", {})})
        out[protocol] = {}
        for group, per_seed in tables.items():
            res: dict[str, Any] = {}
            for name in per_seed[0]:
                res[name] = {}
                for m in METRICS:
                    vals = [float(t[name][m]) for t in per_seed]
                    mean = float(np.mean(vals))
                    res[name][m] = {"mean": mean, "spread": (max(vals) - min(vals)) / 2, "values": vals}
            for name in res:
                for m in METRICS:
                    for ref in REFERENCES:
                        if ref in res:
                            res[name][m][f"x {ref}"] = res[name][m]["mean"] / max(1e-12, res[ref][m]["mean"])
            out[protocol][group] = res
    return out


def format_summary(summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    lines = []
    for protocol, groups in summary.items():
        meta = next(r["meta"] for r in runs if r["protocol"] == protocol)
        n = sum(1 for r in runs if r["protocol"] == protocol)
        for group, rows in groups.items():
            lines.append(f"[{protocol} / {group}] {n} seeds; test users {meta['test_users']} ({meta['new_test_users']} new)")
            lines.append(f"{'model':<52}" + "".join(f"{m:>20}{'xEASE':>7}{'xE+MP':>7}" for m in METRICS))
            for name, r in rows.items():
                cells = "".join(f"{r[m]['mean']:>12.4f} ± {r[m]['spread']:.4f}{r[m].get('x EASE', float('nan')):>7.3f}"
                                f"{r[m].get('x EASE + MostPopular for new users', float('nan')):>7.3f}" for m in METRICS)
                lines.append(f"{name[:51]:<52}{cells}")
            lines.append("")
    return "\n".join(lines)


def _short(name: str) -> str:
    """A row name short enough for an axis label."""
    if name.startswith("served: hybrid"):
        return "hybrid (joint choices, served)"
    return name[:34]


def plot(summary: dict[str, Any], path: Path) -> None:
    """Bars: each model's NDCG@10 and Recall@100 as a multiple of EASE's with MostPopular for new
    users (plain EASE scores nothing for them; identical to EASE when no test user is new), per
    protocol (all test users), the seeds' spread as error bars, and the 1.10 line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = REFERENCES[1]
    protocols = list(summary)
    fig, axes = plt.subplots(1, len(protocols), figsize=(7 * len(protocols), 4.8), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        rows = summary[protocol]["all"]
        names = [n for n in rows if n != ref]
        x = np.arange(len(names))
        for k, m in enumerate(METRICS):
            base = rows[ref][m]["mean"]
            vals = [rows[n][m]["mean"] / base for n in names]
            err = [rows[n][m]["spread"] / base for n in names]
            bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, yerr=err, label=m)
            ax.bar_label(bars, fmt="%.2f", fontsize=6)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(1.1, color="red", lw=0.8, ls="--", label="1.10 x reference")
        ax.set_xticks(x, [_short(n) for n in names], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("x EASE (+ MostPopular for new users)")
        ax.set_title(f"{protocol}: mean of the seeds as a multiple of EASE\n(+ MostPopular for users without history)",
                     fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=42)
    ap.add_argument("--protocols", nargs="+", default=["user-temporal", "global-time"],
                    choices=["user-temporal", "global-time"])
    ap.add_argument("--cut", type=float, default=0.8, help="global-time: quantile of timestamps")
    ap.add_argument("--models", nargs="+", default=["pipeline"], choices=["pipeline", "lightgcn"],
                    help="families beside the GNN, the hybrid and the baselines")
    ap.add_argument("--pinsage-epochs", type=int, default=None, help="cap on PinSage epochs (default: gnn.epochs)")
    ap.add_argument("--no-groups", action="store_true", help="skip the known/new users breakdown")
    ap.add_argument("--choice-protocols", nargs="+", default=["user-temporal", "global-time"],
                    choices=["user-temporal", "global-time"],
                    help="the protocols whose validation chooses the hybrid (jointly), as in graphrec train")
    ap.add_argument("--fits", type=Path, default=None,
                    help="cache the GNN fits here per protocol, cut, seed and epoch cap (reruns reuse them)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="no runs: merge these reports (e.g. one per protocol, run in parallel) into --out")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/quality.json"))
    a = ap.parse_args()
    from bench.common import write_report

    if a.merge:
        runs = [r for f in a.merge for r in json.loads(f.read_text())["runs"]]
        summary = summarise(runs)
        groups = summarise(runs, "groups") if all("groups" in r for r in runs) else {}
        write_report(a.out, {"benchmark": "quality", "merged": [str(f) for f in a.merge], "summary": summary,
                             "groups": groups, "runs": runs})
        plot(summary, a.out.with_suffix(".png"))
        print(format_summary(summary, runs) + ("\n" + format_summary(groups, runs) if groups else ""))
        return
    runs = []
    text = ""
    for protocol in a.protocols:
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            t = time.perf_counter()
            runs.append(run_one(protocol, seed, a.cut, a.models, a.pinsage_epochs, not a.no_groups, a.choice_protocols,
                                 a.fits))
            print(f"{protocol} seed {seed}: {time.perf_counter() - t:.0f} s "
                  + ", ".join(f"{n} {r['ndcg@10']:.4f}/{r['recall@100']:.4f}" for n, r in runs[-1]["rows"].items()),
                  file=sys.stderr, flush=True)
            summary = summarise(runs)
            groups = summarise(runs, "groups") if not a.no_groups else {}
            text = format_summary(summary, runs) + ("\n" + format_summary(groups, runs) if groups else "")
            write_report(a.out, {"benchmark": "quality", "args": {k: str(v) for k, v in vars(a).items()},
                                 "summary": summary, "groups": groups, "runs": runs})
            plot(summary, a.out.with_suffix(".png"))
    print(text)
    print(json.dumps({"report": str(a.out)}))


if __name__ == "__main__":
    main()
