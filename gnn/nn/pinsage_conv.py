r"""The importance-pooling convolution of PinSage.

From Ying et al., *Graph Convolutional Neural Networks for Web-Scale Recommender Systems*
(KDD 2018, https://arxiv.org/abs/1806.01973), Algorithm 1 (CONVOLVE):

.. math::
    \mathbf{n}_u &= \gamma\left(\left\{ \mathrm{ReLU}(\mathbf{Q}\mathbf{h}_v + \mathbf{q})
        \mid v \in \mathcal{N}(u) \right\}, \boldsymbol{\alpha}\right) \\
    \mathbf{z}_u &= \mathrm{ReLU}\left(\mathbf{W} \cdot
        \mathrm{CONCAT}(\mathbf{h}_u, \mathbf{n}_u) + \mathbf{w}\right) \\
    \mathbf{z}_u &\leftarrow \mathbf{z}_u / \lVert \mathbf{z}_u \rVert_2

where :math:`\mathcal{N}(u)` is the top-T random-walk neighbourhood of :math:`u`,
:math:`\boldsymbol{\alpha}` its normalised visit counts and :math:`\gamma` the
importance-weighted mean. A node without neighbours (all weights 0) aggregates a zero vector,
so it is represented by its own features alone.

Args:
    in_channels (int): size of each input vector.
    out_channels (int): size of each output vector.
    hidden_channels (int, optional): size of the transformed neighbour messages
        (default: :obj:`in_channels`).
    normalize (bool, optional): L2-normalise the output. (default: :obj:`True`)

Shapes:
    - **input:** self features :math:`(B, F_{in})`, neighbour features :math:`(B, T, F_{in})`,
      importance weights :math:`(B, T)`
    - **output:** :math:`(B, F_{out})`

A neighbour's message depends on the neighbour only, so on a batch whose neighbourhoods overlap
(the K-hop sets of :meth:`gnn.model.PinSage.embed`) call :meth:`propagate` with the features
of the :math:`N` distinct nodes and the neighbours as row indices :math:`(B, T)`: each message is
computed once and the neighbourhood features :math:`(B, T, F_{in})` are never materialised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PinSageConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | None = None,
                 normalize: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels or in_channels
        self.normalize = normalize
        self.Q = nn.Linear(in_channels, self.hidden_channels)
        self.W = nn.Linear(in_channels + self.hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.Q.reset_parameters()
        self.W.reset_parameters()

    def forward(self, x_self: Tensor, x_neigh: Tensor, weight: Tensor) -> Tensor:
        return self.update(x_self, self.aggregate(self.message(x_neigh), weight))

    def propagate(self, x: Tensor, index_self: Tensor, index_neigh: Tensor, weight: Tensor) -> Tensor:
        """``forward`` on rows of ``x`` [N, F_in]: ``index_self`` [B], ``index_neigh`` [B, T]."""
        return self.update(x[index_self], self.aggregate(self.message(x), weight, index_neigh))

    def message(self, x_neigh: Tensor) -> Tensor:
        return F.relu(self.Q(x_neigh))

    def aggregate(self, messages: Tensor, weight: Tensor, index: Tensor | None = None) -> Tensor:
        """Importance-weighted mean of ``messages`` [B, T, H], or of rows ``index`` [B, T] of ``messages`` [N, H]."""
        w = weight / weight.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        if index is not None:
            return F.embedding_bag(index, messages, per_sample_weights=w, mode="sum")
        return (messages * w.unsqueeze(-1)).sum(dim=1)

    def update(self, x_self: Tensor, n: Tensor) -> Tensor:
        z = F.relu(self.W(torch.cat([x_self, n], dim=-1)))
        return F.normalize(z, dim=-1) if self.normalize else z

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, hidden={self.hidden_channels})"
