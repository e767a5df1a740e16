"""``adj @ x`` for a sparse CSR ``adj`` that stays fixed over many training steps.

The gradient of ``torch.sparse.mm(adj, x)`` with respect to ``x`` is ``adjᵀ @ grad``; autograd
builds ``adjᵀ`` as a CSR tensor (a sort of every edge) at every backward pass. LightGCN
propagates the same normalised adjacency three times per step and PinSage the same computation
graph at every step of a fit, so :func:`spmm_sum` builds the transpose once per adjacency
(the same conversion autograd makes, so the gradient is the same) and keeps it while the
adjacency lives.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor

#: id(adj) -> its transpose as CSR; an entry leaves when its adjacency is freed.
_TRANSPOSED: dict[int, Tensor] = {}


def transposed(adj: Tensor) -> Tensor:
    """``adj.t()`` as a sparse CSR tensor, built once per ``adj`` object."""
    key = id(adj)
    t = _TRANSPOSED.get(key)
    if t is None:
        t = adj.t().to_sparse_csr()
        _TRANSPOSED[key] = t
        weakref.finalize(adj, _TRANSPOSED.pop, key, None)
    return t


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, torch.sparse.mm(transposed(ctx.adj), grad)


def spmm_sum(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` (``adj``: sparse CSR [N, M], no gradient; ``x``: dense [M, d]) → [N, d]."""
    if torch.is_grad_enabled() and x.requires_grad and not adj.requires_grad:
        return _SpMM.apply(adj, x)
    return torch.sparse.mm(adj, x)
