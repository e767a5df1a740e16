r"""DCN-v2 ranker: explicit feature crosses plus a deep tower, scored in one batched pass.

From Wang et al., *DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale
Learning to Rank Systems* (WWW 2021, https://arxiv.org/abs/2008.13535). Each cross layer is

.. math::
    \mathbf{x}_{l+1} = \mathbf{x}_0 \odot (\mathbf{W}_l \mathbf{x}_l + \mathbf{b}_l) + \mathbf{x}_l

and the ranker stacks ``cross_layers`` of them in parallel with an MLP over :math:`\mathbf{x}_0`;
the two outputs are concatenated and projected to one logit.

Args:
    in_features (int): number of input features.
    cross_layers (int, optional): cross layers. (default: :obj:`2`)
    hidden (int, optional): width of the deep tower. (default: :obj:`64`)
    dropout (float, optional): dropout in the deep tower. (default: :obj:`0.1`)

Shapes:
    - **input:** :math:`(N, F)` features of N candidates
    - **output:** :math:`(N,)` logits
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn


class CrossLayer(nn.Module):
    """One DCN-v2 cross: ``x0 * (W x + b) + x``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.linear.weight, gain=0.1)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        return x0 * self.linear(x) + x


class DCNv2(nn.Module):
    def __init__(self, in_features: int, cross_layers: int = 2, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_features = in_features
        self.cross_layers = cross_layers
        self.hidden = hidden
        self.dropout = dropout
        self.crosses = nn.ModuleList(CrossLayer(in_features) for _ in range(cross_layers))
        self.deep = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(in_features + hidden, 1)

    def reset_parameters(self) -> None:
        for c in self.crosses:
            cast(CrossLayer, c).reset_parameters()  # nn.ModuleList types its items as Module
        for m in self.deep:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        self.out.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        xc = x
        for c in self.crosses:
            xc = c(x, xc)
        return self.out(torch.cat([xc, self.deep(x)], dim=-1)).squeeze(-1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_features}, cross_layers={self.cross_layers}, "
                f"hidden={self.hidden}, dropout={self.dropout})")
