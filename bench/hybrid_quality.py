"""The served hybrid alone (no GNN component) on MovieLens-100K: chosen jointly on the validation
of both protocols' splits (:func:`gnn.itemitem.choose`, as ``graphrec train`` chooses it), fit on
each split's train + validation, tested once, as multiples of EASE (its lambda chosen on the
split's validation) with MostPopular for users without history. Per global cut and seed; with
``--without C ...`` each (cut, seed) is also run with those components left out, interleaved in
the same process, so that a component's gain is measured side by side.

Each protocol is also scored on its *known* test users alone (users with a positive interaction in
the history: under the global cut, those who had used the service before T), against EASE on the
same users; the last two columns are the global cut's known users.

The per-user temporal split does not depend on the cut; the cut changes the global-time split and
so the joint choice. A seed changes the hybrid's seeded parts (the next network).

    OMP_NUM_THREADS=1 python -m bench.hybrid_quality --cuts 0.75 0.8 0.85 --seeds 42 7 --without next \\
        --out /tmp/hybrid_quality.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("ndcg@10", "recall@100")
PROTOCOLS = ("user-temporal", "global-time")


def known_test(snap: Any, split: Any) -> Any:
    """The split's relevant test matrix restricted to the users with a positive in its history."""
    import scipy.sparse as sp

    from gnn.evaluate import _matrix
    from gnn.split import relevant

    known = (np.diff(_matrix(snap, relevant(snap, split.hist)).indptr) > 0).astype(np.float32)
    m = sp.csr_matrix(sp.diags(known) @ _matrix(snap, relevant(snap, split.test)))
    m.eliminate_zeros()  # the other users' rows empty: not test users
    return m


def reference(snap: Any, split: Any) -> dict[str, Any]:
    """EASE (lambda on validation, as gnn.evaluate's baseline) with MostPopular for new users;
    ``known``: EASE on the known test users alone."""
    from gnn.baselines import EASE, MostPopular
    from gnn.evaluate import _matrix, _tune
    from gnn.metrics import ranking_metrics
    from gnn.split import relevant

    m_tr, m_va = _matrix(snap, relevant(snap, split.train)), _matrix(snap, relevant(snap, split.val))
    m_full, m_seen = _matrix(snap, relevant(snap, split.hist)), _matrix(snap, split.hist)
    lam = _tune(EASE, [100.0, 250.0, 500.0, 1000.0], m_tr, m_va)
    ease, pop = EASE(lam).fit(m_full), MostPopular().fit(m_full)
    known = np.diff(m_full.indptr) > 0
    out: dict[str, Any] = ranking_metrics(lambda u: np.where(known[u, None], ease.score(u), pop.score(u)), m_seen,
                                          _matrix(snap, relevant(snap, split.test)))
    out["known"] = ranking_metrics(ease.score, m_seen, known_test(snap, split))
    return out


def run_one(snap: Any, cut: float, seed: int, exclude: tuple[str, ...], val_fraction: float,
            refs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from gnn import itemitem
    from gnn.evaluate import _matrix, make_split, score_rows
    from gnn.metrics import ranking_metrics
    from gnn.split import relevant

    splits = {p: make_split(snap, p, cut, val_fraction, 0, seed) for p in PROTOCOLS}
    t = time.perf_counter()
    ch = itemitem.choose(snap, [(s.train, relevant(snap, s.val), None, None) for s in splits.values()],
                         exclude=exclude, seed=seed)
    out: dict[str, Any] = {"cut": cut, "seed": seed, "without": list(exclude), "choice": ch.as_dict(), "rows": {}}
    for p, s in splits.items():
        model = itemitem.fit(snap, s.hist, ch.params, ch.weights, ch.cold_weights, ch.return_weights)
        v = itemitem.views(snap, s.hist, (float(model.params["position_half"]),), None, None)
        score = itemitem.score_fn(v, model, itemitem.graph_clock(snap, s.hist))
        row = score_rows(snap, s, score)
        known = ranking_metrics(score, _matrix(snap, s.hist), known_test(snap, s))
        ref = refs.setdefault(f"{p}-{cut}", reference(snap, s))
        out["rows"][p] = {"hybrid": row, "known": known, "reference": ref,
                          "x": {m: row[m] / ref[m] for m in METRICS},
                          "x_known": {m: known[m] / ref["known"][m] for m in METRICS}}
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


def _cells(r: dict[str, Any]) -> list[float]:
    """UT NDCG@10, UT R@100, GT NDCG@10, GT R@100, GT known users' NDCG@10 and R@100 (multiples)."""
    return ([r["rows"][p]["x"][m] for p in PROTOCOLS for m in METRICS]
            + [r["rows"]["global-time"]["x_known"][m] for m in METRICS])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cuts", type=float, nargs="+", default=[0.75, 0.8, 0.85])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    ap.add_argument("--without", nargs="*", default=[], help="components left out in a side-by-side run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    from graphrec.core.config import load_settings
    from loaders import movielens

    torch.set_num_threads(1)
    settings = load_settings()
    snap = movielens.snapshot(movielens.fetch(settings.cache_dir))
    variants: list[tuple[str, ...]] = [(), tuple(args.without)] if args.without else [()]
    runs: list[dict[str, Any]] = []
    refs: dict[str, dict[str, Any]] = {}
    print("cut  seed  without  | UT NDCG@10  UT R@100 | GT NDCG@10  GT R@100 | GT known NDCG@10  R@100  "
          "(x EASE + MostPopular; known users: x EASE)  seconds")
    for cut in args.cuts:
        for seed in args.seeds:
            for exclude in variants:
                r = run_one(snap, cut, seed, exclude, settings.gnn.validation_fraction, refs)
                runs.append(r)
                xs = _cells(r)
                print(f"{cut:.2f} {seed:5d}  {','.join(exclude) or '-':8s} | {xs[0]:.3f}  {xs[1]:.3f} | {xs[2]:.3f}  "
                      f"{xs[3]:.3f} | {xs[4]:.3f}  {xs[5]:.3f}  {r['seconds']}", flush=True)
    for exclude in variants:
        sel = [r for r in runs if tuple(r["without"]) == exclude]
        x = np.array([_cells(r) for r in sel])
        print(f"mean without {','.join(exclude) or '-'}: " + "  ".join(f"{v:.3f}" for v in x.mean(axis=0))
              + "  min: " + "  ".join(f"{v:.3f}" for v in x.min(axis=0)))
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
