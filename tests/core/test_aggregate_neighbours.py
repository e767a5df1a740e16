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
    got = aggregate_neighbours(seeds, {k: neighbour_list(v) for k, v in lists.items()}, limit, "co_interaction")
    want = oracle(seeds, lists, limit)
    assert [(c.item_id, c.because) for c in got] == [(i, b) for i, _, b in want]
    assert [c.score for c in got] == pytest.approx([sc for _, sc, _ in want])
    assert all(c.source == "co_interaction" for c in got)


def test_seeds_are_never_candidates_and_missing_lists_give_nothing() -> None:
    lists = {"a": neighbour_list([("b", 1.0), ("c", 0.5)]), "b": neighbour_list([("a", 1.0), ("c", 1.0)])}
    got = aggregate_neighbours([{"id": "a", "w": 1.0}, {"id": "b", "w": 0.5}], lists, 10, "x")
    assert [(c.item_id, c.score, c.because) for c in got] == [("c", 1.0, ("b", "a"))]  # 0.5 each: larger id first
    assert aggregate_neighbours([{"id": "zzz", "w": 1.0}], lists, 10, "x") == []
    assert aggregate_neighbours([], lists, 10, "x") == []
