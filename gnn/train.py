"""Training: "given a user's history up to time t, predict what they interact with next".

Each epoch samples, for every user, cut points in their (training) timeline; the history before
the cut is pooled into a user vector exactly as at request time (:mod:`gnn.user`) and the next
``targets_per_example`` interactions are the positives. The loss is

- a softmax over the catalogue at temperature ``temperature`` (full softmax when the catalogue
  fits, sampled otherwise): it ranks every positive above all items at once, which is what the
  full-ranking metrics measure; plus
- PinSage's max-margin loss ``max(0, margin - q·p + q·n)`` over easy negatives (uniform) and hard
  negatives drawn from ranks ``hard_negative_ranks`` of the current model, introduced by
  curriculum (epoch e uses ``min(e, hard_negatives_max)`` of them).

Early stopping on validation NDCG@10; the best epoch's weights are kept (and checkpointed).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gnn.features import ItemFeatures, build_features
from gnn.hetero import positive_edges, to_hetero_data
from gnn.metrics import interaction_matrix, ranking_metrics
from gnn.model import PinSage
from gnn.threads import choose_threads
from gnn.user import interaction_weights, pool, user_matrix, user_params
from gnn.walks import importance_neighbourhoods
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.snapshot import Snapshot

FULL_SOFTMAX_MAX_ITEMS = 50_000


@dataclass
class TrainResult:
    model: PinSage
    item_emb: np.ndarray
    history: list[dict[str, float]]
    best_epoch: int
    best_val_ndcg: float
    seconds: float
    seed: int
    config: GNNConfig
    user_params: dict[str, Any]
    features: ItemFeatures
    examples: int = 0  # (user, cut point) training examples, summed over the epochs run
    extra: dict[str, Any] = field(default_factory=dict)  # "timings": setup / final seconds (history has per epoch)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(snap: Snapshot, train_mask: np.ndarray, cfg: GNNConfig, seed: int,
                timings: dict[str, float] | None = None) -> PinSage:
    """Features, random-walk neighbourhoods, the model; seconds of each step into ``timings``."""
    t = time.perf_counter()
    feats = build_features(snap, train_mask, cfg)
    t_feats = time.perf_counter()
    ui = positive_edges(to_hetero_data(snap, train_mask)).numpy()  # walks follow what users wanted, not SKIPPED
    nbr, w = importance_neighbourhoods(ui[0], ui[1], snap.num_users, snap.num_items,
                                       top_t=cfg.neighbors, walks=cfg.walks_per_item, length=cfg.walk_length,
                                       restart=cfg.restart, seed=seed)
    t_walks = time.perf_counter()
    seen = np.bincount(snap.item[train_mask], minlength=snap.num_items) > 0
    model = PinSage(feats, nbr, w, seen, cfg, sparse_ids=snap.num_items > FULL_SOFTMAX_MAX_ITEMS)
    if timings is not None:
        timings.update(features_s=t_feats - t, walks_s=t_walks - t_feats, model_s=time.perf_counter() - t_walks)
    return model


def _timelines(snap: Snapshot, mask: np.ndarray) -> list[np.ndarray]:
    idx = np.nonzero(mask)[0]
    order = idx[np.lexsort((snap.item[idx], snap.ts[idx], snap.user[idx]))]
    users = snap.user[order]
    starts = np.r_[0, np.nonzero(np.diff(users))[0] + 1] if len(order) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(order)] if len(order) else np.zeros(0, np.int64)
    out: list[np.ndarray] = [np.zeros(0, np.int64) for _ in range(snap.num_users)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        out[int(users[s])] = order[s:e]
    return out


def _ranges(begin: np.ndarray, length: np.ndarray) -> np.ndarray:
    """``concatenate([arange(b, b + n) for b, n in zip(begin, length)])``, without the loop."""
    ends = np.cumsum(length)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - length - begin, length)


def examples_of(flat: np.ndarray, start: np.ndarray, length: np.ndarray, rng: np.random.Generator,
                cfg: GNNConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One (history → future) example per timeline ``flat[start:start + length]`` (3+
    interactions each): a cut point c drawn in ``[max(1, length // 5), length)``, the history
    the last ``max_history`` interactions before it, the targets the next
    ``targets_per_example`` from it. Returns (history interactions, their example, target
    interactions, their example, the interaction at each cut point), examples in order. The
    draws are those of one ``rng.integers`` call per example, in order (numpy draws an array of
    bounds element by element)."""
    c = rng.integers(np.maximum(1, length // 5), length)
    h_begin = np.maximum(0, c - cfg.max_history)
    h_len = c - h_begin
    t_len = np.minimum(cfg.targets_per_example, length - c)
    owner = np.arange(len(start))
    return (flat[_ranges(start + h_begin, h_len)], np.repeat(owner, h_len), flat[_ranges(start + c, t_len)],
            np.repeat(owner, t_len), flat[start + c])


def validate(model: PinSage, snap: Snapshot, hist_mask: np.ndarray, target_mask: np.ndarray, params: dict[str, Any]) -> dict[str, float]:
    return _validate_emb(model.embed_all(), snap, hist_mask, target_mask, params)


PRIOR_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)


def tune_prior(item_emb: np.ndarray, snap: Snapshot, train_mask: np.ndarray, val_mask: np.ndarray | None,
               params: dict[str, Any], fixed: float | None = None) -> dict[str, Any]:
    """Add the trend prior to the user-vector recipe, its weight chosen on validation
    (NDCG@10 + Recall@100), or ``fixed`` (the refit reuses the evaluation run's weight)."""
    from gnn.user import trend_prior

    now = float(snap.ts[train_mask].max())
    out = dict(params, prior=trend_prior(item_emb, snap.item[train_mask], snap.ts[train_mask], now).tolist())
    if val_mask is None:
        out["prior_weight"] = float(fixed if fixed is not None else params.get("prior_weight", 0.0))
        return out
    emb_t = item_emb

    def score(weight: float) -> float:
        m = _validate_emb(emb_t, snap, train_mask, val_mask, dict(out, prior_weight=weight))
        return m["ndcg@10"] + m["recall@100"]

    out["prior_weight"] = max(PRIOR_WEIGHTS, key=score)
    return out


def _validate_emb(emb: np.ndarray, snap: Snapshot, hist_mask: np.ndarray, target_mask: np.ndarray,
                  params: dict[str, Any]) -> dict[str, float]:
    now = float(snap.ts[hist_mask].max())
    users = user_matrix(emb, snap.user[hist_mask], snap.item[hist_mask], snap.kind[hist_mask], snap.value[hist_mask],
                        snap.ts[hist_mask], snap.num_users, now, params)
    train = interaction_matrix(snap.user[hist_mask], snap.item[hist_mask], snap.num_users, snap.num_items)
    test = interaction_matrix(snap.user[target_mask], snap.item[target_mask], snap.num_users, snap.num_items)
    return ranking_metrics(lambda u: users[u] @ emb.T, train, test)


def train(snap: Snapshot, train_mask: np.ndarray, val_mask: np.ndarray | None, cfg: GNNConfig | None = None, seed: int = 42,
          checkpoint_dir: Path | None = None, progress: bool = True, prior_weight: float | None = None, *,
          vector_weights: Mapping[str, float], start: Mapping[str, torch.Tensor] | None = None,
          start_epoch: int = 0) -> TrainResult:
    """Train on ``train_mask`` interactions, early-stop on ``val_mask``; see the module docstring.
    ``vector_weights``: the ``[interactions] vector_weights`` setting (the user-vector recipe's
    type weights, saved with the version).

    With ``val_mask=None`` (the refit on all data) it runs exactly ``cfg.epochs`` epochs.
    ``start``: the learned parameters to start from instead of a random initialisation (a model
    of the same snapshot and config fit on part of these interactions: its neighbourhoods and
    seen items are rebuilt from ``train_mask``), fit for ``start_epoch`` epochs (the
    hard-negative curriculum goes on from there)."""
    cfg = cfg or GNNConfig()
    t0 = time.perf_counter()
    seed_everything(seed)
    threads = choose_threads(cfg.threads)
    dev = device()
    timings: dict[str, float] = {"threads": threads}
    model = build_model(snap, train_mask, cfg, seed, timings).to(dev)
    if start is not None:
        learned = {k for k, _ in model.named_parameters()}
        model.load_state_dict({k: v for k, v in start.items() if k in learned}, strict=False)
    params = user_params(cfg, vector_weights)
    sparse_weight = model.ids.weight if model.ids is not None and model.ids.sparse else None
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(
        [p for p in model.parameters() if p is not sparse_weight], lr=cfg.lr, weight_decay=cfg.weight_decay)]
    if sparse_weight is not None:  # sampled softmax on a large catalogue: Adam on the batch's id rows only (lazy, no weight decay)
        opts.append(torch.optim.SparseAdam([sparse_weight], lr=cfg.lr))
    lines = _timelines(snap, train_mask)
    eligible = [u for u, tl in enumerate(lines) if len(tl) >= 3]
    lens = np.array([len(tl) for tl in lines], dtype=np.int64)
    starts = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
    flat = np.concatenate(lines) if lines else np.zeros(0, np.int64)  # every timeline, user after user
    rng = np.random.default_rng(seed)
    n_items = snap.num_items
    full = n_items <= FULL_SOFTMAX_MAX_ITEMS
    seen_items = torch.nonzero(model.seen).flatten()
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    history: list[dict[str, float]] = []
    bad_epochs = 0
    examples = 0
    timings["setup_s"] = time.perf_counter() - t0
    bar = tqdm(range(1, cfg.epochs + 1), desc="train GNN", unit="epoch", disable=not progress)
    for epoch in bar:
        t_epoch = time.perf_counter()
        model.train()
        order = rng.permutation(np.repeat(eligible, cfg.examples_per_user))
        losses = []
        n_hard = min(start_epoch + epoch - 1, cfg.hard_negatives_max)
        for s in range(0, len(order), cfg.batch_users):
            batch = order[s:s + cfg.batch_users]
            B = len(batch)
            hist, h_owner, tgt, t_owner, t_now = examples_of(flat, starts[batch], lens[batch], rng, cfg)
            w = interaction_weights(snap.kind[hist], snap.value[hist], snap.ts[hist], snap.ts[t_now][h_owner], params)
            hi = torch.from_numpy(snap.item[hist]).to(dev)
            hw = torch.from_numpy(w).to(dev)
            ho = torch.from_numpy(h_owner).to(dev)
            ti = torch.from_numpy(snap.item[tgt]).to(dev)
            to = torch.from_numpy(t_owner).to(dev)
            if full:
                # Only items seen in training: an item nobody interacted with is not a known
                # negative, and pushing it away from every user would undo its content embedding.
                cand = seen_items
            else:  # sampled softmax: the batch's items plus uniform negatives
                neg = seen_items[torch.from_numpy(rng.integers(0, len(seen_items), size=4096)).to(dev)]
                cand = torch.unique(torch.cat([hi, ti, neg]))
            emb = model.embed(cand)
            pos_of = torch.full((n_items,), -1, dtype=torch.long, device=dev)
            pos_of[cand] = torch.arange(len(cand), device=dev)
            q = pool(emb, pos_of[hi], hw, ho, B)
            scores = q @ emb.T  # [B, candidates]: the softmax logits and every max-margin score
            logits = scores / cfg.temperature
            logits = logits.index_put((ho, pos_of[hi]), torch.tensor(-1e9, device=dev))  # never predict the history
            logp = F.log_softmax(logits, dim=-1)
            # A target already in the history (a repeat) is masked, as in evaluation: not a softmax positive.
            fresh = logits[to, pos_of[ti]] > -1e8
            loss = -logp[to, pos_of[ti]][fresh].sum() / fresh.sum().clamp_min(1)
            # Max-margin with easy and (curriculum) hard negatives.
            user_scores = scores[to]  # [targets, candidates]
            pos_s = user_scores.gather(1, pos_of[ti].unsqueeze(1)).squeeze(1)
            easy = torch.from_numpy(rng.integers(0, len(cand), size=(len(ti), cfg.easy_negatives))).to(dev)
            negs = [easy]
            if n_hard > 0:
                lo, hi_r = cfg.hard_negative_ranks
                with torch.no_grad():
                    ranked = torch.topk(logits, min(hi_r, len(cand)), dim=-1).indices[:, lo:]
                pick = torch.from_numpy(rng.integers(0, ranked.shape[1], size=(len(ti), n_hard))).to(dev)
                negs.append(ranked[to].gather(1, pick))
            neg_idx = torch.cat(negs, dim=1)
            neg_s = user_scores.gather(1, neg_idx)  # gathered scores, not gathered [targets, negatives, dim] vectors
            is_pos = (neg_idx == pos_of[ti].unsqueeze(1))
            mm = F.relu(cfg.margin - pos_s.unsqueeze(1) + neg_s).masked_fill(is_pos, 0.0).mean()
            loss = loss + cfg.margin_weight * mm
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
            losses.append(float(loss.detach()))
            examples += B
        model.eval()
        t_val = time.perf_counter()
        if val_mask is None:
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), "hard_negatives": n_hard,
                            "train_seconds": t_val - t_epoch})
            best = (float("nan"), epoch, model.state_dict())
            continue
        val = validate(model, snap, train_mask, val_mask, params)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_ndcg@10": val["ndcg@10"],
                        "val_recall@100": val["recall@100"], "hard_negatives": n_hard,
                        "train_seconds": t_val - t_epoch, "val_seconds": time.perf_counter() - t_val})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_ndcg=f"{val['ndcg@10']:.4f}")
        if val["ndcg@10"] > best[0]:
            best = (val["ndcg@10"], epoch, copy.deepcopy(model.state_dict()))
            bad_epochs = 0
            if checkpoint_dir is not None:
                checkpoint_dir.mkdir(parents=True, exist_ok=True)
                torch.save(best[2], checkpoint_dir / "best.pt")
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                break
    t_final = time.perf_counter()
    model.load_state_dict(best[2])
    model.eval()
    item_emb = model.embed_all()
    params = tune_prior(item_emb, snap, train_mask, val_mask, params, fixed=prior_weight)
    timings["final_s"] = time.perf_counter() - t_final  # embed every item, tune the prior
    return TrainResult(model=model, item_emb=item_emb, history=history, best_epoch=best[1],
                       best_val_ndcg=best[0], seconds=time.perf_counter() - t0, seed=seed, config=cfg,
                       user_params=params, features=model.features, examples=examples, extra={"timings": timings})
