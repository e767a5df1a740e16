"""networkx as an oracle and a tool: random-walk neighbourhoods against personalised PageRank;
the graph statistics of ``graphrec stats --graph``."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from gnn.graphstats import graph_stats, interaction_graph, plot_degrees
from gnn.walks import importance_neighbourhoods
from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot

#   u0: 0 1 2    u1: 0 1    u2: 1 2 5    u3: 0 3    u4: 4    u5: 3 5
EDGES = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 2), (2, 5), (3, 0), (3, 3), (4, 4), (5, 3), (5, 5)]


def ppr_visits(edges: list[tuple[int, int]], start: int, restart: float) -> dict[int, float]:
    """The long-run visit distribution of :func:`importance_neighbourhoods`' walks from ``start``,
    from networkx's personalised PageRank on the item→item transition graph.

    One hop item → user → item has transition matrix P (uniform at each side). The walk records
    the item it reaches, then restarts with probability r, so its recorded item is distributed as
    x = π·P where π is the personalised PageRank with damping 1 - r (the distribution of the
    node a hop starts from). Visits to ``start`` itself are not recorded."""
    b = nx.Graph()
    b.add_edges_from((("u", u), ("i", i)) for u, i in edges)
    p = nx.DiGraph()
    for i in (n for n in b if n[0] == "i"):
        for u in b[i]:
            for j in b[u]:
                w = 1.0 / (b.degree(i) * b.degree(u))
                p.add_edge(i[1], j[1], weight=p.get_edge_data(i[1], j[1], {"weight": 0.0})["weight"] + w)
    comp = nx.node_connected_component(b, ("i", start))
    sub = p.subgraph(n[1] for n in comp if n[0] == "i")
    pi = nx.pagerank(sub, alpha=1 - restart, personalization={start: 1.0}, weight="weight", tol=1e-12, max_iter=1000)
    x: dict[int, float] = {}
    for i, mass in pi.items():
        for j, d in sub[i].items():
            x[j] = x.get(j, 0.0) + mass * d["weight"]
    x.pop(start, None)
    total = sum(x.values())
    return {j: v / total for j, v in x.items()}


def test_walk_neighbourhoods_match_personalised_pagerank() -> None:
    user = np.array([u for u, _ in EDGES])
    item = np.array([i for _, i in EDGES])
    restart = 0.3
    nbr, w = importance_neighbourhoods(user, item, 6, 6, top_t=6, walks=20000, length=60, restart=restart, seed=3)
    for start in (0, 1, 3, 5):
        oracle = ppr_visits(EDGES, start, restart)
        got = {int(j): float(v) for j, v in zip(nbr[start], w[start], strict=True) if j >= 0}
        assert set(got) == set(oracle), start  # the same reachable items
        for j, v in oracle.items():
            assert abs(got[j] - v) < 0.02, (start, j, got[j], v)
        # Ranked the same wherever the oracle's weights differ clearly.
        order = sorted(oracle, key=lambda j: -oracle[j])
        for a, b in zip(order, order[1:], strict=False):
            if oracle[a] - oracle[b] > 0.03:
                assert got[a] > got[b], (start, a, b)
    assert (nbr[4] == -1).all()  # item 4: its only user has no other item


def _snap() -> Snapshot:
    user = np.array([u for u, _ in EDGES] + [5])
    item = np.array([i for _, i in EDGES] + [6])
    kind = np.full(len(user), KIND_CODE["RATED"], np.int8)
    kind[-1] = KIND_CODE["SKIPPED"]  # not a positive edge: item 6 stays cold
    items = [ItemContent(title=f"t{k}") for k in range(8)]  # item 7: nobody touched it
    return Snapshot([f"u{k}" for k in range(7)], [f"i{k}" for k in range(8)], user, item, np.arange(len(user), dtype=float),
                    kind, np.full(len(user), 4.0, np.float32), items)


def test_graph_stats_on_a_hand_checked_graph(tmp_path: Path) -> None:
    snap = _snap()
    g = interaction_graph(snap)
    assert g.number_of_nodes() == 7 + 8 and g.number_of_edges() == len(EDGES)
    st = graph_stats(snap, g)
    # Components: {u0,u1,u2,u3,u5, items 0,1,2,3,5}, {u4, item 4}, and the lone u6, item 6, item 7.
    assert st["components"] == 5
    assert st["largest_component_share"] == 10 / 15
    assert st["users_outside_largest"] == 2  # u4 and u6
    assert st["cold_items"] == 2 and st["users_without_interactions"] == 1
    assert st["item_degree"]["max"] == 3 and st["user_degree"]["max"] == 3
    assert st["degree_histogram"]["item"] == [2, 1, 3, 2]  # degree 0: items 6, 7; 1: item 4; 2: 2, 3, 5; 3: 0, 1
    png = plot_degrees(st, tmp_path / "deg.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
