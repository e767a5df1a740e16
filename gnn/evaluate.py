"""``graphrec evaluate``: the GNN, the served pipeline and strong baselines in the same run, on
the same split, under two protocols.

Protocols (:data:`gnn.split.PROTOCOLS`), each a :class:`Split` of one snapshot:

- ``user-temporal``: per user, the last 20% by time are the test set (users with fewer than 5
  interactions stay in train); validation is the last 10% of each user's train;
- ``global-time``: one cut T at the ``cut`` quantile of all timestamps (0.8 by default): train on
  everything before T, test on what each user did from T on. Users and items first seen after
  T are included and counted (a new user is ranked with no history; a new item is ranked by
  whatever a model makes of it); validation is the last 10% of the time before T.

In both, a SKIPPED interaction is never a relevant target (it stays history); the validation
split selects epochs and hyperparameters; the test split is scored once; ranking is over the
whole catalogue minus each user's history.

The table is made of **model families**: one function per family
``(snapshot, split, context) -> {row name: metrics}`` (:data:`FAMILIES`), each fitting on the
split's history (``train | val``) and scoring its test. A new family (e.g. LightGCN) is one such
function and one entry in :data:`FAMILIES`; :func:`score_rows` turns a full score function
``users -> [len(users), n_items]`` into a row.

Writes the tables as JSON and two PNGs: the learning curve of the run and the metric history
across model versions.

One module over 400 lines: the model families are small functions that share the split, the
context and the row scoring; one file keeps every row of the table in reading order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gnn.baselines import ALS, EASE, ItemKNN, MostPopular
from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.split import PROTOCOLS, global_time_split, relevant, train_val_test
from gnn.user import user_matrix
from graphrec.core.config import EngineSettings, InteractionSettings
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.snapshot import Snapshot

METRICS = ("ndcg@10", "recall@10", "recall@100", "hitrate@10", "coverage@10")
Row = dict[str, float]


@dataclass
class Split:
    """One protocol's split of a snapshot: boolean masks over its interactions."""

    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def hist(self) -> np.ndarray:
        """What a model may see before the test: train + validation."""
        return self.train | self.val


