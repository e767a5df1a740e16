"""Statistics of the interaction graph for ``graphrec stats --graph``, computed with networkx.

The graph is the user–item bipartite graph of the positive interactions (the snapshot's
:class:`HeteroData`, :func:`gnn.hetero.positive_edges`), as an undirected
:class:`networkx.Graph` with nodes ``("user", k)`` and ``("item", k)``. Reported: node and edge
counts, degree distributions of users and items (quantiles), connected components (count, the
largest one's share of nodes, how many users sit outside it), cold items (no interaction: the GNN
embeds them from content alone) and a log-log plot of both degree distributions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from gnn.hetero import positive_edges, to_hetero_data
from graphrec.core.snapshot import Snapshot


def interaction_graph(snap: Snapshot) -> nx.Graph:
    """Every user and item as a node (cold ones too), one edge per positive (user, item) pair."""
    ui = positive_edges(to_hetero_data(snap)).numpy()
    g = nx.Graph()
    g.add_nodes_from((("user", u) for u in range(snap.num_users)), kind="user")
    g.add_nodes_from((("item", i) for i in range(snap.num_items)), kind="item")
    g.add_edges_from(zip((("user", int(u)) for u in ui[0]), (("item", int(i)) for i in ui[1]), strict=True))
    return g


def _quantiles(d: np.ndarray) -> dict[str, float]:
    if len(d) == 0:
        return {}
    q = np.percentile(d, [50, 90, 99])
    return {"min": float(d.min()), "median": float(q[0]), "p90": float(q[1]), "p99": float(q[2]), "max": float(d.max()),
            "mean": float(d.mean())}


def graph_stats(snap: Snapshot, g: nx.Graph | None = None) -> dict[str, Any]:
    g = interaction_graph(snap) if g is None else g
    deg_u = np.array([g.degree(("user", u)) for u in range(snap.num_users)], dtype=np.int64)
    deg_i = np.array([g.degree(("item", i)) for i in range(snap.num_items)], dtype=np.int64)
    comps = sorted((len(c) for c in nx.connected_components(g)), reverse=True)
    largest = max(nx.connected_components(g), key=len) if comps else set()
    return {
        "users": snap.num_users, "items": snap.num_items, "edges": g.number_of_edges(),
        "density": float(g.number_of_edges() / max(1, snap.num_users * snap.num_items)),
        "user_degree": _quantiles(deg_u), "item_degree": _quantiles(deg_i),
        "components": len(comps), "largest_component_share": float(comps[0] / g.number_of_nodes()) if comps else 0.0,
        "users_outside_largest": int(sum(1 for n in g.nodes if n[0] == "user" and n not in largest)),
        "cold_items": int((deg_i == 0).sum()), "cold_item_share": float((deg_i == 0).mean()) if len(deg_i) else 0.0,
        "users_without_interactions": int((deg_u == 0).sum()),
        "degree_histogram": {"user": np.bincount(deg_u).tolist(), "item": np.bincount(deg_i).tolist()},
    }


def plot_degrees(stats: dict[str, Any], path: Path) -> Path:
    """Log-log degree distributions of users and items (how many nodes have each degree)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, colour in (("user", "tab:blue"), ("item", "tab:orange")):
        hist = np.asarray(stats["degree_histogram"][kind])
        k = np.nonzero(hist)[0]
        k = k[k > 0]
        ax.loglog(k, hist[k], "o", ms=3, color=colour, label=f"{kind}s (median {stats[f'{kind}_degree'].get('median', 0):.0f})")
    ax.set_xlabel("degree (positive interactions)")
    ax.set_ylabel("nodes")
    ax.set_title(f"degree distributions; {stats['cold_items']} cold items, {stats['components']} components")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
