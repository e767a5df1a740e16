"""The independent fits of one retraining, run side by side in worker processes.

Once early stopping has chosen the epochs (:func:`gnn.lifecycle.run_pipeline`), the fits that
follow do not depend on each other: the GNN on each protocol's history (and on a non-gate
protocol's train, for the hybrid's choices), the serving refit on every interaction, LightGCN on
each protocol's history. Each is seeded on its own (``train`` / ``train_lightgcn`` seed every
generator they use), so where it runs does not change what it learns.

They run in a pool of ``workers`` processes (``spawn``: a forked child would inherit torch's
thread pool), one torch thread each: a single-threaded process has no peer thread to spin-wait
for, so on a core another process keeps busy it only gets its fair share of the time, while
two of torch's intra-op threads collapse (see :mod:`gnn.threads`). With ``workers <= 1`` every
fit runs here, in order.

A job is ``(function, args, kwargs)`` of a module-level function (picklable); results come back
by key.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gnn.evaluate import EvalContext, Split
    from graphrec.core.gnn_config import GNNConfig
    from graphrec.core.snapshot import Snapshot

Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def default_workers(configured: int = 0, cap: int = 2) -> int:
    """``configured`` if > 0, else the cores this process may run on, at most ``cap``."""
    if configured > 0:
        return configured
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cap, allowed))


def memory_workers(workers: int, per_worker: int, available: int, reserve: int) -> int:
    """How many of ``workers`` processes of ``per_worker`` bytes each fit in ``available`` bytes
    once ``reserve`` is set aside; 1 (no worker: the fits run in order in the training process)
    when fewer than two fit."""
    fit = max(0, available - reserve) // max(1, per_worker)
    return min(workers, fit) if fit >= 2 else 1


def fit_workers(configured: int = 0, memory: tuple[int, int, int] | None = None) -> tuple[int, str]:
    """The workers of this retraining's :class:`FitPool`, and why. ``configured`` > 0 is the
    operator's choice; otherwise :func:`default_workers`, as many as the free memory holds. Call
    it once the snapshot is in memory: a worker receives its own copy and fits beside it, so one
    costs about three times this process's resident memory then, and this process grows by twice
    it during its own fit (measured at 1M items: 1.9 GB after the export, 5.4 GB per worker, the
    training process 5.9 GB); a tenth of the machine's memory stays free besides. ``memory``:
    (resident, available, total) bytes, read from the system when None."""
    want = default_workers(configured)
    if configured > 0 or want <= 1:
        return want, "configured" if configured > 0 else "one core"
    if memory is None:
        import psutil

        vm = psutil.virtual_memory()
        memory = psutil.Process().memory_info().rss, vm.available, vm.total
    rss, available, total = memory
    n = memory_workers(want, 3 * rss, available, reserve=2 * rss + total // 10)
    return n, (f"{'cores' if n == want else 'memory'}: {available / 2**30:.1f} GiB available, about "
               f"{3 * rss / 2**30:.1f} GiB per worker beside this process's {rss / 2**30:.1f} GiB")


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its children so far, the workers of a
    :class:`FitPool` included whether they still run or were stopped: on a shared machine, what
    the work cost whatever the wall clock says."""
    import psutil

    t = os.times()
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            c = child.cpu_times()
            live += c.user + c.system
        except psutil.Error:  # ended meanwhile: counted in os.times() once reaped
            pass
    return t.user + t.system + t.children_user + t.children_system + live


