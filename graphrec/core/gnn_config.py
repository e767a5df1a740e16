"""GNN hyperparameters. One seed (``Settings.seed``) drives every random choice and is recorded
with each model version."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from graphrec.core.tuning import tuning


class LightGCNConfig(BaseModel):
    """LightGCN (:mod:`gnn.lightgcn`), trained beside the PinSage GNN on the same split; its
    embedding size is ``gnn.dim`` (one vector index dimension whichever model is served)."""

    enabled: bool = True  # train and evaluate it in every retraining (needed for model = "lightgcn"/"auto")
    layers: int = tuning(3)  # propagation layers
    epochs: int = tuning(100)
    patience: int = tuning(4)  # early stopping: validations without improvement
    eval_every: int = tuning(5)  # validate every this many epochs
    refine: float = tuning(0.25, ge=0.0, le=1.0)  # as gnn.refine, for LightGCN's fits after its early stopping
    lr: float = tuning(0.05)
    batch: int = tuning(4096)  # BPR triples per step (the whole graph is propagated once per step)
    reg: float = tuning(1e-4)  # L2 on the batch's layer-0 embeddings
    pop_negatives: float = tuning(0.5)  # share of negatives drawn by popularity^0.75 (the rest uniform)


class HybridConfig(BaseModel):
    """The served hybrid (:mod:`gnn.itemitem`, :mod:`graphrec.core.recs.hybrid`): the GNN's cosine
    plus EASE item-item, transition and trend-popularity scores, weights chosen on validation."""

    enabled: bool = True  # fit, evaluate and serve it (catalogues of at most max_items items)
    max_items: int = 5000  # its item-item matrices are dense: n_items^2 floats each


class GNNConfig(BaseModel):
    model: Literal["pinsage", "lightgcn", "auto"] = "pinsage"  # served embeddings; auto: the better on validation
    dim: int = 64  # output embedding size
    hidden: int = tuning(128)  # hidden size of the convolutions
    layers: int = 2  # PinSage convolutions (K hops over importance neighbourhoods)
    neighbors: int = tuning(20)  # T: top-T neighbours by normalised visit count
    walks_per_item: int = tuning(200)  # random walks started from every item
    walk_length: int = tuning(3)  # item→user→item hops per walk
    restart: float = tuning(0.5)  # restart probability after each hop
    id_embedding: bool = tuning(True)  # a learned id vector beside content features (items seen in training)
    id_dropout: float = tuning(0.3)  # drop whole id vectors in training so content alone also works
    title_buckets: int = tuning(256)  # hashed bag-of-words of titles/descriptions
    max_entities: int = tuning(3000)  # most frequent KG entities kept as features
    max_tags: int = tuning(3000)
    epochs: int = 80
    patience: int = 10  # early stopping on validation NDCG@10
    # The fits after early stopping that may start from its model (not seeing what its split
    # holds out): from it, for this share of its epochs (at least 1); 0: from scratch, all of them.
    refine: float = tuning(0.25, ge=0.0, le=1.0)
    lr: float = tuning(0.003)
    weight_decay: float = tuning(1e-6)
    batch_users: int = tuning(256)
    examples_per_user: int = tuning(4)  # (history → future) cut points sampled per user per epoch
    targets_per_example: int = tuning(10)
    temperature: float = tuning(0.07)  # sampled-softmax temperature
    margin: float = tuning(0.1)  # max-margin loss margin
    margin_weight: float = tuning(1.0)
    easy_negatives: int = tuning(64)
    hard_negatives_max: int = tuning(16)  # curriculum: epoch e uses min(e, max) hard negatives
    hard_negative_ranks: tuple[int, int] = tuning((20, 200))  # hard negatives come from these ranks
    half_life_days: float = tuning(120.0)  # time decay of the user's history when pooling
    max_history: int = tuning(50)  # the most recent interactions pooled into a user vector (training, evaluation, serving)
    rating_center: float = tuning(0.0)  # rating weight = (value - centre) / (5 - centre)
    validation_fraction: float = tuning(0.1)
    dropout: float = tuning(0.1)
    threads: int = 0  # torch threads in training; 0: the cores free when training starts (gnn.threads)
    lightgcn: LightGCNConfig = Field(default_factory=LightGCNConfig)
    hybrid: HybridConfig = Field(default_factory=HybridConfig)
