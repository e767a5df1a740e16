"""MovieLens-100K end to end: fetched from the recbole wheel, sha256-checked, loaded, idempotent."""

from __future__ import annotations

import pytest

from graphrec.testing import on_engine
from loaders import movielens
from loaders.writer import GraphWriter

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_movielens_load_counts_and_idempotence(store, neo4j_settings) -> None:  # noqa: ANN001
    root = movielens.fetch(neo4j_settings.cache_dir)
    assert movielens.sha256(neo4j_settings.cache_dir / "datasets" / "wheels" / movielens.WHEEL_FILE) == movielens.WHEEL_SHA256
    w = GraphWriter(store, on_error="stop", progress=False)
    reports = movielens.load(w, root)
    c = store.counts()
    assert (c["users"], c["items"], c["RATED"]) == (943, 1682, 100_000)
    assert c["categories"] == 19 and c["entities"] > 10_000 and c["kg_triples"] > 80_000
    assert reports[2].written == 100_000
    again = movielens.load(w, root)
    assert again[2].written == 0 and store.counts() == c
    toy = on_engine(neo4j_settings, lambda e: e.repo.get_item("1"))
    assert toy.title == "Toy Story" and toy.year == 1995 and set(toy.categories) == {"Animation", "Children's", "Comedy"}
    u = on_engine(neo4j_settings, lambda e: e.get_user("1"))
    assert u is not None and u.attributes["occupation"] == "technician" and u.attributes["age"] == 24