def _worker_init(parent: int) -> None:
    """One torch thread; on Linux, the worker dies with the training process ``parent`` (a
    retraining killed mid-fit leaves no worker computing for nobody, nor one waiting forever for
    jobs). A parent that died before this ran (a worker starts in a second or two) sends no signal:
    the worker then finds itself adopted and leaves at once."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:
            os._exit(1)
    import torch

    torch.set_num_threads(1)


class FitPool:
    """A pool of ``workers`` single-threaded processes (none when ``workers <= 1``: jobs run in
    this process when their result is asked for). Use as a context manager."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._inline: dict[int, Job] = {}

    def __enter__(self) -> FitPool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (their memory is returned); jobs submitted after this run inline."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def submit(self, job: Job) -> Future[Any]:
        """Start ``job`` in a worker (inline pool: a future completed when this returns)."""
        fn, args, kwargs = job
        if self._pool is not None:
            return self._pool.submit(fn, *args, **kwargs)
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - re-raised by fut.result(), as from a worker
            fut.set_exception(exc)
        return fut

    def start(self, jobs: Mapping[str, Job]) -> dict[str, Future[Any]]:
        """Submit every job, in the order given (put the longest first); their futures by key."""
        return {k: self.submit(j) for k, j in jobs.items()}

    def run(self, jobs: Mapping[str, Job]) -> dict[str, Any]:
        """Every job, in the order given (put the longest first); their results by key."""
        return {k: f.result() for k, f in self.start(jobs).items()}


def refined(epochs: int, refine: float) -> int:
    """The epochs of a fit that starts from a model fit for ``epochs`` (``refine`` of them, at least 1)."""
    return max(1, round(epochs * refine))


def train_and_refine(snap: Snapshot, train_mask: np.ndarray, hist_mask: np.ndarray, cfg: GNNConfig,
                     **kwargs: Any) -> tuple[Any, Any]:
    """The GNN fit on ``train_mask`` for ``cfg.epochs``, then from it on ``hist_mask`` (which holds
    ``train_mask``) for ``refined`` epochs: one job, the second needs the first."""
    from gnn.train import train

    first = train(snap, train_mask, None, cfg, **kwargs)
    second = train(snap, hist_mask, None, cfg.model_copy(update={"epochs": refined(cfg.epochs, cfg.refine)}),
                   start=first.model.state_dict(), start_epoch=cfg.epochs, **kwargs)
    return first, second


