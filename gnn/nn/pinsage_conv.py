r"""The importance-pooling convolution of PinSage, as a PyG :class:`MessagePassing` layer."""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptPairTensor
from torch_geometric.utils import is_sparse, scatter, spmm

from gnn.nn.sparse import spmm_sum


class PinSageConv(MessagePassing):
    r"""The importance-pooling convolution from the `"Graph Convolutional Neural Networks for
    Web-Scale Recommender Systems" <https://arxiv.org/abs/1806.01973>`_ paper (Algorithm 1,
    CONVOLVE)

    .. math::
        \mathbf{n}_i &= \sum_{j \in \mathcal{N}(i)} \alpha_{j,i} \,
            \mathrm{ReLU}(\mathbf{Q}\mathbf{x}_j + \mathbf{q}),
        \qquad \alpha_{j,i} = \frac{e_{j,i}}{\sum_{k \in \mathcal{N}(i)} e_{k,i}} \\
        \mathbf{x}^{\prime}_i &= \mathrm{ReLU}\left(\mathbf{W} \cdot
            \mathrm{CONCAT}(\mathbf{x}_i, \mathbf{n}_i) + \mathbf{w}\right),
        \qquad \mathbf{x}^{\prime}_i \leftarrow \mathbf{x}^{\prime}_i / \lVert \mathbf{x}^{\prime}_i \rVert_2

    where :math:`\mathcal{N}(i)` is the top-T random-walk neighbourhood of :math:`i` and the edge
    weight :math:`e_{j,i}` is how often walks from :math:`i` visited :math:`j`
    (:func:`gnn.walks.importance_neighbourhoods`). The messages are summed by the aggregation
    module ``aggr`` (default :class:`~torch_geometric.nn.aggr.SumAggregation`); with the weights
    normalised per target this is PinSage's importance-weighted mean :math:`\gamma`. A node
    without incoming edges aggregates a zero vector: it is represented by its own features alone.

    The neighbour transform :math:`\mathrm{ReLU}(\mathbf{Q}\mathbf{x}_j + \mathbf{q})` depends on
    the neighbour only, so it is computed once per source node, not once per edge.

    Args:
        in_channels (int or tuple): Size of each input sample, or :obj:`(source, target)` sizes
            on a bipartite graph.
        out_channels (int): Size of each output sample.
        hidden_channels (int, optional): Size of the transformed neighbour messages.
            (default: :obj:`in_channels` of the source)
        normalize (bool, optional): If set to :obj:`False`, the output is not
            :math:`\ell_2`-normalised. (default: :obj:`True`)
        aggr (str or Aggregation, optional): The aggregation of the weighted messages.
            (default: :obj:`"sum"`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{s}), (|\mathcal{V_t}|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` (source, target),
          edge weights :math:`(|\mathcal{E}|)` (visit counts, any positive scale)
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or
          :math:`(|\mathcal{V}_t|, F_{out})` if bipartite
    """

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, hidden_channels: int | None = None,
                 normalize: bool = True, aggr: Any = "sum", **kwargs: Any) -> None:
        super().__init__(aggr=aggr, **kwargs)
        if isinstance(in_channels, int):
            in_channels = (in_channels, in_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels or in_channels[0]
        self.normalize = normalize
        self.Q = nn.Linear(in_channels[0], self.hidden_channels)
        self.W = nn.Linear(in_channels[1] + self.hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.Q.reset_parameters()
        self.W.reset_parameters()

    def forward(self, x: Tensor | OptPairTensor, edge_index: Adj, edge_weight: Tensor | None = None) -> Tensor:
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        assert x_dst is not None
        h = F.relu(self.Q(x_src))
        alpha: Tensor | None = None
        if is_sparse(edge_index):  # adj_t [N_dst, N_src] (CSR) holding the visit weights
            edge_index = normalized_cached(edge_index)
        else:
            assert edge_weight is not None
            alpha = edge_weight / scatter(edge_weight, edge_index[1], 0, dim_size=x_dst.size(0), reduce="sum")[edge_index[1]]
        n = self.propagate(edge_index, x=(h, x_dst), alpha=alpha)
        out = F.relu(self.W(torch.cat([x_dst, n], dim=-1)))
        return F.normalize(out, dim=-1) if self.normalize else out

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: OptPairTensor) -> Tensor:
        if self.aggr == "sum" and isinstance(adj_t, Tensor) and adj_t.layout == torch.sparse_csr:
            return spmm_sum(adj_t, x[0])  # the transpose for the gradient built once per adjacency
        return spmm(adj_t, x[0], reduce=self.aggr)

    @staticmethod
    def normalized(adj_t: Tensor) -> Tensor:
        """``adj_t`` (sparse CSR) with every row scaled to sum to 1: the importance weights α."""
        crow = adj_t.crow_indices()
        vals = adj_t.values()
        row = torch.repeat_interleave(torch.arange(len(crow) - 1, device=vals.device), crow.diff())
        sums = scatter(vals, row, 0, dim_size=len(crow) - 1, reduce="sum")
        return torch.sparse_csr_tensor(crow, adj_t.col_indices(), vals / sums[row], adj_t.size())

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels[0]}, {self.out_channels}, "
                f"hidden={self.hidden_channels}, aggr={self.aggr})")


#: id(adj_t) -> PinSageConv.normalized(adj_t); an entry leaves when its adjacency is freed.
_NORMALIZED: dict[int, Tensor] = {}


def normalized_cached(adj_t: Tensor) -> Tensor:
    """:meth:`PinSageConv.normalized` of ``adj_t``, computed once per adjacency object (a fit
    embeds the same computation graph at every step, :meth:`gnn.model.PinSage.graph`), so the
    transposed copy the gradient needs (:func:`gnn.nn.sparse.spmm_sum`) is built once too."""
    key = id(adj_t)
    out = _NORMALIZED.get(key)
    if out is None:
        out = PinSageConv.normalized(adj_t)
        _NORMALIZED[key] = out
        weakref.finalize(adj_t, _NORMALIZED.pop, key, None)
    return out
