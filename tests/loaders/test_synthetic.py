"""The synthetic generator: deterministic, power-law popularity, sessions, tastes."""

from __future__ import annotations

from collections import Counter

from loaders.synthetic import SyntheticCatalog, SyntheticSpec


def _events(seed: int, chunk: int = 100) -> list:
    spec = SyntheticSpec(users=300, items=200, interactions=6000, categories=8, seed=seed, chunk=chunk)
    return [r for r, _ in SyntheticCatalog(spec).interactions()]


def test_deterministic_and_independent_of_chunking_of_items() -> None:
    a, b = _events(3), _events(3)
    assert [(r.user_id, r.item_id, r.type, r.ts) for r in a] == [(r.user_id, r.item_id, r.type, r.ts) for r in b]
    assert [(r.user_id, r.item_id) for r in _events(4)] != [(r.user_id, r.item_id) for r in a]


def test_shape_of_the_data() -> None:
    ev = _events(5)
    assert 4000 < len(ev) < 8000
    pop = sorted(Counter(r.item_id for r in ev).values(), reverse=True)
    # Power law: the top 10% of items take a large share of interactions.
    assert sum(pop[: len(pop) // 10]) > 0.3 * len(ev)
    types = Counter(r.type.value for r in ev)
    assert set(types) == {"VIEWED", "CLICKED", "PURCHASED", "SKIPPED", "RATED"}
    by_user: dict[str, list] = {}
    for r in ev:
        by_user.setdefault(r.user_id, []).append(r)
    for rows in by_user.values():
        ts = [r.ts for r in rows]
        assert ts == sorted(ts)  # time-ordered per user
        assert all(r.session_id and r.session_id.startswith(f"s{r.user_id[1:]}-") for r in rows)


def test_heavy_users_stay_inside_the_span() -> None:
    """Sessions days apart would carry a heavy user's timeline years past the span (the 1M-item
    graph's clock ran 63 days past the wall clock; here, 500 events a user, 1,350 days past it)."""
    from loaders.synthetic import SPAN, T0

    spec = SyntheticSpec(users=40, items=200, interactions=20000, categories=8, seed=5, chunk=100)
    ev = [r for r, _ in SyntheticCatalog(spec).interactions()]
    assert T0 <= min(r.ts for r in ev) and max(r.ts for r in ev) <= T0 + SPAN
    by_user: dict[str, list[float]] = {}
    for r in ev:
        by_user.setdefault(r.user_id, []).append(r.ts)
    assert all(ts == sorted(ts) for ts in by_user.values())


def test_items_have_categories_and_tags() -> None:
    cat = SyntheticCatalog(SyntheticSpec(users=10, items=50, interactions=100, categories=5))
    items = [r for r, _ in cat.items()]
    assert len(items) == 50 and all(1 <= len(i.categories) <= 2 and i.tags for i in items)


def test_batches_are_the_rows_as_columns() -> None:
    """interaction_batches yields the events of interactions(), in order, with the keys, values and
    sources the row path gives them (so either path re-loads the other's events idempotently)."""
    from loaders.writer import InteractionBatch

    spec = SyntheticSpec(users=300, items=200, interactions=6000, categories=8, seed=9, chunk=100)
    rows = list(SyntheticCatalog(spec).interactions())
    batches = list(SyntheticCatalog(spec).interaction_batches(size=700))
    assert max(len(b) for b in batches) == 700
    want = InteractionBatch.from_rows(rows)
    for col in ("type", "key", "user", "item", "ts", "value", "dwell", "session"):
        assert [v for b in batches for v in getattr(b, col)] == getattr(want, col), col
    got = [s for b in batches for s in b.sources]
    assert [(s.file, s.line) for s in got] == [(s.file, s.line) for _, s in rows]
    assert any(v is None for v in want.value) and any(v is not None for v in want.value)


def test_every_pass_draws_the_same_catalogue_and_parts_partition_the_users() -> None:
    """A second pass over the same catalogue object gives the same items and events (SeedSequence
    .spawn is stateful; the chunks' seeds must not depend on earlier passes), and the parts of a
    parallel import hold exactly the events of one pass, each user in one part only."""
    cat = SyntheticCatalog(SyntheticSpec(users=300, items=120, interactions=4000, categories=5, seed=3, chunk=50))
    keys = [k for b in cat.interaction_batches() for k in b.key]
    assert [k for b in cat.interaction_batches() for k in b.key] == keys
    assert [(r.categories, r.tags) for r, _ in cat.items()] == [(r.categories, r.tags) for r, _ in cat.items()]
    parts = [list(cat.interaction_batches(part=k, parts=2)) for k in range(2)]
    assert sorted(k for p in parts for b in p for k in b.key) == sorted(keys)
    users = [{u for b in p for u in b.user} for p in parts]
    assert users[0] and users[1] and not users[0] & users[1]
