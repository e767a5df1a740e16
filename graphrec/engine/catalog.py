"""The engine's in-memory view of the catalogue, refreshed periodically from the graph.

It holds what business rules need for every candidate without a round trip (categories,
availability, year, age), the popular lists (overall and per category) and the fresh list. It is
also the last line of degraded mode: when Neo4j is down, the popular list here still answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from graphrec.core.recs import popularity
from graphrec.core.recs.popularity import PopularWindow
from graphrec.core.recs.types import LIST_SIZE, CatalogItem

log = logging.getLogger("graphrec.engine")

@dataclass
class Catalog:
    items: dict[str, CatalogItem] = field(default_factory=dict)
    popular: list[tuple[str, float]] = field(default_factory=list)
    popular_by_category: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    fresh: list[tuple[str, float]] = field(default_factory=list)  # (id, created_at), newest first
    now: float = 0.0  # the data's clock (newest interaction) at refresh
    refreshed_at: float = 0.0
    started_at: float = 0.0  # when the last refresh began reading (the next one reads changes since)
    full_at: float = 0.0  # when the last full read began
    popular_at: float = 0.0  # when the popular lists were last computed in the graph
    # The window they were computed over (graphrec.core.recs.popularity; None: not known here).
    popular_window: PopularWindow | None = None
    # From the last full read: the all-time most interacted items, overall and per category (the
    # popular lists' fallback when the window is quiet).
    all_time: list[tuple[str, int]] = field(default_factory=list)
    all_time_by_category: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # Changes made to ``items`` in place (an upsert through this process): what is derived from
    # the catalogue and kept (graphrec.engine.candidates) is derived again.
    edits: int = 0
    # What requests derive from this catalogue and keep (see derived): name -> (state, value).
    _derived: dict[str, tuple[tuple[int, int], Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def loaded(self) -> bool:
        return self.refreshed_at > 0

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept until the catalogue changes (a refresh makes a new catalogue; an
        upsert in place counts in ``edits``): what every request would otherwise derive again."""
        state = (self.edits, len(self.items))
        got = self._derived.get(name)
        if got is None or got[0] != state:
            got = self._derived[name] = (state, build())
        return got[1]

    def unavailable(self) -> frozenset[str]:
        """The ids of the items known to be unavailable."""
        return self.derived("unavailable", lambda: frozenset(i for i, it in self.items.items() if not it.available))


#: A refresh reads the items upserted since the previous one began, minus this margin (clock skew
#: between the writers' hosts and this one; a change is read twice rather than missed).
CHANGES_MARGIN_S = 120.0


async def _read_items(read_page: Callable[[str], Awaitable[list[dict[str, Any]]]]) -> dict[str, CatalogItem]:
    """Every page ``read_page(after)`` returns, ordered by id, as catalogue items."""
    items: dict[str, CatalogItem] = {}
    after = ""
    while True:
        rows = await read_page(after)
        if not rows:
            break
        for r in rows:
            items[r["id"]] = _item(r)
        after = rows[-1]["id"]
    return items


def _item(r: dict[str, Any]) -> CatalogItem:
    """A ``recs/catalog`` (or ``recs/catalog_changed``) row as a catalogue item."""
    return CatalogItem(r["id"], r["title"], r["year"], bool(r["available"]), r["created_at"],
                       tuple(r["categories"]), int(r["interactions"]))


def _all_time(items: dict[str, CatalogItem], top: int, per_category: int
              ) -> tuple[list[tuple[str, int]], dict[str, list[tuple[str, int]]]]:
    ranked = sorted((it for it in items.values() if it.available), key=lambda it: (-it.interactions, it.id))
    by_cat: dict[str, list[tuple[str, int]]] = {}
    for it in ranked:
        for c in it.categories:
            lst = by_cat.setdefault(c, [])
            if len(lst) < 2 * per_category:  # twice: some are in the windowed list already
                lst.append((it.id, it.interactions))
    return [(it.id, it.interactions) for it in ranked[:2 * top]], by_cat


