"""The paths behind a recommendation as a networkx graph, for notebooks and graph tools.

:func:`explanation_graph` reads ``cypher/explore/explanation_paths.cypher``: the collaborative
paths (the user → an item they interacted with ← another user → the item) and the content paths
(the user → an item they interacted with → a category, tag or KG entity ← the item). Nodes are
keyed ``"<Label>:<id or name>"`` with ``label`` and ``name`` (titles for items); edges carry the
relationship ``type``, the path ``kind`` and, for interactions, ``ts`` and ``value``.
:func:`write_graphml` writes it for Gephi, yEd or Cytoscape (``graphrec explain --graphml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from graphrec.core.errors import NotFound


def explanation_graph(store: Any, user_id: str, item_id: str, limit: int = 25) -> nx.MultiDiGraph:
    """The explanation subgraph between ``user_id`` and ``item_id`` (at most ``limit`` paths of each
    kind). Unknown user or item: :class:`NotFound`. A known pair with no path: a graph with the two
    nodes and no edges (the recommendation came from the embeddings or popularity)."""
    found = store.read("explore/user_item_exist", user_id=user_id, item_id=item_id)[0]
    if not found["user"]:
        raise NotFound("user", user_id)
    if not found["item"]:
        raise NotFound("item", item_id)
    g = nx.MultiDiGraph(user=user_id, item=item_id)
    g.add_node(f"User:{user_id}", label="User", name=user_id)
    g.add_node(f"Item:{item_id}", label="Item", name=found["title"] or item_id)
    for row in store.read("explore/explanation_paths", user_id=user_id, item_id=item_id, limit=int(limit)):
        for n in row["nodes"]:
            g.add_node(n["key"], label=n["label"], name=str(n["name"]))
        for r in row["rels"]:
            attrs = {"type": r["type"], "kind": row["kind"]}
            attrs.update({k: r[k] for k in ("ts", "value") if r.get(k) is not None})
            # One edge per relationship, however many paths share it.
            if not any(d.get("type") == r["type"] for d in g.get_edge_data(r["source"], r["target"], default={}).values()):
                g.add_edge(r["source"], r["target"], **attrs)
    return g


def paths_by_kind(g: nx.MultiDiGraph) -> dict[str, int]:
    """How many edges each kind of path contributed."""
    out: dict[str, int] = {}
    for _, _, kind in g.edges(data="kind"):
        out[kind] = out.get(kind, 0) + 1
    return out


def write_graphml(g: nx.MultiDiGraph, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(g, path)
    return path


__all__ = ["explanation_graph", "paths_by_kind", "write_graphml"]