def follow_up_fits(snap: Snapshot, splits: Mapping[str, Split], ctx: EvalContext, cfg: GNNConfig, refit_full: bool,
                   progress: bool = False, start: Mapping[str, Any] | None = None,
                   lgcn_start: Any | None = None, models: tuple[str, ...] = ("gnn", "lightgcn")) -> dict[str, Job]:
    """The fits the evaluation (:func:`gnn.evaluate.evaluate_splits`) and serving need once
    ``ctx`` holds the chosen epochs (and LightGCN's layer weights), longest first: the serving
    refit on every interaction (``"refit"``, with ``refit_full``), then per protocol the GNN on
    the split's history (``"gnn <protocol> hist"``), the served model on a non-gate split's train
    for the hybrid's choices (``"<gnn|lightgcn> <protocol> train"``) and LightGCN on the history
    (``"lightgcn <protocol> hist"``). Each is the call the evaluation would make itself;
    ``cfg``: the GNN config with the workers' thread count; ``models``: the fits of these models
    only (``gnn``: PinSage's, ``lightgcn``: LightGCN's; the serving refit is the served model's).

    ``start`` / ``lgcn_start``: the early-stopped GNN's state / LightGCN's layer-0 embeddings
    (fit on the gate protocol's train). With ``refine`` > 0 (``gnn.refine``,
    ``gnn.lightgcn.refine``) a fit whose interactions hold that train (the serving refit, the gate
    protocol's history) starts from it and runs ``refine`` of the epochs; another protocol's
    split may hold out what the gate's train holds, so its history fit starts from its own train
    fit when there is one (``"gnn <protocol> train+hist"``, one job), else from scratch."""
    from gnn.evaluate import hybrid_enabled
    from gnn.features import build_features
    from gnn.lightgcn import train_lightgcn
    from gnn.train import train

    assert ctx.epochs is not None
    gcfg = cfg.model_copy(update={"epochs": ctx.epochs})
    lgcn = ctx.cfg.lightgcn.enabled
    warm = start is not None and cfg.refine > 0
    lg_warm = lgcn_start is not None and ctx.cfg.lightgcn.refine > 0
    gnn_kw = {"seed": ctx.seed, "progress": progress, "prior_weight": ctx.prior_weight,
              "vector_weights": ctx.interactions.vector_weights}

    def gnn(mask: np.ndarray, from_gate: bool = False) -> Job:
        if from_gate and warm:
            rcfg = gcfg.model_copy(update={"epochs": refined(ctx.epochs or 1, cfg.refine)})
            return (train, (snap, mask, None, rcfg), dict(gnn_kw, start=start, start_epoch=ctx.epochs))
        return (train, (snap, mask, None, gcfg), gnn_kw)

    def lightgcn(mask: np.ndarray, from_gate: bool = False) -> Job:
        epochs, kw = ctx.lgcn_epochs, {}
        if from_gate and lg_warm and epochs is not None:
            epochs, kw = refined(epochs, ctx.cfg.lightgcn.refine), {"start": lgcn_start}
        return (train_lightgcn, (snap, mask, None, ctx.cfg.lightgcn),
                {"seed": ctx.seed, "dim": ctx.cfg.dim, "threads": cfg.threads, "progress": progress,
                 "epochs": epochs, "alpha": ctx.lgcn_alpha, "features": build_features(snap, mask, ctx.cfg), **kw})

    served = "lightgcn" if ctx.served == "lightgcn" else "gnn"
    gate = ctx.gate_protocol
    jobs: dict[str, Job] = {}
    for p, sp in splits.items():  # the longest first: from scratch
        if p == gate:
            continue
        if hybrid_enabled(snap, ctx) and p not in ctx.train_fit:
            if served == "gnn" and warm:
                jobs[f"gnn {p} train+hist"] = (train_and_refine, (snap, sp.train, sp.hist, gcfg), gnn_kw)
                continue
            jobs[f"{served} {p} train"] = lightgcn(sp.train) if served == "lightgcn" else gnn(sp.train)
        jobs[f"gnn {p} hist"] = gnn(sp.hist)
    if lgcn:
        for p, sp in splits.items():
            jobs[f"lightgcn {p} hist"] = lightgcn(sp.hist, from_gate=p == gate)
    if refit_full:
        every = np.ones(snap.num_interactions, dtype=bool)
        jobs["refit"] = lightgcn(every, from_gate=True) if served == "lightgcn" else gnn(every, from_gate=True)
    if gate is not None and gate in splits:
        jobs[f"gnn {gate} hist"] = gnn(splits[gate].hist, from_gate=True)
        if hybrid_enabled(snap, ctx) and gate not in ctx.train_fit:
            jobs[f"{served} {gate} train"] = lightgcn(splits[gate].train) if served == "lightgcn" else gnn(splits[gate].train)
    def model(key: str) -> str:
        return served if key == "refit" else key.split()[0]

    return dict(sorted(((k, j) for k, j in jobs.items() if model(k) in models), key=lambda kv: -_cost(kv[1])))


def _cost(job: Job) -> float:
    """A job's length in epochs, to start the longest first."""
    fn, args, kwargs = job
    if fn.__name__ == "train_and_refine":
        return args[3].epochs * (1 + args[3].refine)
    if fn.__name__ == "train_lightgcn":
        return float(kwargs.get("epochs") or 0) * 0.5  # a LightGCN epoch costs less than a GNN one
    return float(args[3].epochs)


def prefill(ctx: EvalContext, splits: Mapping[str, Split], fitted: Mapping[str, Any], lightgcn_params: dict[str, Any]) -> None:
    """Put the results of :func:`follow_up_fits` where the evaluation looks for its fits (the
    caches of ``ctx``); ``lightgcn_params``: the user-vector recipe served with LightGCN."""
    for p in splits:
        if (r := fitted.get(f"gnn {p} hist")) is not None:
            ctx.fitted[p] = (r.item_emb, r.user_params)
        if (r := fitted.get(f"gnn {p} train")) is not None:
            ctx.train_fit[p] = (r.item_emb, r.user_params)
        if (pair := fitted.get(f"gnn {p} train+hist")) is not None:
            ctx.train_fit[p] = (pair[0].item_emb, pair[0].user_params)
            ctx.fitted[p] = (pair[1].item_emb, pair[1].user_params)
        if (r := fitted.get(f"lightgcn {p} train")) is not None:
            ctx.train_fit[p] = (r.item_emb, lightgcn_params)
        if (r := fitted.get(f"lightgcn {p} hist")) is not None:
            ctx.lgcn_fitted[p] = r
