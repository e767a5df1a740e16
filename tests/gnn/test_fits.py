"""What makes a retraining faster must not change what it learns: the fits in worker processes,
the batch examples cut with array operations and the sparse product with a transposed adjacency
built once give the same numbers as before, bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gnn.fits import FitPool, Job, default_workers, fit_workers, memory_workers
from gnn.lightgcn import train_lightgcn
from gnn.nn.sparse import spmm_sum, transposed
from gnn.split import train_val_test
from gnn.train import examples_of, train
from graphrec.core.gnn_config import GNNConfig, LightGCNConfig
from tests.gnn.test_gnn import VECTOR_WEIGHTS, _toy

CFG = GNNConfig(dim=16, hidden=32, epochs=3, patience=3, batch_users=32, walks_per_item=50, neighbors=5,
                examples_per_user=2, easy_negatives=8, hard_negatives_max=2, hard_negative_ranks=(2, 20), threads=1)


def test_a_fit_in_a_worker_process_equals_the_same_fit_here() -> None:
    snap = _toy()
    tr, _, _ = train_val_test(snap)
    jobs: dict[str, Job] = {"gnn": (train, (snap, tr, None, CFG), {"seed": 5, "progress": False, "vector_weights": VECTOR_WEIGHTS}),
            "lightgcn": (train_lightgcn, (snap, tr, None, LightGCNConfig(batch=256)),
                         {"seed": 5, "dim": 16, "threads": 1, "progress": False, "epochs": 3})}
    with FitPool(2) as pool:
        assert pool.parallel
        there = pool.run(jobs)
    torch.set_num_threads(1)
    with FitPool(1) as inline:
        assert not inline.parallel
        here = inline.run(jobs)
    assert np.array_equal(there["gnn"].item_emb, here["gnn"].item_emb)
    assert there["gnn"].user_params == here["gnn"].user_params
    assert np.array_equal(there["lightgcn"].item_emb, here["lightgcn"].item_emb)


def test_a_failing_job_raises_its_error_inline_as_from_a_worker() -> None:
    with FitPool(1) as pool, pytest.raises(ZeroDivisionError):
        pool.run({"bad": (divmod, (1, 0), {})})


def test_workers_default_to_the_cores_at_most_two() -> None:
    assert default_workers(3) == 3
    assert 1 <= default_workers() <= 2


def test_fit_workers_are_as_many_as_the_free_memory_holds() -> None:
    gib = 2**30
    assert memory_workers(2, 4 * gib, 20 * gib, reserve=2 * gib) == 2
    assert memory_workers(2, 6 * gib, 15 * gib, reserve=3 * gib) == 2
    assert memory_workers(2, 6 * gib, 14 * gib, reserve=3 * gib) == 1  # one worker is no better than none
    assert memory_workers(4, 1 * gib, 3 * gib, reserve=0) == 3
    assert memory_workers(2, 1 * gib, 0, reserve=gib) == 1
    # The 1M-item graph beside its Neo4j: 1.9 GiB resident after the export, 15.5 GiB free of 24:
    # two workers (5.4 GiB each) and this process's own fit would not fit: the fits run here, in order.
    n, why = fit_workers(0, memory=(int(1.9 * gib), int(15.5 * gib), 24 * gib))
    assert n == 1 and why.startswith("memory: 15.5 GiB available, about 5.7 GiB per worker")
    assert fit_workers(0, memory=(gib, 20 * gib, 24 * gib))[0] == default_workers()  # MovieLens
    assert fit_workers(2, memory=(3 * gib, gib, 24 * gib)) == (2, "configured")  # the operator's choice stands


def test_batch_examples_equal_one_draw_per_example_in_a_loop() -> None:
    rng_data = np.random.default_rng(0)
    lens = rng_data.integers(3, 120, size=300)
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    flat = rng_data.permutation(int(lens.sum()))
    cfg = GNNConfig(max_history=20, targets_per_example=7)
    got = examples_of(flat, starts, lens, np.random.default_rng(9), cfg)
    rng = np.random.default_rng(9)  # the loop it replaces, one rng.integers call per example
    hist, h_owner, tgt, t_owner, at_cut = [], [], [], [], []
    for b, (s, n) in enumerate(zip(starts.tolist(), lens.tolist(), strict=True)):
        tl = flat[s:s + n]
        c = int(rng.integers(max(1, n // 5), n))
        h = tl[max(0, c - cfg.max_history):c]
        t = tl[c:c + cfg.targets_per_example]
        hist.append(h)
        h_owner.append(np.full(len(h), b))
        tgt.append(t)
        t_owner.append(np.full(len(t), b))
        at_cut.append(tl[c])
    want = (np.concatenate(hist), np.concatenate(h_owner), np.concatenate(tgt), np.concatenate(t_owner), np.array(at_cut))
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)


def test_spmm_gradient_equals_autograds_and_the_transpose_is_built_once() -> None:
    gen = torch.Generator().manual_seed(0)
    dense = torch.rand(30, 20, generator=gen) * (torch.rand(30, 20, generator=gen) < 0.2)
    adj = dense.to_sparse_csr()
    x1 = torch.randn(20, 8, generator=gen, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    g = torch.randn(30, 8, generator=gen)
    y1 = torch.sparse.mm(adj, x1)
    y2 = spmm_sum(adj, x2)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.equal(y1, y2)
    assert x1.grad is not None and x2.grad is not None and torch.equal(x1.grad, x2.grad)
    assert transposed(adj) is transposed(adj)
    assert torch.equal(transposed(adj).to_dense(), dense.t())


def _workers_with(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (the spawned workers inherit it)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(d))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
@pytest.mark.parametrize("when", ["while the workers start", "while they compute"])
def test_workers_do_not_outlive_a_killed_training_process(when: str) -> None:
    marker = f"GRAPHREC_TEST_FITPOOL_{os.getpid()}_{when.replace(' ', '_')}"
    script = (
        "import time\n"
        "from gnn.fits import FitPool\n"
        "with FitPool(2) as pool:\n"
        "    futs = [pool.submit((time.sleep, (60,), {})) for _ in range(2)]\n"
        "    print('submitted', flush=True)\n"
        "    time.sleep(60)\n")
    env = dict(os.environ, **{marker: "1"})
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "submitted"
        if when == "while they compute":
            deadline = time.monotonic() + 60
            while len(_workers_with(marker)) < 3 and time.monotonic() < deadline:  # the parent and two workers
                time.sleep(0.2)
            time.sleep(8)  # initialised (torch imported), sleeping in their jobs
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while _workers_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _workers_with(marker) == []


def test_a_fit_from_a_model_starts_from_its_parameters_with_neighbourhoods_of_its_own_interactions() -> None:
    """gnn.train's ``start``: the learned parameters are loaded (with lr = 0 they stay), the
    neighbourhoods and seen items are built from the fit's own interactions."""
    from gnn.train import build_model

    snap = _toy()
    tr, _, _ = train_val_test(snap)
    first = train(snap, tr, None, CFG, seed=5, progress=False, vector_weights=VECTOR_WEIGHTS)
    every = np.ones(snap.num_interactions, dtype=bool)
    still = CFG.model_copy(update={"lr": 0.0, "weight_decay": 0.0, "epochs": 1})
    then = train(snap, every, None, still, seed=5, progress=False, vector_weights=VECTOR_WEIGHTS,
                 start=first.model.state_dict(), start_epoch=CFG.epochs)
    for (name, a), (_, b) in zip(first.model.named_parameters(), then.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    fresh = build_model(snap, every, CFG, 5)
    assert torch.equal(then.model.nbr, fresh.nbr) and torch.equal(then.model.seen, fresh.seen)
    assert not torch.equal(then.model.nbr_w, first.model.nbr_w)  # the walks went over the held-out interactions too


def _jobs(refine: float, models: tuple[str, ...] = ("gnn", "lightgcn")) -> tuple[dict[str, Job], dict[str, np.ndarray]]:
    from gnn.evaluate import EvalContext, make_split
    from gnn.fits import follow_up_fits
    from graphrec.core.config import EngineSettings, InteractionSettings

    snap = _toy()
    splits = {p: make_split(snap, p) for p in ("user-temporal", "global-time")}
    cfg = CFG.model_copy(update={"refine": refine, "lightgcn": LightGCNConfig(refine=refine)})
    ctx = EvalContext(cfg, seed=1, progress=False, epochs=8, engine=EngineSettings(), interactions=InteractionSettings(),
                      gate_protocol="user-temporal")
    ctx.lgcn_epochs, ctx.lgcn_alpha = 20, [1.0, 1.0, 1.0, 1.0]
    ctx.train_fit["user-temporal"] = (np.zeros((snap.num_items, 16), np.float32), {})
    start = {"content.weight": torch.zeros(1)}
    jobs = follow_up_fits(snap, splits, ctx, cfg, True, start=start, lgcn_start=torch.zeros(1), models=models)
    return jobs, {p: sp.hist for p, sp in splits.items()}


def test_follow_up_fits_start_from_the_early_stopped_models_only_where_their_interactions_hold_its_train() -> None:
    """With ``refine``: the serving refit and the gate protocol's history fits go on from the
    early-stopped models for a quarter of their epochs; the other protocol's history fit (its test
    may be in the gate's train) starts from that protocol's own train fit, in one job."""
    jobs, _ = _jobs(0.25)
    assert set(jobs) == {"refit", "gnn user-temporal hist", "gnn global-time train+hist", "lightgcn user-temporal hist",
                         "lightgcn global-time hist"}
    for key in ("refit", "gnn user-temporal hist"):
        _, args, kw = jobs[key]
        assert kw["start"] is not None and kw["start_epoch"] == 8 and args[3].epochs == 2
    _, args, kw = jobs["lightgcn user-temporal hist"]
    assert kw["start"] is not None and kw["epochs"] == 5
    _, args, kw = jobs["lightgcn global-time hist"]
    assert "start" not in kw and kw["epochs"] == 20
    fn, args, kw = jobs["gnn global-time train+hist"]
    assert fn.__name__ == "train_and_refine" and "start" not in kw and args[3].epochs == 8
    assert next(iter(jobs)) == "gnn global-time train+hist"  # the longest first


def test_follow_up_fits_without_refine_are_from_scratch_for_the_chosen_epochs() -> None:
    jobs, _ = _jobs(0.0)
    assert set(jobs) == {"refit", "gnn user-temporal hist", "gnn global-time train", "gnn global-time hist",
                         "lightgcn user-temporal hist", "lightgcn global-time hist"}
    for fn, args, kw in jobs.values():
        assert "start" not in kw
        assert (kw["epochs"] == 20) if fn is train_lightgcn else (args[3].epochs == 8)


def test_train_and_refine_goes_on_from_its_first_fit() -> None:
    from gnn.fits import train_and_refine

    snap = _toy()
    tr, va, _ = train_val_test(snap)
    hist = tr | va
    cfg = CFG.model_copy(update={"refine": 0.5, "epochs": 2})
    first, second = train_and_refine(snap, tr, hist, cfg, seed=5, progress=False, vector_weights=VECTOR_WEIGHTS)
    alone = train(snap, tr, None, cfg, seed=5, progress=False, vector_weights=VECTOR_WEIGHTS)
    assert np.array_equal(first.item_emb, alone.item_emb)
    assert len(second.history) == 1 and second.history[0]["hard_negatives"] == min(2, CFG.hard_negatives_max)


def test_follow_up_fits_of_one_model() -> None:
    """graphrec train starts the GNN's fits before LightGCN's early stopping ends (the serving
    refit goes with the served model)."""
    gnn, _ = _jobs(0.25, ("gnn",))
    lightgcn, _ = _jobs(0.25, ("lightgcn",))
    assert set(gnn) == {"refit", "gnn user-temporal hist", "gnn global-time train+hist"}
    assert set(lightgcn) == {"lightgcn user-temporal hist", "lightgcn global-time hist"}