def eval_sample(snap: Snapshot, va: np.ndarray, te: np.ndarray, max_users: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test interactions of at most ``max_users`` users (a seeded sample, the same
    users for both); unchanged when ``max_users`` is 0 or there are no more users than that.

    Only the evaluated interactions shrink: training still sees the same train split, and the
    interactions left out stay history (they are neither trained on nor tested)."""
    users = np.unique(snap.user[va | te])
    if max_users <= 0 or len(users) <= max_users:
        return va, te
    keep = np.zeros(snap.num_users, dtype=bool)
    keep[np.random.default_rng(seed).choice(users, max_users, replace=False)] = True
    return va & keep[snap.user], te & keep[snap.user]


def make_split(snap: Snapshot, protocol: str, cut: float = 0.8, val_fraction: float = 0.1, max_eval_users: int = 0,
               seed: int = 42, holdout: float = 0.2) -> Split:
    """The ``protocol``'s split (see the module docstring), with counts of what it tests.
    ``holdout``: the per-user temporal test fraction (the protocol's is 0.2; benchmarks try others)."""
    if protocol == "user-temporal":
        tr, va, te = train_val_test(snap, test_fraction=holdout, val_fraction=val_fraction)
        meta: dict[str, Any] = {"description": f"per user, the last {holdout:.0%} by time held out (users with <5 "
                                               f"interactions in train); validation: the last {val_fraction:.0%} of "
                                               "each user's train"}
    elif protocol == "global-time":
        tr, va, te, t_cut = global_time_split(snap, cut, val_fraction)
        meta = {"description": f"global time cut at the {cut:.2f} quantile of timestamps: train before T, test "
                               "what each user did from T on (new users and items counted); validation: the "
                               f"last {val_fraction:.0%} of the time before T", "cut": cut, "cut_ts": t_cut}
    else:
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    va, te = eval_sample(snap, va, te, max_eval_users, seed)
    hist = tr | va
    rel = relevant(snap, te)
    test_users = np.unique(snap.user[rel])
    known_users = np.zeros(snap.num_users, dtype=bool)
    known_users[snap.user[hist]] = True
    known_items = np.zeros(snap.num_items, dtype=bool)
    known_items[snap.item[hist]] = True
    meta.update(test_users=int(len(test_users)), new_test_users=int((~known_users[test_users]).sum()),
                test_interactions=int(rel.sum()), new_item_test_interactions=int((~known_items[snap.item[rel]]).sum()))
    return Split(protocol, tr, va, te, meta)


def score_rows(snap: Snapshot, split: Split, score: Callable[[np.ndarray], np.ndarray]) -> Row:
    """Full-ranking metrics of ``score(users) -> [len(users), n_items]`` on the split's test."""
    return ranking_metrics(score, _matrix(snap, split.hist), _matrix(snap, relevant(snap, split.test)))


def _matrix(snap: Snapshot, mask: np.ndarray) -> Any:
    return interaction_matrix(snap.user[mask], snap.item[mask], snap.num_users, snap.num_items)


def _tune(make: Any, grid: list[Any], train: Any, val: Any) -> Any:
    best, best_v = grid[0], -1.0
    for g in grid:
        v = ranking_metrics(make(g).fit(train).score, train, val)["ndcg@10"]
        if v > best_v:
            best, best_v = g, v
    return best


def baselines(snap: Snapshot, tr: np.ndarray, va: np.ndarray, te: np.ndarray, seed: int, progress: bool = True) -> dict[str, dict[str, float]]:
    """MostPopular, ItemKNN, ALS and EASE: tuned on validation, refit on train+validation, tested."""
    # Fit on positive interactions (a skip is not a vote for an item); rank everything the user
    # has seen (skips included) out, as for the GNN; only relevant (non-skipped) targets count.
    m_tr = _matrix(snap, relevant(snap, tr))
    m_va = _matrix(snap, relevant(snap, va))
    full = tr | va
    m_full = _matrix(snap, relevant(snap, full))
    m_seen = _matrix(snap, full)
    m_te = _matrix(snap, relevant(snap, te))
    lam = _tune(EASE, [100.0, 250.0, 500.0, 1000.0], m_tr, m_va)
    k = _tune(lambda k: ItemKNN(k=k), [50, 100, 200], m_tr, m_va)
    factors = _tune(lambda f: ALS(factors=f, seed=seed), [32, 64, 128], m_tr, m_va)
    models: list[MostPopular | ItemKNN | ALS | EASE] = [MostPopular(), ItemKNN(k=k), ALS(factors=factors, seed=seed), EASE(lam)]
    out: dict[str, dict[str, float]] = {}
    for m in models:
        t0 = time.perf_counter()
        m.fit(m_full)
        res = ranking_metrics(m.score, m_seen, m_te)
        res["fit_seconds"] = round(time.perf_counter() - t0, 2)
        out[m.name] = res
    # EASE has nothing to say about a user without history (all-zero scores): the same EASE with
    # MostPopular for those users is the fair comparison where new users are tested.
    ease, pop = models[3], models[0]
    known = np.diff(m_full.indptr) > 0

    def ease_or_popular(users: np.ndarray) -> np.ndarray:
        return np.where(known[users, None], ease.score(users), pop.score(users))
    out["EASE + MostPopular for new users"] = ranking_metrics(ease_or_popular, m_seen, m_te)
    out["EASE"]["lambda"] = lam
    out["ItemKNN"]["k"] = k
    out["ALS"]["factors"] = factors
    return out


def gnn_metrics(item_emb: np.ndarray, snap: Snapshot, hist: np.ndarray, te: np.ndarray, params: dict[str, Any]) -> dict[str, float]:
    now = float(snap.ts[hist].max())
    users = user_matrix(item_emb, snap.user[hist], snap.item[hist], snap.kind[hist], snap.value[hist], snap.ts[hist],
                        snap.num_users, now, params)
    return ranking_metrics(lambda u: users[u] @ item_emb.T, _matrix(snap, hist), _matrix(snap, relevant(snap, te)))


@dataclass
class EvalContext:
    """What the model families share within one evaluation run.

    ``epochs`` and ``prior_weight``: the GNN's number of epochs and trend-prior weight, chosen on
    the validation split of the gate protocol (None: early-stop on each split's own validation).
    ``fitted``: per protocol, the GNN fit on that split's history (item embeddings, user-vector
    recipe), so that the pipeline replay uses the same one. ``engine``: the engine's settings
    (sources, weights, MMR) the pipeline replay serves with; ``ranker``: when a ranker is served
    with this GNN, a callable ``(snapshot, split, model, world) -> scorer`` that trains one on the
    split (as ``graphrec train-ranker`` does: candidates from train, labels from validation) and
    scores the replay; None: the engine serves fusion + MMR. ``interactions``: the
    ``[interactions]`` settings (the user-vector recipe's and the replay's type weights)."""

    cfg: GNNConfig
    seed: int = 42
    progress: bool = True
    epochs: int | None = None
    prior_weight: float | None = None
    fitted: dict[str, tuple[np.ndarray, dict[str, Any]]] = field(default_factory=dict)
    ranker: Callable[[Snapshot, Split, Any, Any], Any] | None = None
    version: str = "candidate"
    baselines: bool = True
    #: LightGCN's epochs and layer weights, chosen on the gate protocol's validation (None: chosen
    #: on each split's own validation); ``lgcn_fitted``: per protocol, its fit on the split's history.
    lgcn_epochs: int | None = None
    lgcn_alpha: list[float] | None = None
    lgcn_fitted: dict[str, Any] = field(default_factory=dict)
    #: The model whose embeddings are served ("pinsage" or "lightgcn"): the pipeline replays with it.
    served: str = "pinsage"
    #: The hybrid (gnn.itemitem): its :class:`gnn.itemitem.Choice`, made once on the validation of
    #: every split of ``choice_splits`` at once (the run's protocols; empty: the split evaluated),
    #: each with the served model fit on that split's train; ``hybrid_fitted``: per protocol, the
    #: hybrid with that choice fit on the split's history. ``train_fit``: per protocol, the served
    #: model's (item embeddings, user recipe) fit on the split's train.
    hybrid_choice: Any | None = None
    choice_splits: dict[str, Split] = field(default_factory=dict)
    #: The protocol whose validation chooses the GNN's epochs (``training.gate_protocol``).
    gate_protocol: str | None = None
    hybrid_fitted: dict[str, Any] = field(default_factory=dict)
    train_fit: dict[str, tuple[np.ndarray, dict[str, Any]]] = field(default_factory=dict)
    engine: EngineSettings = field(kw_only=True)
    interactions: InteractionSettings = field(kw_only=True)


Family = Callable[[Snapshot, Split, EvalContext], dict[str, Row]]


def fit_gnn(snap: Snapshot, split: Split, ctx: EvalContext) -> tuple[np.ndarray, dict[str, Any]]:
    """The GNN fit on the split's history (train + validation) for ``ctx.epochs`` epochs (or
    early-stopped on the split's validation first when not set); cached in ``ctx.fitted``."""
    if split.protocol in ctx.fitted:
        return ctx.fitted[split.protocol]
    from gnn.train import train

    if ctx.epochs is None:
        res = train(snap, split.train, relevant(snap, split.val), ctx.cfg, seed=ctx.seed, progress=ctx.progress,
                    vector_weights=ctx.interactions.vector_weights)
        ctx.epochs, ctx.prior_weight = max(1, res.best_epoch), res.user_params["prior_weight"]
        if ctx.served == "pinsage":
            ctx.train_fit.setdefault(split.protocol, (res.item_emb, res.user_params))
    fit = train(snap, split.hist, None, ctx.cfg.model_copy(update={"epochs": ctx.epochs}), seed=ctx.seed,
                progress=ctx.progress, prior_weight=ctx.prior_weight, vector_weights=ctx.interactions.vector_weights)
    ctx.fitted[split.protocol] = (fit.item_emb, fit.user_params)
    return ctx.fitted[split.protocol]


def gnn_family(snap: Snapshot, split: Split, ctx: EvalContext) -> dict[str, Row]:
    """The GNN (PinSage), like every baseline refit on train + validation, then tested."""
    t0 = time.perf_counter()
    emb, params = fit_gnn(snap, split, ctx)
    row = gnn_metrics(emb, snap, split.hist, split.test, params)
    row["fit_seconds"] = round(time.perf_counter() - t0, 1)
    return {"GNN (PinSage)": row}


def fit_lightgcn(snap: Snapshot, split: Split, ctx: EvalContext) -> Any:
    """LightGCN fit on the split's history for ``ctx.lgcn_epochs`` with ``ctx.lgcn_alpha`` (both
    chosen on the split's own validation first when not set); cached in ``ctx.lgcn_fitted``."""
    if split.protocol in ctx.lgcn_fitted:
        return ctx.lgcn_fitted[split.protocol]
    from gnn.features import build_features
    from gnn.lightgcn import train_lightgcn

    if ctx.lgcn_epochs is None:
        early = train_lightgcn(snap, split.train, relevant(snap, split.val), ctx.cfg.lightgcn, seed=ctx.seed,
                               dim=ctx.cfg.dim, threads=ctx.cfg.threads, progress=ctx.progress,
                               features=build_features(snap, split.train, ctx.cfg))
        ctx.lgcn_epochs, ctx.lgcn_alpha = max(1, early.best_epoch), early.alpha
        if ctx.served == "lightgcn":
            from gnn.user import user_params

            ctx.train_fit.setdefault(split.protocol, (early.item_emb, user_params(ctx.cfg, ctx.interactions.vector_weights)))
    fit = train_lightgcn(snap, split.hist, None, ctx.cfg.lightgcn, seed=ctx.seed, dim=ctx.cfg.dim,
                         threads=ctx.cfg.threads, progress=ctx.progress, epochs=ctx.lgcn_epochs,
                         alpha=ctx.lgcn_alpha, features=build_features(snap, split.hist, ctx.cfg))
    ctx.lgcn_fitted[split.protocol] = fit
    return fit


def lightgcn_family(snap: Snapshot, split: Split, ctx: EvalContext) -> dict[str, Row]:
    """LightGCN (gnn.lightgcn) refit on train + validation, then tested, in two rows: its own user
    embeddings, and user vectors pooled from history as the engine serves them."""
    if not ctx.cfg.lightgcn.enabled:
        return {}
    from gnn.metrics import interaction_matrix, ranking_metrics
    from gnn.user import user_params

    t0 = time.perf_counter()
    fit = fit_lightgcn(snap, split, ctx)
    m_hist = interaction_matrix(snap.user[split.hist], snap.item[split.hist], snap.num_users, snap.num_items)
    m_te = interaction_matrix(snap.user[relevant(snap, split.test)], snap.item[relevant(snap, split.test)],
                              snap.num_users, snap.num_items)
    own = ranking_metrics(lambda u: fit.user_emb[u] @ fit.item_emb.T, m_hist, m_te)
    own["fit_seconds"] = round(time.perf_counter() - t0, 1)
    pooled = gnn_metrics(fit.item_emb, snap, split.hist, split.test, user_params(ctx.cfg, ctx.interactions.vector_weights))
    return {"LightGCN": own, "LightGCN (pooled, served)": pooled}


def served_embeddings(snap: Snapshot, split: Split, ctx: EvalContext) -> tuple[np.ndarray, dict[str, Any]]:
    """The item embeddings and user-vector recipe of the served model, fit on the split's history."""
    if ctx.served == "lightgcn":
        from gnn.user import user_params

        return fit_lightgcn(snap, split, ctx).item_emb, user_params(ctx.cfg, ctx.interactions.vector_weights)
    return fit_gnn(snap, split, ctx)


def hybrid_enabled(snap: Snapshot, ctx: EvalContext) -> bool:
    return ctx.cfg.hybrid.enabled and snap.num_items <= ctx.cfg.hybrid.max_items


def train_embeddings(snap: Snapshot, split: Split, ctx: EvalContext) -> tuple[np.ndarray, dict[str, Any]]:
    """The served model fit on the split's train only (for choices on its validation), for the
    epochs already chosen; cached in ``ctx.train_fit``."""
    if split.protocol in ctx.train_fit:
        return ctx.train_fit[split.protocol]
    if ctx.served == "lightgcn":
        from gnn.features import build_features
        from gnn.lightgcn import train_lightgcn
        from gnn.user import user_params

        served_embeddings(snap, split, ctx)  # chooses the epochs and layer weights when not set
        lg = train_lightgcn(snap, split.train, None, ctx.cfg.lightgcn, seed=ctx.seed, dim=ctx.cfg.dim,
                            threads=ctx.cfg.threads, progress=ctx.progress, epochs=ctx.lgcn_epochs,
                            alpha=ctx.lgcn_alpha, features=build_features(snap, split.train, ctx.cfg))
        ctx.train_fit[split.protocol] = (lg.item_emb, user_params(ctx.cfg, ctx.interactions.vector_weights))
    else:
        from gnn.train import train

        served_embeddings(snap, split, ctx)  # chooses the epochs and the prior weight when not set
        res = train(snap, split.train, None, ctx.cfg.model_copy(update={"epochs": ctx.epochs}), seed=ctx.seed,
                    progress=ctx.progress, prior_weight=ctx.prior_weight, vector_weights=ctx.interactions.vector_weights)
        ctx.train_fit[split.protocol] = (res.item_emb, res.user_params)
    return ctx.train_fit[split.protocol]


def hybrid_choice(snap: Snapshot, split: Split, ctx: EvalContext) -> Any:
    """The hybrid's choices (gnn.itemitem.choose), made once per run jointly on the validation of
    every split of ``ctx.choice_splits`` (or of ``split`` alone), each with the served model fit
    on its train; cached in ``ctx.hybrid_choice``."""
    if ctx.hybrid_choice is None:
        from gnn import itemitem

        splits = ctx.choice_splits or {split.protocol: split}
        given = []
        for sp_ in splits.values():
            emb_tr, params_tr = train_embeddings(snap, sp_, ctx)
            given.append((sp_.train, relevant(snap, sp_.val), emb_tr, params_tr))
        # The run's seed seeds the hybrid's seeded part (the next network) too: evaluating over
        # several seeds shows its spread with the other models'.
        ctx.hybrid_choice = itemitem.choose(snap, given, progress=ctx.progress, seed=ctx.seed)
    return ctx.hybrid_choice


def served_choice(snap: Snapshot, ctx: EvalContext) -> Any:
    """The hybrid's choices for the model served on everything: the search of :func:`hybrid_choice`
    one window later, on the *test* targets of every split it chose on, with the models fit on their
    history (the served model's and the next networks the evaluation fit there). The weights that
    suit the newest window of the data are the ones to serve from now on; the tables keep
    :func:`hybrid_choice`'s (validation only): these choices never score a table. No relevant test
    target in any split: nothing newer to choose on, the tables' choice is served."""
    from gnn import itemitem

    tests = {p: relevant(snap, sp_.test) for p, sp_ in ctx.choice_splits.items()}
    if not any(t.any() for t in tests.values()):
        return ctx.hybrid_choice
    given, nets = [], []
    for p, sp_ in ctx.choice_splits.items():
        emb, params = served_embeddings(snap, sp_, ctx)
        given.append((sp_.hist, tests[p], emb, params))
        fitted = ctx.hybrid_fitted.get(p)  # fit on the history with the run's seed: its next network
        nets.append(fitted.next if fitted is not None else None)
    return itemitem.choose(snap, given, progress=ctx.progress, seed=ctx.seed, nets=nets)


def fit_hybrid(snap: Snapshot, split: Split, ctx: EvalContext) -> Any:
    """The hybrid (gnn.itemitem) on this split: the run's choices (:func:`hybrid_choice`, on
    validation only), fit on the split's history (train + validation); cached in
    ``ctx.hybrid_fitted``. None when disabled or the catalogue is too large."""
    if not hybrid_enabled(snap, ctx):
        return None
    if split.protocol in ctx.hybrid_fitted:
        return ctx.hybrid_fitted[split.protocol]
    from gnn import itemitem

    ch = hybrid_choice(snap, split, ctx)
    ctx.hybrid_fitted[split.protocol] = itemitem.fit(snap, split.hist, ch.params, ch.weights, ch.cold_weights,
                                                     ch.return_weights)
    return ctx.hybrid_fitted[split.protocol]


HYBRID_ROW = "served: hybrid (GNN + EASE + next items + transitions + trend + fresh + stage)"


def hybrid_family(snap: Snapshot, split: Split, ctx: EvalContext) -> dict[str, Row]:
    """The hybrid the engine ranks with (gnn.itemitem), its choices made jointly on every
    protocol's validation, fit on this split's train + validation, tested over the whole
    catalogue (the pipeline row replays it through the engine's sources and rules)."""
    if not hybrid_enabled(snap, ctx):
        return {}
    from gnn import itemitem

    t0 = time.perf_counter()
    model = fit_hybrid(snap, split, ctx)
    emb, params = served_embeddings(snap, split, ctx)
    v = itemitem.views(snap, split.hist, (float(model.params["position_half"]),), emb, params)
    # Every test user asks at the history's clock, as from the API serving it (returning users: gnn.itemitem).
    row = score_rows(snap, split, itemitem.score_fn(v, model, itemitem.graph_clock(snap, split.hist)))
    row["fit_seconds"] = round(time.perf_counter() - t0, 1)
    return {HYBRID_ROW: row}


def baseline_family(snap: Snapshot, split: Split, ctx: EvalContext) -> dict[str, Row]:
    """MostPopular, ItemKNN, ALS and EASE (see :func:`baselines`)."""
    if not ctx.baselines:
        return {}
    return baselines(snap, split.train, split.val, split.test, ctx.seed, ctx.progress)


def pipeline_family(snap: Snapshot, split: Split, ctx: EvalContext) -> dict[str, Row]:
    """What the engine would serve, replayed offline on the split (gnn.ranking.offline):
    its sources, merge, ranking and MMR with the engine's settings, on the served model (PinSage
    or LightGCN, ``ctx.served``) fit on this split.
    Served means: the DCN-v2 ranker when one trained on this GNN is given (``ctx.ranker``),
    else the hybrid (gnn.itemitem) + MMR when it is enabled, else fusion + MMR."""
    from gnn.ranking.offline import World, evaluate, fusion_scorer, targets
    from graphrec.core.recs.model import LiveModel

    emb, params = served_embeddings(snap, split, ctx)
    model = LiveModel(ctx.version, list(snap.item_ids), emb / np.maximum(1e-12, np.linalg.norm(emb, axis=1, keepdims=True)),
                      params, hybrid=fit_hybrid(snap, split, ctx))
    world = World.build(snap, split.hist, model, engine=ctx.engine, type_weights=ctx.interactions.score_weights)
    truth = targets(snap, split.test)
    if ctx.ranker is not None:
        return {"pipeline (served: DCN-v2 ranker + MMR)": evaluate(world, truth, ctx.ranker(snap, split, model, world)),
                "pipeline (fusion + MMR, without the ranker)": evaluate(world, truth, fusion_scorer(world))}
    served = "hybrid" if model.hybrid is not None else "fusion"
    return {f"pipeline (served: {served} + MMR)": evaluate(world, truth, fusion_scorer(world))}


#: The model families of the evaluation table, in table order: name -> function.
FAMILIES: dict[str, Family] = {"gnn": gnn_family, "lightgcn": lightgcn_family, "hybrid": hybrid_family,
                               "pipeline": pipeline_family, "baselines": baseline_family}


def evaluate_splits(snap: Snapshot, splits: dict[str, Split], ctx: EvalContext,
                    families: dict[str, Family] | None = None) -> dict[str, dict[str, Row]]:
    """Every family on every split: ``{protocol: {row name: metrics}}``."""
    fams = FAMILIES if families is None else families
    if not ctx.choice_splits:  # the hybrid is chosen on every protocol's validation at once
        ctx.choice_splits = dict(splits)
    out: dict[str, dict[str, Row]] = {}
    for protocol, split in splits.items():
        rows: dict[str, Row] = {}
        for fn in fams.values():
            rows.update(fn(snap, split, ctx))
        out[protocol] = rows
    return out


REFERENCES = ("EASE", "EASE + MostPopular for new users")


def format_table(rows: dict[str, dict[str, float]], spread: dict[str, dict[str, float]] | None = None) -> str:
    """One protocol's rows; with ``spread`` (half the range over seeds) each cell is mean ± spread."""
    w = 20 if spread else 13
    head = f"{'model':<60}" + "".join(f"{m:>{w}}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        cells = []
        for m in METRICS:
            cell = f"{r.get(m, float('nan')):.4f}"
            if spread:
                cell += f" ± {spread.get(name, {}).get(m, float('nan')):.4f}"
            cells.append(f"{cell:>{w}}")
        lines.append(f"{name[:59]:<60}" + "".join(cells))
    return "\n".join(lines)


def served_ratios(rows: dict[str, dict[str, float]]) -> list[str]:
    """Lines: each served row's NDCG@10 and Recall@100 as multiples of each reference's."""
    out = []
    for name, r in rows.items():
        if not (name.startswith("served") or name.startswith("pipeline (served")):
            continue
        for ref in REFERENCES:
            if ref in rows:
                x = [r.get(m, float("nan")) / max(rows[ref].get(m, float("nan")), 1e-12) for m in ("ndcg@10", "recall@100")]
                out.append(f"  {name} / {ref}: NDCG@10 x{x[0]:.3f}, Recall@100 x{x[1]:.3f}")
    return out


def aggregate(tables: list[dict[str, dict[str, Row]]]) -> tuple[dict[str, dict[str, Row]], dict[str, dict[str, Row]]]:
    """Several runs' tables (one per seed) as (mean, spread = (max - min) / 2) per protocol, row
    and metric (rows present in every run)."""
    mean: dict[str, dict[str, Row]] = {}
    spread: dict[str, dict[str, Row]] = {}
    for protocol in tables[0]:
        mean[protocol], spread[protocol] = {}, {}
        for name in tables[0][protocol]:
            if not all(name in t.get(protocol, {}) for t in tables):
                continue
            keys = [k for k, v in tables[0][protocol][name].items() if isinstance(v, (int, float))]
            vals = {k: [float(t[protocol][name][k]) for t in tables if k in t[protocol][name]] for k in keys}
            mean[protocol][name] = {k: float(np.mean(v)) for k, v in vals.items()}
            spread[protocol][name] = {k: (max(v) - min(v)) / 2 for k, v in vals.items()}
    return mean, spread


def format_tables(tables: dict[str, dict[str, Row]], meta: dict[str, dict[str, Any]] | None = None,
                  spread: dict[str, dict[str, Row]] | None = None) -> str:
    """One table per protocol, each headed by what its test holds and followed by the served rows'
    ratios to EASE; with ``spread``, cells are mean ± spread over seeds."""
    out = []
    for protocol, rows in tables.items():
        m = (meta or {}).get(protocol, {})
        counts = (f" — {m['test_users']} test users ({m['new_test_users']} new), {m['test_interactions']} test "
                  f"interactions ({m['new_item_test_interactions']} with new items)") if "test_users" in m else ""
        ratios = served_ratios(rows)
        out.append(f"[{protocol}]{counts}\n{format_table(rows, (spread or {}).get(protocol))}"
                   + ("\n" + "\n".join(ratios) if ratios else ""))
    return "\n\n".join(out)


def write_report(out_dir: Path, tables: dict[str, dict[str, Row]], meta: dict[str, Any],
                 splits: dict[str, dict[str, Any]] | None = None) -> Path:
    """``evaluation.json``: per protocol its description, counts and rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "evaluation.json"
    protocols = {p: {**(splits or {}).get(p, {}), "results": rows} for p, rows in tables.items()}
    path.write_text(json.dumps({**meta, "protocols": protocols}, indent=2, default=str))
    return path


def report_tables(report: dict[str, Any]) -> tuple[dict[str, dict[str, Row]], dict[str, dict[str, Any]]]:
    """Tables and split descriptions of an ``evaluation.json`` (also one written before protocols
    existed: its single table is the user-temporal one)."""
    if "protocols" in report:
        return ({p: v["results"] for p, v in report["protocols"].items()},
                {p: {k: x for k, x in v.items() if k != "results"} for p, v in report["protocols"].items()})
    return {"user-temporal": report["results"]}, {"user-temporal": {"description": report.get("protocol", "")}}


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
