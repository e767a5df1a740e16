"""The snapshot as a PyG :class:`~torch_geometric.data.HeteroData` graph.

Node types: ``user``, ``item``, ``tag``, ``category``, ``entity`` (the KG entities linked to
items). Edge types: one per interaction kind, ``("user", "rated", "item")``, ``("user",
"viewed", "item")``, … (with ``value`` and ``ts`` per edge: the rating or dwell, epoch seconds),
and the content edges ``("item", "has_tag", "tag")``, ``("item", "in_category", "category")``,
``("item", "links", "entity")``. Only the interactions of ``mask`` are included (a training split
must not see its test edges); the content edges are always complete.

Who reads it: :func:`gnn.train.build_model` (the random walks follow the positive
user→item edges), :mod:`gnn.lightgcn` (its bipartite propagation graph) and ``graphrec stats
--graph`` (:mod:`gnn.graphstats`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphrec.core.snapshot import KINDS, Snapshot

#: Interaction kinds that say "the user wanted this item" (SKIPPED does not).
POSITIVE_KINDS: tuple[str, ...] = ("RATED", "VIEWED", "CLICKED", "PURCHASED")


def relation(kind: str) -> tuple[str, str, str]:
    return ("user", kind.lower(), "item")


def _content_edges(snap: Snapshot, attr: str) -> tuple[list[str], torch.Tensor]:
    names: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    for i, it in enumerate(snap.items):
        for v in getattr(it, attr):
            src.append(i)
            dst.append(names.setdefault(v, len(names)))
    return list(names), torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)


def to_hetero_data(snap: Snapshot, mask: np.ndarray | None = None) -> HeteroData:
    """The graph of ``snap`` with the interactions of ``mask`` (default: all)."""
    m = np.ones(snap.num_interactions, dtype=bool) if mask is None else mask
    data = HeteroData()
    data["user"].num_nodes = snap.num_users
    data["item"].num_nodes = snap.num_items
    data["item"].available = torch.tensor([it.available for it in snap.items], dtype=torch.bool)
    for code, kind in enumerate(KINDS):
        sel = m & (snap.kind == code)
        if not sel.any():
            continue
        store = data[relation(kind)]
        store.edge_index = torch.from_numpy(np.stack([snap.user[sel], snap.item[sel]])).long()
        store.value = torch.from_numpy(snap.value[sel].astype(np.float32))
        store.ts = torch.from_numpy(snap.ts[sel].astype(np.float64))
    for node, rel, attr in (("tag", "has_tag", "tags"), ("category", "in_category", "categories"),
                            ("entity", "links", "entities")):
        names, edge_index = _content_edges(snap, attr)
        data[node].num_nodes = len(names)
        data[node].name = names
        data["item", rel, node].edge_index = edge_index
    return data


def positive_edges(data: HeteroData) -> torch.Tensor:
    """``[2, E]`` (user, item) of every positive interaction kind, in edge-type order."""
    parts = [data[relation(k)].edge_index for k in POSITIVE_KINDS if relation(k) in data.edge_types]
    return torch.cat(parts, dim=1) if parts else torch.zeros(2, 0, dtype=torch.long)
