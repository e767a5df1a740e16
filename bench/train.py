"""GNN training benchmark: wall time, examples/s and peak memory of :func:`gnn.train.train`.

Two datasets, each built in memory without Neo4j and trained in its own process (so its peak RSS
is its own):

- ``movielens``: MovieLens-100K from the cached files (:func:`loaders.movielens.snapshot`), the
  configured GNN (``[gnn]`` settings: full softmax), a few epochs;
- ``synthetic``: the seeded power-law catalogue of :mod:`loaders.synthetic`, its rows turned into a
  snapshot by :meth:`graphrec.core.snapshot.Snapshot.from_rows`; above ``FULL_SOFTMAX_MAX_ITEMS`` training uses
  the sampled softmax (and sparse Adam on the id embedding). Default: 1M items, 20k users, 500k
  interactions, one epoch, which fits in ~8 minutes on one shared core. An epoch is
  ``examples_per_user`` (user, cut point) examples per user with 3+ training interactions, at
  ~0.7-1 s per batch of 256 on one core at 1M items: at 200k users and 5M interactions (pass
  ``--users 200000 --interactions 5000000``) one epoch is ~3,000 batches, most of an hour.

Each run: temporal split (:func:`gnn.split.train_val_test`), then ``train()`` for a fixed number of
epochs (no early stopping). Reported: the time to build the snapshot, setup (features, random
walks, model), seconds per epoch (training steps and validation apart), training examples per
second (``TrainResult.examples``: one example is one (user, cut point) history → future pair),
the final pass (embed every item, tune the prior), peak RSS and the validation NDCG@10 reached.
At 1M items validation ranks the whole catalogue for a sample of users (``--val-users``).

    python -m bench.train --datasets movielens synthetic --items 1000000 --out bench/reports/train.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import peak_rss_mb, pyplot, save_figure

DEFAULT_EPOCHS = {"movielens": 5, "synthetic": 1}


def build_snapshot(dataset: str, a: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The snapshot of ``dataset`` and what it is (sizes, generator spec)."""
    from graphrec.core.snapshot import Snapshot

    if dataset == "movielens":
        from graphrec.core.config import load_settings
        from loaders import movielens

        return movielens.snapshot(movielens.fetch(load_settings().cache_dir)), {"source": "MovieLens-100K (recbole 1.2.1 files)"}
    from loaders.synthetic import SyntheticCatalog, SyntheticSpec

    spec = SyntheticSpec(users=a.users, items=a.items, interactions=a.interactions, seed=a.data_seed)
    cat = SyntheticCatalog(spec)
    snap = Snapshot.from_rows((r for r, _ in cat.users()), (r for r, _ in cat.items()), (r for r, _ in cat.interactions()))
    return snap, {"source": "loaders.synthetic", "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__}}


def worker(dataset: str, a: argparse.Namespace) -> dict[str, Any]:
    """Build, split and train one dataset; runs in a child process (see the module docstring)."""
    import torch

    from gnn.split import train_val_test
    from gnn.train import FULL_SOFTMAX_MAX_ITEMS, train
    from graphrec.core.config import load_settings

    settings = load_settings()
    epochs = a.epochs or DEFAULT_EPOCHS[dataset]
    # threads 0: train() takes the cores free when it starts (gnn.threads.choose_threads)
    cfg = settings.gnn.model_copy(update={"epochs": epochs, "patience": epochs + 1, "threads": a.threads})

    load_start = os.getloadavg()
    t0 = time.perf_counter()
    snap, about = build_snapshot(dataset, a)
    data_s = time.perf_counter() - t0
    data_rss = peak_rss_mb()
    print(f"  {dataset}: {snap.num_users:,} users, {snap.num_items:,} items, {snap.num_interactions:,} "
          f"interactions in {data_s:.1f} s (peak RSS {data_rss:.0f} MB)", file=sys.stderr, flush=True)

    t = time.perf_counter()
    tr, va, _ = train_val_test(snap, val_fraction=cfg.validation_fraction)
    split_s = time.perf_counter() - t
    val_users_total = int(len(np.unique(snap.user[va])))
    if dataset == "synthetic" and a.val_users and val_users_total > a.val_users:
        # Full-catalogue ranking for every validation user is the cost of an epoch at 1M items;
        # a seeded sample of users keeps the metric and bounds its time.
        keep = np.zeros(snap.num_users, dtype=bool)
        keep[np.random.default_rng(settings.seed).choice(np.unique(snap.user[va]), a.val_users, replace=False)] = True
        va = va & keep[snap.user]
    res = train(snap, tr, va, cfg, seed=settings.seed, progress=a.progress, vector_weights=settings.interactions.vector_weights)

    tm = res.extra["timings"]
    ep_train = [h["train_seconds"] for h in res.history]
    ep_val = [h.get("val_seconds", 0.0) for h in res.history]
    return {  # headline figures first: ``python -m bench`` summarises a run by its first eight numbers
        "dataset": dataset, "users": snap.num_users, "items": snap.num_items, "interactions": snap.num_interactions,
        "setup_s": round(tm["setup_s"], 2), "s_per_epoch": round(float(np.mean(ep_train)), 2),
        "examples_per_s": round(res.examples / sum(ep_train), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "best_val_ndcg@10": round(res.best_val_ndcg, 4), **about,
        "train_interactions": int(tr.sum()), "val_interactions": int(va.sum()),
        "val_users": int(len(np.unique(snap.user[va]))), "val_users_total": val_users_total,
        "softmax": "full" if snap.num_items <= FULL_SOFTMAX_MAX_ITEMS else "sampled",
        "epochs": len(res.history), "config": cfg.model_dump(), "seed": settings.seed,
        "torch_threads": torch.get_num_threads(), "threads_setting": a.threads,
        "data_s": round(data_s, 2), "split_s": round(split_s, 2),
        "setup": {k: round(tm[k], 2) for k in ("features_s", "walks_s", "model_s")},
        "epoch_train_s": [round(x, 2) for x in ep_train], "epoch_val_s": [round(x, 2) for x in ep_val],
        "val_s_per_epoch": round(float(np.mean(ep_val)), 2),
        "examples": res.examples, "examples_per_epoch": res.examples // max(1, len(res.history)),
        "final_s": round(tm["final_s"], 2), "train_total_s": round(res.seconds, 2),
        "loss": [round(h["loss"], 4) for h in res.history],
        "val_ndcg@10": [round(h["val_ndcg@10"], 4) for h in res.history if "val_ndcg@10" in h],
        "best_epoch": res.best_epoch, "peak_rss_data_mb": round(data_rss, 1),
        "load_average_start": load_start, "load_average_end": os.getloadavg(), "cpu_s": round(cpu_s(), 1),
    }


def cpu_s() -> float:
    """CPU seconds of this process and its children so far (user + system; the pipeline's fit
    workers included): on a shared machine, what the work cost whatever the wall clock says."""
    from gnn.fits import cpu_seconds

    return cpu_seconds()


def pipeline_worker() -> dict[str, Any]:
    """``graphrec train --force`` in-process (the Neo4j of the settings must hold the data): the
    summary of :func:`gnn.lifecycle.run_pipeline`, with its wall seconds per stage."""
    from gnn.lifecycle import run_pipeline
    from graphrec.core.config import load_settings

    t = time.perf_counter()
    out = run_pipeline(load_settings(), force=True, progress=False)
    return {"wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(cpu_s(), 1), "seconds": out["seconds"], "stages": out["stages"],
            "cpu_stages": out["cpu_stages"],
            "threads": out["threads"], "status": out["status"], "served_model": out["served_model"],
            "best_epoch": out["best_epoch"], "table": out["table"], "peak_rss_mb": round(peak_rss_mb(), 1)}


@contextmanager
def contention(busy: bool) -> Iterator[int | None]:
    """With ``busy``, one process spinning on a core (``yes > /dev/null``) for the duration."""
    if not busy:
        yield None
        return
    proc = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # let the scheduler see it before threads are chosen
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait()


def summary(results: list[dict[str, Any]]) -> str:
    head = (f"{'dataset':10s} {'users':>9s} {'items':>10s} {'inter.':>11s} {'data s':>7s} {'setup s':>8s} "
            f"{'walks s':>8s} {'epochs':>6s} {'s/epoch':>8s} {'val s':>7s} {'ex/epoch':>9s} {'ex/s':>7s} "
            f"{'final s':>8s} {'peak MB':>8s} {'val NDCG@10':>11s}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['dataset'] + ' ' + r.get('contention', '') + ' ' + r.get('code', ''):10s} {r['users']:>9,} {r['items']:>10,} {r['interactions']:>11,} {r['data_s']:>7.1f} "
                     f"{r['setup_s']:>8.1f} {r['setup']['walks_s']:>8.1f} {r['epochs']:>6d} {r['s_per_epoch']:>8.1f} "
                     f"{r['val_s_per_epoch']:>7.1f} {r['examples_per_epoch']:>9,} {r['examples_per_s']:>7.0f} "
                     f"{r['final_s']:>8.1f} {r['peak_rss_mb']:>8.0f} {r['best_val_ndcg@10']:>11.4f}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], out: Path) -> None:
    plt = pyplot()
    names = [f"{r['dataset']}\n{r['items']:,} items" for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    x = np.arange(len(results))
    for dx, key, label in ((-0.27, "setup_s", "setup (features, walks, model)"), (0.0, "s_per_epoch", "training, per epoch"),
                           (0.27, "val_s_per_epoch", "validation, per epoch")):
        ax1.bar(x + dx, [r[key] for r in results], 0.27, label=label)
    ax1.set_xticks(x, names)
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds (log scale)")
    ax1.legend(fontsize=7)
    ax2.bar(x, [r["examples_per_s"] for r in results], 0.5, color="tab:green")
    for xi, r in zip(x, results, strict=True):
        ax2.annotate(f"{r['examples_per_s']:.0f}/s\n{r['peak_rss_mb'] / 1024:.1f} GB peak", (xi, r["examples_per_s"]),
                     ha="center", va="bottom", fontsize=7)
    ax2.set_xticks(x, names)
    ax2.set_ylabel("training examples / s")
    threads = sorted({r["torch_threads"] for r in results})
    fig.suptitle(f"GNN training on CPU: {'/'.join(map(str, threads))} torch thread(s), {os.cpu_count()} shared cores")
    save_figure(fig, out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["movielens", "synthetic"], choices=["movielens", "synthetic"])
    ap.add_argument("--items", type=int, default=1_000_000, help="synthetic catalogue size")
    ap.add_argument("--users", type=int, default=20_000, help="synthetic users")
    ap.add_argument("--interactions", type=int, default=500_000, help="synthetic interactions (about)")
    ap.add_argument("--data-seed", type=int, default=7, help="seed of the synthetic generator")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"epochs for every dataset (default: {', '.join(f'{k} {v}' for k, v in DEFAULT_EPOCHS.items())})")
    ap.add_argument("--val-users", type=int, default=1000, help="synthetic: validation users sampled (0 = all)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: the cores free when training starts; on a shared 2-core machine two "
                         "OpenMP threads with one core taken ran an epoch several times slower)")
    ap.add_argument("--contention", nargs="+", default=["quiet"], choices=["quiet", "busy"],
                    help="busy: run everything again with one core kept busy by `yes > /dev/null`")
    ap.add_argument("--old-tree", type=Path, default=None,
                    help="also run each dataset with the gnn/ of this source tree (e.g. `git archive main`), "
                         "side by side: the code before this branch")
    ap.add_argument("--pipeline", action="store_true",
                    help="also time the whole `graphrec train --force` (needs the configured Neo4j loaded)")
    ap.add_argument("--progress", action="store_true", help="show the training progress bar")
    ap.add_argument("--out", type=Path, default=Path("bench/reports/train.json"))
    ap.add_argument("--worker", metavar="DATASET", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker == "pipeline":  # child: the whole retraining
        print(json.dumps(pipeline_worker()))
        return
    if a.worker:  # child: one dataset; JSON on stdout
        print(json.dumps(worker(a.worker, a)))
        return

    results = []
    pipelines = []
    for mode in a.contention:
        with contention(mode == "busy") as busy_pid:
            for ds, tree in [(d, t) for d in a.datasets for t in ([None, a.old_tree] if a.old_tree else [None])]:
                print(f"{ds} ({mode}{', old code' if tree else ''}): building the snapshot and training", file=sys.stderr, flush=True)
                env = dict(os.environ, PYTHONPATH=str(tree.resolve())) if tree else None
                # The old tree's gnn/ and bench/common, this file's worker (run as a script path).
                entry = [str(Path(__file__).resolve())] if tree else ["-m", "bench.train"]
                cmd = [sys.executable, *entry, "--worker", ds, "--items", str(a.items), "--users", str(a.users),
                       "--interactions", str(a.interactions), "--data-seed", str(a.data_seed), "--val-users", str(a.val_users),
                       "--threads", str(a.threads)]
                if a.epochs:
                    cmd += ["--epochs", str(a.epochs)]
                if a.progress:
                    cmd += ["--progress"]
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r["contention"], r["busy_pid"], r["code"] = mode, busy_pid, "old" if tree else "new"
                print(f"  setup {r['setup_s']} s, {r['s_per_epoch']} s/epoch, {r['examples_per_s']} examples/s, "
                      f"{r['torch_threads']} thread(s), peak RSS {r['peak_rss_mb']} MB", file=sys.stderr, flush=True)
                results.append(r)
            if a.pipeline:
                print(f"pipeline ({mode}): graphrec train --force", file=sys.stderr, flush=True)
                proc = subprocess.run([sys.executable, "-m", "bench.train", "--worker", "pipeline"], stdout=subprocess.PIPE,
                                      text=True, check=True)
                p = json.loads(proc.stdout.strip().splitlines()[-1])
                p["contention"] = mode
                print(f"  {p['wall_s']} s wall, {p['cpu_s']} s CPU, {p['threads']} thread(s): {p['stages']}", file=sys.stderr,
                      flush=True)
                pipelines.append(p)

    from bench.common import write_report

    print(summary(results))
    if pipelines:
        print(pipeline_summary(pipelines))
    write_report(a.out, {"benchmark": "train", "load_average": os.getloadavg(), "runs": results, "pipeline": pipelines})
    plot(results, a.out.with_suffix(".png"))


def pipeline_summary(runs: list[dict[str, Any]]) -> str:
    stages = list(runs[0]["stages"])
    head = f"{'pipeline':10s} {'threads':>7s} {'wall s':>7s} " + " ".join(f"{s.removesuffix('_s'):>13s}" for s in stages)
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(f"{r['contention']:10s} {r['threads']!s:>7s} {r['wall_s']:>7.1f} "
                     + " ".join(f"{r['stages'].get(s, float('nan')):>13.1f}" for s in stages))
        cpu = r.get("cpu_stages") or {}
        lines.append(f"{'  CPU s':10s} {'':>7s} {r.get('cpu_s', float('nan')):>7.1f} "
                     + " ".join(f"{cpu.get(s, float('nan')):>13.1f}" for s in stages))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
