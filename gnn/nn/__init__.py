"""Layers of the GNN, one per file."""

from gnn.nn.pinsage_conv import PinSageConv

__all__ = ["PinSageConv"]
