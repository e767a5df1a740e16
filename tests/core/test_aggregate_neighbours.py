"""The neighbour sum of the co-interaction, content and session sources
(graphrec.core.recs.merge.aggregate_neighbours) against a plain dictionary oracle."""

from __future__ import annotations

import random

import pytest

from graphrec.core.recs.merge import aggregate_neighbours, neighbour_list


def oracle(seeds: list[dict[str, object]], lists: dict[str, list[tuple[str, float]]], limit: int
           ) -> list[tuple[str, float, tuple[str, ...]]]:
    """The definition, one entry at a time: Σ seed weight × score, seeds left out, best first
    (ties by id), ``because`` = the three largest contributions (ties: the larger seed id)."""
    seed_ids = {str(s["id"]) for s in seeds}
    score: dict[str, float] = {}
    parts: dict[str, list[tuple[float, str]]] = {}
    for s in seeds:
        for nid, ns in lists.get(str(s["id"]), ()):
            if nid not in seed_ids:
                score[nid] = score.get(nid, 0.0) + float(s["w"]) * ns  # type: ignore[arg-type]
                parts.setdefault(nid, []).append((float(s["w"]) * ns, str(s["id"])))  # type: ignore[arg-type]
    top = sorted(score.items(), key=lambda x: (-x[1], x[0]))[:limit]
    return [(i, sc, tuple(b for _, b in sorted(parts[i], reverse=True)[:3])) for i, sc in top]


@pytest.mark.parametrize("seed", range(300))
def test_the_vectorised_sum_matches_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    items = [f"i{k}" for k in range(rng.choice([3, 30, 400]))]
    lists: dict[str, list[tuple[str, float]]] = {}
    for it in items[:100]:
        nbrs = rng.sample(items, min(len(items), rng.choice([0, 1, 5, 50])))
        # Repeated values make ties, in the sums and between contributions.
        lists[it] = sorted(((n, rng.choice([0.5, 1.0, rng.random()])) for n in nbrs), key=lambda x: -x[1])
    seeds: list[dict[str, object]] = [{"id": rng.choice(items), "w": rng.choice([1.0, 0.5, rng.random()])}
                                      for _ in range(rng.choice([0, 1, 3, 20]))]
    limit = rng.choice([1, 5, 200])
    got = list(aggregate_neighbours(seeds, {k: neighbour_list(v) for k, v in lists.items()}, limit, "co_interaction"))
    want = oracle(seeds, lists, limit)
    assert [(c.item_id, c.because) for c in got] == [(i, b) for i, _, b in want]
    assert [c.score for c in got] == pytest.approx([sc for _, sc, _ in want])
    assert all(c.source == "co_interaction" for c in got)


def test_seeds_are_never_candidates_and_missing_lists_give_nothing() -> None:
    lists = {"a": neighbour_list([("b", 1.0), ("c", 0.5)]), "b": neighbour_list([("a", 1.0), ("c", 1.0)])}
    got = list(aggregate_neighbours([{"id": "a", "w": 1.0}, {"id": "b", "w": 0.5}], lists, 10, "x"))
    assert [(c.item_id, c.score, c.because) for c in got] == [("c", 1.0, ("b", "a"))]  # 0.5 each: larger id first
    assert list(aggregate_neighbours([{"id": "zzz", "w": 1.0}], lists, 10, "x")) == []
    assert list(aggregate_neighbours([], lists, 10, "x")) == []


def test_merging_the_columns_is_merging_the_candidates() -> None:
    """A source's columns (because computed on demand) merge exactly as its candidate records."""
    from graphrec.core.recs.candidate import Candidate
    from graphrec.core.recs.merge import merge_candidates

    rng = random.Random(7)
    items = [f"i{k}" for k in range(60)]
    lists = {it: neighbour_list(sorted(((n, rng.random()) for n in rng.sample(items, 10)), key=lambda x: -x[1]))
             for it in items}
    seeds: list[dict[str, object]] = [{"id": i, "w": rng.random()} for i in rng.sample(items, 5)]
    cols = aggregate_neighbours(seeds, lists, 30, "co_interaction")
    other = [Candidate(i, rng.random(), "popular", (), ("x",)) for i in rng.sample(items, 20)]
    weights = {"co_interaction": 1.0, "popular": 0.3}
    a = merge_candidates({"co_interaction": cols, "popular": other}, weights)
    b = merge_candidates({"co_interaction": list(cols), "popular": other}, weights)
    assert list(a) == list(b)
    assert [(s.score, s.sources, s.because, s.via) for s in a.values()] == [(s.score, s.sources, s.because, s.via) for s in b.values()]
    assert any(s.because for s in a.values())
