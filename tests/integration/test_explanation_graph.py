"""The explanation subgraph (networkx, GraphML) between a user and an item, on the tiny graph:
alice rated heat and ronin; bob and dave, who also interacted with heat, went on to alien
(collaborative paths); "new" shares Action and the heist tag with alice's items (content paths)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from graphrec.core.errors import NotFound
from graphrec.core.explanation import explanation_graph, paths_by_kind, write_graphml
from graphrec.testing import tiny_graph

pytestmark = pytest.mark.integration


def test_collaborative_paths_as_a_graph_and_graphml(store, tmp_path: Path) -> None:  # noqa: ANN001
    tiny_graph(store)
    g = explanation_graph(store, "alice", "alien")
    assert g.nodes["Item:alien"] == {"label": "Item", "name": "Alien"}
    assert {"User:bob", "User:dave", "Item:heat"} <= set(g.nodes)
    assert paths_by_kind(g).keys() == {"co_interaction"}  # alien shares no category or tag with heat or ronin
    # alice → heat ← dave → alien, one edge per relationship, typed as stored.
    assert g.has_edge("User:alice", "Item:heat") and g.has_edge("User:dave", "Item:alien")
    (rel,) = g.get_edge_data("User:dave", "Item:alien").values()
    assert rel["type"] == "RATED" and rel["value"] == 4.0 and rel["ts"] == 1800.0
    assert nx.shortest_path_length(g.to_undirected(as_view=True), "User:alice", "Item:alien") == 3
    back = nx.read_graphml(write_graphml(g, tmp_path / "why.graphml"))
    assert set(back.nodes) == set(g.nodes) and back.number_of_edges() == g.number_of_edges()
    assert back.nodes["Item:heat"]["name"] == "Heat"


def test_content_paths_and_unknown_ids(store) -> None:  # noqa: ANN001
    tiny_graph(store)
    g = explanation_graph(store, "alice", "new")
    assert paths_by_kind(g).keys() == {"content"}  # nobody interacted with "new"
    assert {"Category:Action", "Tag:heist"} <= set(g.nodes)
    assert g.nodes["Tag:heist"]["label"] == "Tag"
    with pytest.raises(NotFound):
        explanation_graph(store, "alice", "ghost")
    with pytest.raises(NotFound):
        explanation_graph(store, "nobody", "new")
    lone = explanation_graph(store, "carol", "alien")  # no path at all: the two nodes, no edges
    assert set(lone.nodes) == {"User:carol", "Item:alien"} and lone.number_of_edges() == 0
