"""The PinSage model: content features (+ an optional id vector) → K importance-pooling
convolutions over random-walk neighbourhoods → a dense layer → L2-normalised item embeddings.

``embed(items)`` builds the computation graph of a batch the PinSage way: the batch, its
neighbours, their neighbours (K hops), each computed once; so training and inference can run on
mini-batches of a 1M-item catalogue. An item with no interactions has no neighbours and no id
vector: its embedding comes from its content alone.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnn.features import ItemFeatures
from gnn.nn import PinSageConv
from graphrec.core.gnn_config import GNNConfig

# Each hop's adjacency is a sparse CSR tensor (gnn.model.PinSage.edges); torch says once per
# process that its CSR support is "beta", which is noise in every training log.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class PinSage(nn.Module):
    """``sparse_ids``: the id embedding yields sparse gradients (for ``torch.optim.SparseAdam``), so
    a training step on a large catalogue touches only the id rows of its batch."""

    # Buffers (registered in __init__), declared for the type checker.
    nbr: Tensor
    nbr_w: Tensor
    seen: Tensor

    def __init__(self, features: ItemFeatures, nbr: np.ndarray, nbr_w: np.ndarray, seen: np.ndarray, cfg: GNNConfig,
                 sparse_ids: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_items = len(features.offsets) - 1
        self.features = features
        self.register_buffer("nbr", torch.from_numpy(np.where(nbr < 0, 0, nbr)).long())
        self.register_buffer("nbr_w", torch.from_numpy(np.where(nbr < 0, 0.0, nbr_w)).float())
        self.register_buffer("seen", torch.from_numpy(seen.astype(bool)))
        self.content = nn.EmbeddingBag(features.num_features, cfg.hidden, mode="sum")
        self.ids = nn.Embedding(self.num_items, cfg.hidden, sparse=sparse_ids) if cfg.id_embedding else None
        dims = [cfg.hidden] * (cfg.layers + 1)
        self.convs = nn.ModuleList(PinSageConv(dims[k], dims[k + 1], cfg.hidden) for k in range(cfg.layers))
        self.out = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.dim))
        self.dropout = nn.Dropout(cfg.dropout)
        #: the computation graph of the last embedded items (see :meth:`graph`)
        self._graph: tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]] | None = None
        self.reset_parameters()

    def _apply(self, fn: Any, recurse: bool = True) -> PinSage:  # .to(), .cuda(), ...: tensors move
        self._graph = None
        return cast(PinSage, super()._apply(fn, recurse))

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:  # the buffers nbr, nbr_w may change
        self._graph = None
        super()._load_from_state_dict(*args, **kwargs)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.content.weight, std=0.05)
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=0.05)
        for c in self.convs:
            cast(PinSageConv, c).reset_parameters()  # nn.ModuleList types its items as Module

    def inputs(self, items: Tensor) -> Tensor:
        idx, w, off = self.features.rows(items.cpu().numpy())
        dev = self.content.weight.device
        h = self.content(torch.from_numpy(idx).to(dev), torch.from_numpy(off).to(dev),
                         per_sample_weights=torch.from_numpy(w).to(dev))
        if self.ids is not None:
            idv = self.ids(items) * self.seen[items].unsqueeze(-1)
            if self.training and self.cfg.id_dropout > 0:
                keep = (torch.rand(len(items), 1, device=dev) >= self.cfg.id_dropout).float()
                idv = idv * keep
            h = h + idv
        return self.dropout(h)

    def embed(self, items: Tensor) -> Tensor:
        """Embeddings of ``items`` [B] → [B, dim], over their K-hop importance neighbourhoods.

        Hop k's targets are the nodes of hop k+1's computation graph plus their neighbours; each
        convolution runs on the bipartite graph (neighbours of the wider set → the narrower set),
        so every node of the K-hop set is computed once per layer. The computation graph of the
        last ``items`` is kept (:meth:`graph`): training embeds the same candidate set at every
        step, whose K-hop sets and adjacencies are then built once per fit."""
        nodes, layers = self.graph(items)
        h = self.inputs(nodes)
        for conv, (dst_pos, adj) in zip(self.convs, layers, strict=True):
            h = conv((h, h[dst_pos]), adj)
        z = self.out(h)  # the last targets are ``items`` themselves
        return F.normalize(z, dim=-1)

    def graph(self, items: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The K-hop computation graph of ``items``: the widest node set (whose inputs are
        embedded) and, per convolution in order, the targets' positions in its source set and the
        adjacency ``adj_t`` of :meth:`edges`. Cached for the last ``items`` given (the
        neighbourhoods are fixed for the model's life; loading a state or moving the model clears it)."""
        cached = self._graph
        if cached is not None and cached[0].shape == items.shape and cached[0].device == items.device \
                and torch.equal(cached[0], items):
            return cached[1], cached[2]
        sets = [items]
        for _ in range(self.cfg.layers):
            prev = sets[-1]
            sets.append(torch.unique(torch.cat([prev, self.nbr[prev].flatten()])))
        pos = torch.full((self.num_items,), -1, dtype=torch.long, device=items.device)
        layers = []
        for k in range(self.cfg.layers):
            src, dst = sets[self.cfg.layers - k], sets[self.cfg.layers - 1 - k]
            pos[src] = torch.arange(len(src), device=items.device)
            layers.append((pos[dst], self.edges(dst, pos, len(src))))
        self._graph = (items.clone(), sets[-1], layers)
        return sets[-1], layers

    def edges(self, dst: Tensor, pos: Tensor, n_src: int) -> Tensor:
        """The importance edges into ``dst`` [B] as a sparse CSR adjacency ``adj_t``
        [B, N_src] of visit weights: row b holds the random-walk neighbours of ``dst[b]`` (as
        positions ``pos`` in the wider node set); padding (no neighbour) has no entry."""
        w = self.nbr_w[dst]
        keep = w > 0
        crow = torch.zeros(len(dst) + 1, dtype=torch.long, device=dst.device)
        crow[1:] = keep.sum(dim=1).cumsum(0)
        return torch.sparse_csr_tensor(crow, pos[self.nbr[dst][keep]], w[keep], (len(dst), n_src))

    @torch.no_grad()
    def embed_all(self, batch: int = 8192) -> np.ndarray:
        was = self.training
        self.eval()
        dev = self.content.weight.device
        out = [self.embed(torch.arange(s, min(self.num_items, s + batch), device=dev)).cpu().numpy()
               for s in range(0, self.num_items, batch)]
        self.train(was)
        return np.concatenate(out).astype(np.float32)