async def load_catalog(store: Any, type_weights: dict[str, float], window_s: float, half_life_s: float,
                       page: int = 10_000, per_category: int = 200, top: int = LIST_SIZE,
                       previous: Catalog | None = None, refresh_popular: bool = True,
                       shared: SharedPopular | None = None, full: bool = False, popular_page_items: int = 20_000,
                       popular_duty: float = 0.33, max_clock_skew_s: float = math.inf,
                       popular_min_events: int = 0) -> Catalog:
    """Read the catalogue, then the popular lists.

    With ``full``, or without ``previous`` (or one never loaded), every item is read, page by page
    (its CPU grows with the catalogue, so not every minute). Otherwise only the items upserted since
    ``previous`` began reading (``recs/catalog_changed``, by the ``updated_at`` index) are read
    and merged into its item map (unless they fill a page, a bulk upsert: then every item is read);
    the all-time fallback lists are kept from the last full read
    (interaction counts there are as old as that read). The popular lists are recomputed when
    ``refresh_popular`` is true (or there are none yet) — through ``shared`` when given, so that
    the fleet of API processes runs the window queries once (see :class:`SharedPopular`);
    otherwise, or while another process computes them, the lists of ``previous`` are kept, minus
    items no longer available. The window lists read every
    interaction in the window (Neo4j CPU that grows with the window; paged and paced by
    :func:`window_lists`), so the engine asks every ``engine.popular_refresh_s``, not every
    catalogue refresh. A window holding fewer than ``popular_min_events`` interactions is
    widened (:func:`popular_lists`).

    The data's clock (``Catalog.now``) is the graph's, but never more than ``max_clock_skew_s``
    past the wall clock: a clock moved by an event from the future (written before events were
    bounded) would otherwise decay every user's history to nothing and empty the popular window;
    ``graphrec clock repair`` sets the stored clock right."""
    started = time.time()
    carried: Catalog | None = None  # an earlier catalogue whose items this refresh leaves as they were
    full = full or previous is None or not previous.loaded
    changed: dict[str, CatalogItem] = {}
    if not full:
        assert previous is not None
        since = previous.started_at - CHANGES_MARGIN_S
        rows = await store.read("recs/catalog_changed", plain=True, since=since, limit=page)
        # More than a page of changes (a bulk upsert): read everything, by id, instead of sorting
        # every changed id for each page of changes (recs/catalog_changed).
        full = len(rows) >= page
        changed = {r["id"]: _item(r) for r in rows}
    if full:
        items = await _read_items(lambda after: store.read("recs/catalog", plain=True, after=after, limit=page))
        all_time, all_time_by_cat = _all_time(items, top, per_category)
        full_at = started
        fresh = sorted(((it.id, it.created_at) for it in items.values() if it.created_at is not None and it.available),
                       key=lambda x: -x[1])[:top]
    else:
        assert previous is not None
        carried = previous if not changed else None
        items = previous.items
        items.update(changed)  # one dict, updated between two awaits: a request never sees half of it
        all_time, all_time_by_cat, full_at = previous.all_time, previous.all_time_by_category, previous.full_at
        seen = {i for i, _ in previous.fresh}
        fresh = sorted([(i, t) for i, t in previous.fresh if items[i].available] +
                       [(it.id, it.created_at) for it in changed.values()
                        if it.created_at is not None and it.available and it.id not in seen],
                       key=lambda x: -x[1])[:top]
    clock = (await store.read("recs/latest_ts"))[0]["ts"]  # one node: cheap, read every time
    now = float(clock) if clock else time.time()
    if now > (latest := time.time() + max_clock_skew_s):
        log.warning("the graph's clock is %.0f s in the future; using now + %.0f s (run `graphrec clock repair`)",
                    now - time.time(), max_clock_skew_s)
        now = latest

    def kept(lst: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return [(i, sc) for i, sc in lst if (it := items.get(i)) is not None and it.available]

    own = previous if previous is not None and previous.loaded else None  # the lists this process has now
    lists: tuple[Lists, float, PopularWindow | None] | None = None
    if refresh_popular or own is None:
        def compute() -> Awaitable[tuple[Lists, PopularWindow]]:
            return popular_lists(store, type_weights, window_s, half_life_s, popular_min_events, now, top,
                                 per_category, popular_page_items, popular_duty)

        if shared is None:
            computed, win = await compute()
            lists = computed, started, win
        else:
            lists = await shared.get(store, compute)
    if lists is None:  # not due, or another process is computing the shared lists: keep ours
        if own is not None:
            return _carry(carried, Catalog(
                items=items, popular=kept(own.popular),
                popular_by_category={c: kept(v) for c, v in own.popular_by_category.items()},
                fresh=fresh, now=now, refreshed_at=time.time(), started_at=started, full_at=full_at,
                popular_at=own.popular_at, all_time=all_time, all_time_by_category=all_time_by_cat,
                popular_window=own.popular_window))
        lists = ([], {}), 0.0, None  # a fleet's first start, the lists being computed elsewhere: all-time counts meanwhile
    (window, window_by_cat), popular_at, used = lists
    # A quiet window: filled up with all-time interaction counts.
    popular = popularity.top_up(kept(window), ((i, n) for i, n in all_time if items[i].available), top)
    by_cat = {c: kept(v) for c, v in window_by_cat.items()}
    # Categories with no recent interactions still get their all-time most popular items.
    for c, ranked in all_time_by_cat.items():
        lst = by_cat.setdefault(c, [])
        have = {i for i, _ in lst}
        for i, n in ranked:
            if len(lst) >= per_category:
                break
            if i not in have and items[i].available:
                lst.append((i, 1e-6 * n))
    return _carry(carried, Catalog(
        items=items, popular=popular, popular_by_category=by_cat, fresh=fresh, now=now,
        refreshed_at=time.time(), started_at=started, full_at=full_at, popular_at=popular_at,
        all_time=all_time, all_time_by_category=all_time_by_cat, popular_window=used))


#: Names (prefixes) of what is derived from the catalogue's items alone (not its popular lists).
ITEM_DERIVED = ("unavailable",)


def _carry(previous: Catalog | None, new: Catalog) -> Catalog:
    """``new``, keeping what ``previous`` (a catalogue whose item map the refresh read no change
    into, or None) derived from the items alone: the unavailable ids and the model's rows of them
    are a scan of every item (at 1M items ~0.1-0.2 s, in the first request after each refresh, once
    a minute per process otherwise). An upsert in place since then still counts in ``edits``."""
    if previous is not None:
        new.edits = previous.edits
        new._derived.update({k: v for k, v in previous._derived.items() if k.startswith(ITEM_DERIVED)})
    return new


Lists = tuple[list[tuple[str, float]], dict[str, list[tuple[str, float]]]]  # overall, per category


async def popular_lists(store: Any, type_weights: dict[str, float], window_s: float, half_life_s: float,
                        min_events: int, now: float, top: int, per_category: int, page_items: int = 20_000,
                        duty: float = 0.33) -> tuple[Lists, PopularWindow]:
    """The popular lists over the window ending at ``now`` and the window used: the nominal one
    (``window_s``, ``half_life_s``) when it holds at least ``min_events`` interactions, else
    widened back to the ``min_events``-th newest interaction with the half-life stretched alike
    (:mod:`graphrec.core.recs.popularity`; ``recs/popular_since`` finds that time, one more
    scan, only for a quiet window)."""
    win = popularity.nominal(now, window_s, half_life_s)
    lists, events = await window_lists(store, type_weights, win.since, win.half_life_s, now, top, per_category,
                                       page_items, duty)
    if events >= min_events:
        return lists, win
    row = (await store.read("recs/popular_since", now=now, events=min_events))[0]
    wide = popularity.widened(now, window_s, half_life_s, min_events, events, row["since"])
    if not wide.widened:
        return lists, win
    log.info("the popular window held %d interactions (< engine.popular_min_events %d): widened to %.0f days, "
             "half-life %.1f days", events, min_events, (now - wide.since) / 86400.0, wide.half_life_s / 86400.0)
    lists, _ = await window_lists(store, type_weights, wide.since, wide.half_life_s, now, top, per_category,
                                  page_items, duty)
    return lists, wide


async def window_lists(store: Any, type_weights: dict[str, float], since: float, half_life_s: float, now: float,
                       top: int, per_category: int, page_items: int = 20_000, duty: float = 0.33
                       ) -> tuple[Lists, int]:
    """The time-decayed popular lists over the window from ``since``, from the graph, page by
    page, and how many interactions (with available items) the window holds.

    Each page (``recs/popular_page``) scores the items of one id range over their interactions
    in the window and returns only the items that can still enter the lists (at least the
    overall list's last score, or the last score of one of their categories' lists, once those
    are full); the lists are merged here, so the result is the same as one scan of the whole
    window. Between pages the scan sleeps so that it keeps a Neo4j core busy at most ``duty`` of
    the time: one query over a large window holds a core for seconds, and the requests that
    arrive meanwhile (interaction writes first) queue behind it. Ties rank by item id, as in
    ``recs/popular``."""
    overall: list[tuple[float, str]] = []  # (-score, id): sorted ascending = best first
    by_cat: dict[str, list[tuple[float, str]]] = {}
    floor, cat_floors = 0.0, dict[str, float]()
    after: str | None = ""
    events = 0
    while after is not None:
        started = time.monotonic()
        row = (await store.read("recs/popular_page", plain=True, after=after, limit=page_items,
                                since=since, now=now, half_life_s=half_life_s, type_weights=type_weights,
                                floor=floor, category_floors=cat_floors))[0]
        after = row["last"]
        events += int(row["events"] or 0)
        for x in row["items"]:
            key = (-float(x["score"]), str(x["item_id"]))
            overall.append(key)
            for c in x["categories"]:
                by_cat.setdefault(str(c), []).append(key)
        overall = sorted(overall)[:top]
        floor = -overall[-1][0] if len(overall) >= top else 0.0
        for c, lst in by_cat.items():
            by_cat[c] = lst = sorted(lst)[:per_category]
            if len(lst) >= per_category:
                cat_floors[c] = -lst[-1][0]
        if after is not None and duty < 1.0:
            await asyncio.sleep((time.monotonic() - started) * (1.0 - duty) / max(duty, 1e-3))
    return ([(i, -s) for s, i in overall], {c: [(i, -s) for s, i in lst] for c, lst in by_cat.items()}), events


class SharedPopular:
    """The popular lists computed once per ``max_age_s`` by the whole fleet of API processes.

    They are kept on a ``GraphrecMeta {key: 'popular'}`` node (``recs/popular_shared``). A process
    whose copy is due reads that node; when it is older than ``max_age_s`` the process tries to
    take a lease on it (``recs/popular_lease``: one taker at a time, for ``lease_s``), and the
    taker runs the window queries and stores the lists (``recs/popular_store``). The others keep
    their lists and look again at their next catalogue refresh. With N API processes the window
    queries run once per period, not N times."""

    def __init__(self, max_age_s: float, window_s: float, half_life_s: float, lease_s: float = 120.0,
                 holder: str | None = None) -> None:
        self.max_age_s, self.window_s, self.half_life_s, self.lease_s = max_age_s, window_s, half_life_s, lease_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.computed = 0  # how many times this process ran the window queries

    def _usable(self, row: dict[str, Any], fresh_after: float) -> bool:
        return (row.get("lists") is not None and row.get("computed_at") is not None
                and row["computed_at"] >= fresh_after and row.get("window_s") == self.window_s
                and row.get("half_life_s") == self.half_life_s)

    @staticmethod
    def _parse(row: dict[str, Any]) -> tuple[Lists, float, PopularWindow | None]:
        data = json.loads(row["lists"])
        lists = ([(str(i), float(sc)) for i, sc in data["popular"]],
                 {str(c): [(str(i), float(sc)) for i, sc in v] for c, v in data["by_category"].items()})
        w = data.get("window")  # absent in lists stored before the window was recorded
        win = PopularWindow(float(w["since"]), float(w["half_life_s"]), bool(w["widened"])) if w else None
        return lists, float(row["computed_at"]), win

    async def get(self, store: Any, compute: Callable[[], Awaitable[tuple[Lists, PopularWindow]]]
                  ) -> tuple[Lists, float, PopularWindow | None] | None:
        """The shared lists, when they were computed and over which window; None while another
        process computes them."""
        wall = time.time()
        row = (await store.read("recs/popular_shared"))[0]
        if self._usable(row, wall - self.max_age_s):
            return self._parse(row)
        mine = await store.write("recs/popular_lease", holder=self.holder, now=wall, lease_s=self.lease_s,
                                 stale_before=wall - self.max_age_s)
        if not mine:
            return None
        lists, win = await compute()
        self.computed += 1
        data = {"popular": [[i, sc] for i, sc in lists[0]],
                "by_category": {c: [[i, sc] for i, sc in v] for c, v in lists[1].items()},
                "window": {"since": win.since, "half_life_s": win.half_life_s, "widened": win.widened}}
        await store.write("recs/popular_store", holder=self.holder, computed_at=wall, window_s=self.window_s,
                          half_life_s=self.half_life_s, lists=json.dumps(data))
        return lists, wall, win
