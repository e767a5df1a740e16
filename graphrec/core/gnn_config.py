"""GNN hyperparameters. One seed (``Settings.seed``) drives every random choice and is recorded
with each model version."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LightGCNConfig(BaseModel):
    """LightGCN (:mod:`gnn.lightgcn`), trained beside the PinSage GNN on the same split; its
    embedding size is ``gnn.dim`` (one vector index dimension whichever model is served)."""

    enabled: bool = True  # train and evaluate it in every retraining (needed for model = "lightgcn"/"auto")
    layers: int = 3  # propagation layers
    epochs: int = 100
    patience: int = 4  # early stopping: validations without improvement
    eval_every: int = 5  # validate every this many epochs
    lr: float = 0.05
    batch: int = 4096  # BPR triples per step (the whole graph is propagated once per step)
    reg: float = 1e-4  # L2 on the batch's layer-0 embeddings
    pop_negatives: float = 0.5  # share of negatives drawn by popularity^0.75 (the rest uniform)


class GNNConfig(BaseModel):
    model: Literal["pinsage", "lightgcn", "auto"] = "pinsage"  # served embeddings; auto: the better on validation
    dim: int = 64  # output embedding size
    hidden: int = 128  # hidden size of the convolutions
    layers: int = 2  # PinSage convolutions (K hops over importance neighbourhoods)
    neighbors: int = 20  # T: top-T neighbours by normalised visit count
    walks_per_item: int = 200  # random walks started from every item
    walk_length: int = 3  # item→user→item hops per walk
    restart: float = 0.5  # restart probability after each hop
    id_embedding: bool = True  # a learned id vector beside content features (items seen in training)
    id_dropout: float = 0.3  # drop whole id vectors in training so content alone also works
    title_buckets: int = 256  # hashed bag-of-words of titles/descriptions
    max_entities: int = 3000  # most frequent KG entities kept as features
    max_tags: int = 3000
    epochs: int = 80
    patience: int = 10  # early stopping on validation NDCG@10
    lr: float = 0.003
    weight_decay: float = 1e-6
    batch_users: int = 256
    examples_per_user: int = 4  # (history → future) cut points sampled per user per epoch
    targets_per_example: int = 10
    temperature: float = 0.07  # sampled-softmax temperature
    margin: float = 0.1  # max-margin loss margin
    margin_weight: float = 1.0
    easy_negatives: int = 64
    hard_negatives_max: int = 16  # curriculum: epoch e uses min(e, max) hard negatives
    hard_negative_ranks: tuple[int, int] = (20, 200)  # hard negatives come from these ranks
    half_life_days: float = 120.0  # time decay of the user's history when pooling
    max_history: int = 50  # the most recent interactions pooled into a user vector (training, evaluation, serving)
    rating_center: float = 0.0  # rating weight = (value - centre) / (5 - centre)
    validation_fraction: float = 0.1
    dropout: float = 0.1
    threads: int = 0  # torch threads in training; 0: the cores free when training starts (gnn.threads)
    lightgcn: LightGCNConfig = Field(default_factory=LightGCNConfig)
