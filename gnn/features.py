"""Item input features from content, as bags of (feature index, weight) for an EmbeddingBag.

Per item: one-hot categories; tags and KG entities (the ``max_*`` most frequent with at least two
items, others dropped); the year (normalised, plus a decade one-hot); a hashed bag of words of the
title and description; log popularity and the share of recent interactions from the TRAIN
interactions only. An item with no interactions still has its content features, which is what
makes the model inductive.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from graphrec.core.gnn_config import GNNConfig
from graphrec.core.snapshot import Snapshot

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class ItemFeatures:
    """CSR-like bags: item ``i`` has features ``index[offsets[i]:offsets[i+1]]`` with ``weight``."""

    index: np.ndarray  # int64
    weight: np.ndarray  # float32
    offsets: np.ndarray  # int64, length n_items + 1
    names: list[str]

    @property
    def num_features(self) -> int:
        return len(self.names)

    def rows(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bags of ``items`` (index, weight, offsets) for ``nn.EmbeddingBag``."""
        starts, ends = self.offsets[items], self.offsets[items + 1]
        lens = ends - starts
        off = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
        idx = np.arange(int(lens.sum())) + np.repeat(starts - off, lens)  # the bags' ranges, concatenated
        return self.index[idx], self.weight[idx], off


def _most_frequent(df: Counter[str], k: int) -> set[str]:
    """The ``k`` most frequent names with at least two items; ties by name, so the choice does not
    depend on set iteration order (string hashing differs from process to process)."""
    return {name for name, n in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:k] if n >= 2}


def build_features(snap: Snapshot, train_mask: np.ndarray, cfg: GNNConfig) -> ItemFeatures:
    names: list[str] = []
    vocab: dict[str, int] = {}

    def fid(name: str) -> int:
        k = vocab.get(name)
        if k is None:
            k = vocab[name] = len(names)
            names.append(name)
        return k

    cat_df = Counter(c for it in snap.items for c in set(it.categories))
    tag_df = Counter(t for it in snap.items for t in set(it.tags))
    ent_df = Counter(e for it in snap.items for e in set(it.entities))
    tags_kept = _most_frequent(tag_df, cfg.max_tags)
    ents_kept = _most_frequent(ent_df, cfg.max_entities)
    for c in sorted(cat_df):
        fid(f"cat:{c}")
    for b in range(cfg.title_buckets):
        fid(f"word#{b}")
    for name in ("year", "year_missing", "log_pop", "recent_share", "bias"):
        fid(name)
    decades = sorted({(it.year // 10) * 10 for it in snap.items if it.year})
    for d in decades:
        fid(f"decade:{d}")
    for t in sorted(tags_kept):
        fid(f"tag:{t}")
    for e in sorted(ents_kept):
        fid(f"ent:{e}")

    tr_items = snap.item[train_mask]
    counts = np.bincount(tr_items, minlength=snap.num_items).astype(np.float64)
    t_end = float(snap.ts[train_mask].max()) if train_mask.any() else 0.0
    recent = np.bincount(tr_items, weights=(snap.ts[train_mask] >= t_end - 30 * 86400).astype(np.float64),
                         minlength=snap.num_items)
    log_pop = np.log1p(counts) / max(1.0, np.log1p(counts.max()))
    share = np.divide(recent, counts, out=np.zeros_like(recent), where=counts > 0)
    years = [it.year for it in snap.items if it.year]
    y_mu, y_sd = (float(np.mean(years)), float(np.std(years)) or 1.0) if years else (0.0, 1.0)

    index: list[int] = []
    weight: list[float] = []
    offsets = [0]
    for i, it in enumerate(snap.items):
        bag: dict[int, float] = {fid("bias"): 1.0}
        cats = [c for c in it.categories if f"cat:{c}" in vocab]
        for c in cats:
            bag[vocab[f"cat:{c}"]] = 1.0 / np.sqrt(len(cats))
        words = _WORD.findall(f"{it.title or ''}".lower())
        for w in words:
            b = vocab[f"word#{zlib.crc32(w.encode()) % cfg.title_buckets}"]
            bag[b] = bag.get(b, 0.0) + 1.0 / np.sqrt(len(words))
        if it.year:
            bag[vocab["year"]] = (it.year - y_mu) / y_sd
            bag[vocab[f"decade:{(it.year // 10) * 10}"]] = 1.0
        else:
            bag[vocab["year_missing"]] = 1.0
        bag[vocab["log_pop"]] = float(log_pop[i])
        bag[vocab["recent_share"]] = float(share[i])
        tg = [t for t in it.tags if t in tags_kept]
        for t in tg:
            bag[vocab[f"tag:{t}"]] = 1.0 / np.sqrt(len(tg))
        en = [e for e in it.entities if e in ents_kept]
        for e in en:
            bag[vocab[f"ent:{e}"]] = 1.0 / np.sqrt(len(en))
        for k, v in bag.items():
            if v != 0.0:
                index.append(k)
                weight.append(v)
        offsets.append(len(index))
    return ItemFeatures(np.array(index, np.int64), np.array(weight, np.float32), np.array(offsets, np.int64), names)
