"""A deterministic synthetic catalogue: power-law popularity, latent tastes, categories, tags, sessions.

The generative story (all draws from one seed):

1. ``n_categories`` categories; every item belongs to 1-2 categories and carries 1-4 tags drawn
   from a per-category tag pool; items have a Zipf-distributed base popularity.
2. Every user has a taste: a Dirichlet mixture over categories (concentration ``alpha``).
3. A user's interactions come in sessions (geometric lengths, 7.5 events on average; events minutes
   apart, sessions days apart); each event picks a category from the user's taste and an item from
   that category in proportion to popularity, then a type (view with dwell time, click, purchase,
   skip, rating) whose odds depend on how well the item fits the user.

Everything streams in chunks of users (and items), so memory stays flat at 1M × 1M × 20M. Chunk
``k`` draws from ``SeedSequence(seed).spawn`` stream ``k``: the output does not depend on the
chunk being generated in a particular process or order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphrec.core.records import InteractionRow, InteractionType, ItemRow, UserRow, interaction_key
from loaders.writer import InteractionBatch, Item, LineSources, Source

TYPES = (InteractionType.VIEW, InteractionType.CLICK, InteractionType.PURCHASE,
         InteractionType.SKIP, InteractionType.RATE)
T0 = 1_700_000_000.0  # 2023-11-14, the start of synthetic time
SPAN = 180 * 86400.0  # six months of history


def _children(seq: np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """The first ``n`` children of ``seq`` — what ``seq.spawn(n)`` returns on its first call,
    without advancing it: ``spawn`` is stateful, so a second call (a second pass over the
    interactions, or the parts of a parallel import) would draw other events."""
    return [np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, k), pool_size=seq.pool_size)
            for k in range(n)]


@dataclass(frozen=True)
class SyntheticSpec:
    users: int = 10_000
    items: int = 5_000
    interactions: int = 200_000
    categories: int = 20
    tags_per_category: int = 25
    zipf_a: float = 1.1
    alpha: float = 0.3
    seed: int = 7
    chunk: int = 10_000


class SyntheticCatalog:
    """Generates users, items and interactions for a :class:`SyntheticSpec`."""

    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec
        root = np.random.SeedSequence(spec.seed)
        self._item_seq, self._user_seq, self._global = root.spawn(3)
        g = np.random.default_rng(self._global)
        s = spec
        # Item -> primary category, base popularity (Zipf over a random permutation of ids).
        self.item_cat = g.integers(0, s.categories, size=s.items)
        ranks = g.permutation(s.items) + 1
        pop = ranks.astype(np.float64) ** (-s.zipf_a)
        self.item_pop = pop / pop.sum()
        # Per category: its items and their popularity-proportional sampling table.
        order = np.argsort(self.item_cat, kind="stable")
        bounds = np.searchsorted(self.item_cat[order], np.arange(s.categories + 1))
        self.cat_items = [order[bounds[c]:bounds[c + 1]] for c in range(s.categories)]
        self.cat_cdf = []
        for members in self.cat_items:
            p = self.item_pop[members]
            self.cat_cdf.append(np.cumsum(p / p.sum()) if len(p) else np.array([1.0]))

    # ---- ids and names ---------------------------------------------------------------------
    @staticmethod
    def user_id(i: int) -> str:
        return f"u{i}"

    @staticmethod
    def item_id(i: int) -> str:
        return f"i{i}"

    @staticmethod
    def session_id(user: int, n: int) -> str:
        """The ``n``-th session of a user."""
        return f"s{user}-{n}"

    @staticmethod
    def _names(ids: np.ndarray, name: Any) -> list[str]:
        """``name(i)`` for every id, computed once per distinct id."""
        distinct, inv = np.unique(ids, return_inverse=True)
        names = [name(i) for i in distinct.tolist()]
        return [names[k] for k in inv.tolist()]

    def category_name(self, c: int) -> str:
        return f"cat{c:02d}"

    # ---- streams -------------------------------------------------------------------------
    def users(self) -> Iterator[Item]:
        for i in range(self.spec.users):
            yield UserRow.model_construct(id=self.user_id(i), created_at=T0, attributes={}), Source("synthetic:users", i + 1)

    def items(self) -> Iterator[Item]:
        s = self.spec
        seqs = _children(self._item_seq, (s.items + s.chunk - 1) // s.chunk)
        for k, seq in enumerate(seqs):
            g = np.random.default_rng(seq)
            lo, hi = k * s.chunk, min(s.items, (k + 1) * s.chunk)
            second = g.integers(0, s.categories, size=hi - lo)
            has_second = g.random(hi - lo) < 0.3
            ntags = g.integers(1, 5, size=hi - lo)
            created = T0 + g.random(hi - lo) * SPAN * 0.9
            years = g.integers(1990, 2024, size=hi - lo)
            for j in range(hi - lo):
                i = lo + j
                c = int(self.item_cat[i])
                cats = {self.category_name(c)}
                if has_second[j]:
                    cats.add(self.category_name(int(second[j])))
                tags = {f"{self.category_name(c)}-t{int(t)}" for t in g.integers(0, s.tags_per_category, size=ntags[j])}
                yield ItemRow.model_construct(id=self.item_id(i), title=f"Item {i}", year=int(years[j]), available=True,
                              categories=sorted(cats), tags=sorted(tags), created_at=float(created[j]),
                                              description=None, attributes={}), \
                    Source("synthetic:items", i + 1)

    def _event_chunks(self, part: int = 0, parts: int = 1) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per chunk of users: (first user, owner, item, type index, ts, value, dwell, session no.),
        every event as NumPy arrays; value and dwell are NaN where the type has none. With
        ``parts`` > 1, only the chunks ``part``, ``part + parts``, ...: the parts partition the
        users (and so the sessions and keys), and each can be generated in its own process."""
        s = self.spec
        per_user = s.interactions / s.users
        seqs = _children(self._user_seq, (s.users + s.chunk - 1) // s.chunk)
        T = InteractionType
        view, click, buy, skip, rate = (TYPES.index(t) for t in (T.VIEW, T.CLICK, T.PURCHASE, T.SKIP, T.RATE))
        for k, seq in enumerate(seqs):
            if k % parts != part:
                continue
            g = np.random.default_rng(seq)
            lo, hi = k * s.chunk, min(s.users, (k + 1) * s.chunk)
            n = hi - lo
            tastes = g.dirichlet(np.full(s.categories, s.alpha), size=n)
            # Heavy-tailed activity, scaled so the chunk's expected total matches the spec.
            act = g.lognormal(0.0, 1.0, size=n)
            counts = np.maximum(1, np.round(act / act.mean() * per_user)).astype(np.int64)
            m = int(counts.sum())
            owner = np.repeat(np.arange(n), counts)  # the chunk-local user of every event
            first = np.zeros(m, dtype=bool)
            first[np.cumsum(counts) - counts] = True
            # A category from the user's taste, then an item of it in proportion to popularity.
            cdf = np.cumsum(tastes, axis=1)
            cats = np.minimum((g.random(m)[:, None] > cdf[owner]).sum(axis=1), s.categories - 1)
            picks = np.empty(m, dtype=np.int64)
            u = g.random(m)
            for c in range(s.categories):
                sel = np.nonzero(cats == c)[0]
                if len(sel) == 0:
                    continue
                members = self.cat_items[c]
                if len(members) == 0:
                    picks[sel] = g.integers(0, s.items, size=len(sel))
                    continue
                idx = np.searchsorted(self.cat_cdf[c], u[sel])
                picks[sel] = members[np.minimum(idx, len(members) - 1)]
            fit = tastes[owner, self.item_cat[picks]]
            # Sessions: an event opens a new session with probability 1/7.5 (geometric lengths,
            # 7.5 events on average); events are minutes apart, sessions days apart.
            new = (g.random(m) < 1 / 7.5) | first
            sess: np.ndarray = np.cumsum(new)  # int at run time (numpy's stubs say bool for a bool input)
            sess -= sess[first][owner]
            start = T0 + g.random(n) * SPAN * 0.5
            gap = g.exponential(120, size=m) + np.where(new & ~first, g.exponential(3 * 86400, size=m), 0.0)
            csum = np.cumsum(gap)
            ts = start[owner] + csum - csum[first][owner] + gap[first][owner]
            # A heavy user's sessions, days apart, would run past the span (into the future of
            # the wall clock at a few hundred events): their timeline is compressed to end in it.
            end = ts[np.cumsum(counts) - 1]
            scale = np.where(end > T0 + SPAN, (T0 + SPAN - start) / np.maximum(end - start, 1e-9), 1.0)
            ts = np.round(start[owner] + (ts - start[owner]) * scale[owner], 3)
            # The type depends on how well the item fits the user's taste.
            r = g.random(m)
            p_skip = 0.25 * (1 - fit)
            p_buy = p_skip + 0.03 + 0.12 * fit
            p_rate = p_buy + 0.10
            p_click = p_rate + 0.30
            kind = np.select([r < p_skip, r < p_buy, r < p_rate, r < p_click], [skip, buy, rate, click], default=view)
            stars = np.clip(np.round(2 + 3 * fit + g.normal(0, 0.7, size=m)), 1, 5)
            dwell = np.round(5 + 120 * fit * g.random(m), 1)
            value = np.where(kind == rate, stars, np.nan)
            dwell = np.where(kind == view, dwell, np.nan)
            yield lo, owner, picks, kind, ts, value, dwell, sess

    def interactions(self) -> Iterator[Item]:
        """About ``spec.interactions`` events, user chunk by user chunk, time-ordered per user, as
        rows (see :meth:`interaction_batches` for the same events as columns).

        Every draw of a chunk is vectorised (NumPy over all the chunk's events at once), so the
        generator does not slow down load benchmarks."""
        line = 0
        construct = InteractionRow.model_construct
        kinds = np.array(TYPES, dtype=object)
        for lo, owner, picks, kind, ts, value, dwell, sess in self._event_chunks():
            for uid, iid, typ, t, v, d, sid in zip((owner + lo).tolist(), picks.tolist(), kinds[kind].tolist(),
                                                   ts.tolist(), value.tolist(), dwell.tolist(), sess.tolist(), strict=True):
                line += 1
                # Generated rows are valid by construction: skip validation (it would dominate).
                yield construct(user_id=self.user_id(uid), item_id=self.item_id(iid), type=typ, ts=t,
                                value=None if v != v else v, dwell_seconds=None if d != d else d,
                                session_id=self.session_id(uid, sid), key=None), Source("synthetic:interactions", line)

    def interaction_batches(self, size: int = 10_000, part: int = 0, parts: int = 1) -> Iterator[InteractionBatch]:
        """The events of :meth:`interactions`, in the same order and with the same idempotency
        keys, as columns of at most ``size`` rows: no object per event, so the loader's CPU goes
        to the writes (a bulk load runs both on the same cores). ``part`` of ``parts``: the
        events of every ``parts``-th chunk of users (see :meth:`_event_chunks`; line numbers then
        count within the part)."""
        line = 1
        types = [t.value for t in TYPES]
        name = "synthetic:interactions" if parts == 1 else f"synthetic:interactions[part {part + 1}/{parts}]"
        for lo, owner, picks, kind, ts, value, dwell, sess in self._event_chunks(part, parts):
            for a in range(0, len(owner), size):
                b = min(len(owner), a + size)
                who = owner[a:b] + lo
                uids = who.tolist()
                users = self._names(who, self.user_id)
                items = self._names(picks[a:b], self.item_id)
                typ = [types[k] for k in kind[a:b].tolist()]
                t = ts[a:b].tolist()
                sessions: list[str | None] = [self.session_id(u, n)
                                              for u, n in zip(uids, sess[a:b].tolist(), strict=True)]
                keys = [interaction_key(u, i, y, x, z)
                        for u, i, y, x, z in zip(users, items, typ, t, sessions, strict=True)]
                yield InteractionBatch(
                    type=typ, key=keys, user=users, item=items, ts=t,
                    value=[None if v != v else v for v in value[a:b].tolist()],
                    dwell=[None if d != d else d for d in dwell[a:b].tolist()],
                    session=sessions, sources=LineSources(name, line, b - a))
                line += b - a
