"""Write validated rows to Neo4j in batches, one transaction per batch, idempotently.

A batch is all-or-nothing: either every good row of it is written or none is. Bad rows (they
failed validation, or name an item that does not exist) are reported with their source and line
and, under ``on_error="skip"``, left out; under ``"stop"`` the load stops before the batch that
holds the first bad row is written, so nothing is half-written.

Interactions go through a pipeline (read ‖ prepare ‖ commit) with several commit lanes: a batch is
split by user into one transaction per lane, so the lanes' transactions never share a user and
take their item locks in the same (ascending) order; they run concurrently without deadlocks.

One module over 400 lines: the stages of that pipeline share the batch's columns and the
remembered element ids; split, each stage would import the others' internals.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from tqdm import tqdm

from graphrec.core.errors import BadRowError, QueryError
from graphrec.core.graph.store import GraphStore, Statement
from graphrec.core.records import InteractionRow, newest_two

#: How many bad rows a report keeps in full (all are counted).
MAX_REPORTED = 1000
#: Node ids (Neo4j element ids) remembered per label; the map is dropped when it grows past this.
MAX_CACHED_IDS = 2_000_000
#: While a load runs, cyclic garbage is collected every this many rows (see _gc_paused).
GC_EVERY_ROWS = 100_000


@dataclass
class Source:
    """Where a row came from, for error messages."""

    file: str
    line: int


class LineSources(Sequence[Source]):
    """The sources of ``count`` consecutive lines of one file, from ``first`` (no object per row)."""

    def __init__(self, file: str, first: int, count: int) -> None:
        self.file, self.first, self.size = file, first, count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, n: int) -> Source: ...
    @overload
    def __getitem__(self, n: slice) -> Sequence[Source]: ...
    def __getitem__(self, n: int | slice) -> Source | Sequence[Source]:
        if isinstance(n, slice):
            start, stop, step = n.indices(self.size)
            if step != 1:
                return [self[k] for k in range(start, stop, step)]
            return LineSources(self.file, self.first + start, max(0, stop - start))
        if not -self.size <= n < self.size:
            raise IndexError(n)
        return Source(self.file, self.first + (n % self.size))


@dataclass
class InteractionBatch:
    """Valid interactions as columns, one list per field: the writer's unit of work.

    Loaders that validate row by row hand the writer ``(InteractionRow, Source)`` pairs and the
    writer builds these (:meth:`from_rows`); a source of valid data in bulk (loaders.synthetic)
    yields them directly, with no object per row. ``type`` holds relationship types
    (InteractionType values), ``key`` idempotency keys (graphrec.core.records.interaction_key for rows
    that came without one), ``sources[n]`` where row ``n`` came from (for error reports)."""

    type: list[str]
    key: list[str]
    user: list[str]
    item: list[str]
    ts: list[float]
    value: list[float | None]
    dwell: list[float | None]
    session: list[str | None]
    sources: Sequence[Source]

    def __post_init__(self) -> None:
        n = len(self.key)
        if any(len(c) != n for c in (self.type, self.user, self.item, self.ts, self.value, self.dwell,
                                     self.session, self.sources)):
            raise ValueError("the columns of an InteractionBatch must have equal lengths")

    def __len__(self) -> int:
        return len(self.key)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[InteractionRow, Source]]) -> InteractionBatch:
        return cls(type=[r.type.value for r, _ in rows], key=[r.idempotency_key for r, _ in rows],
                   user=[r.user_id for r, _ in rows], item=[r.item_id for r, _ in rows],
                   ts=[r.ts for r, _ in rows], value=[r.value for r, _ in rows],
                   dwell=[r.dwell_seconds for r, _ in rows], session=[r.session_id for r, _ in rows],
                   sources=[src for _, src in rows])

    def slice(self, start: int, stop: int) -> InteractionBatch:
        return InteractionBatch(self.type[start:stop], self.key[start:stop], self.user[start:stop],
                                self.item[start:stop], self.ts[start:stop], self.value[start:stop],
                                self.dwell[start:stop], self.session[start:stop], self.sources[start:stop])


def merge_item_param(have: dict[str, Any], later: dict[str, Any]) -> None:
    """Fold a later row of the same item (``ItemRow.to_param()``) into ``have`` as load/items
    would apply it: properties updated, categories and tags replaced when the later row gives
    them, ``created_at`` kept (it is set on create only)."""
    have["props"].update(later["props"])
    for k in ("categories", "tags"):
        if later[k] is not None:
            have[k] = later[k]


@dataclass
class LoadReport:
    kind: str
    rows: int = 0
    written: int = 0  # rows that created a node/relationship (not already present)
    unchanged: int = 0  # rows already present (idempotent re-load, duplicates)
    bad: int = 0
    errors: list[BadRowError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add_bad(self, err: BadRowError) -> None:
        self.bad += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(err)

    def summary(self) -> str:
        return (f"{self.kind}: {self.rows:,} rows, {self.written:,} new, {self.unchanged:,} already present, "
                f"{self.bad:,} bad, {self.seconds:.1f}s ({self.rate:,.0f} rows/s)")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": self.rows, "written": self.written, "unchanged": self.unchanged,
                "bad": self.bad, "seconds": round(self.seconds, 3), "rows_per_s": round(self.rate, 1),
                "errors": [{"file": e.file, "line": e.line, "reason": e.reason} for e in self.errors[:50]]}


Item = tuple[Any, Source]  # a validated row (or a BadRowError) with its source


@dataclass
class _Columns:
    """Some rows of a batch, as the parameters of load/interactions_create(_new_users)."""

    type: list[str]
    key: list[str]
    user: list[str]
    item: list[str]
    ie: list[str]  # element ids of the items
    ue: list[str | None]  # ... and of the users (None: created by this transaction)
    ts: list[float]
    value: list[float | None]
    dwell: list[float | None]
    session: list[str | None]

    @classmethod
    def take(cls, b: InteractionBatch, ix: list[int], item_eids: dict[str, str],
             user_eids: dict[str, str]) -> _Columns:
        user, item = [b.user[n] for n in ix], [b.item[n] for n in ix]
        return cls(type=[b.type[n] for n in ix], key=[b.key[n] for n in ix], user=user, item=item,
                   ie=[item_eids[i] for i in item], ue=[user_eids.get(u) for u in user],
                   ts=[b.ts[n] for n in ix], value=[b.value[n] for n in ix], dwell=[b.dwell[n] for n in ix],
                   session=[b.session[n] for n in ix])

    def rows(self) -> Iterator[dict[str, Any]]:
        for j in range(len(self.key)):
            yield {"type": self.type[j], "key": self.key[j], "user": self.user[j], "item": self.item[j],
                   "ts": self.ts[j], "value": self.value[j], "dwell": self.dwell[j], "session": self.session[j]}


@dataclass
class _Part:
    """One lane's share of a prepared batch: new rows of users whose element ids are remembered
    (``known``) and of the others, found by id (``fresh``: among them the users this transaction
    creates, ``new_users``), and the batch's sessions."""

    known: _Columns | None = None
    fresh: _Columns | None = None
    new_users: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    max_ts: float = 0.0
    runner_up: float | None = None  # the newest time before max_ts (the clock needs two)

    def __bool__(self) -> bool:
        return self.known is not None or self.fresh is not None


@dataclass
class _Prepared:
    parts: list[_Part]
    bad: list[BadRowError] = field(default_factory=list)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a load runs.

    A load allocates millions of short-lived containers (rows, parameter maps), which keeps
    triggering collections that walk every row in flight: a large share of the loader's CPU (a
    profile of a load shows it). Reference counting frees
    the rows; the few reference cycles (the driver's) are collected every ``GC_EVERY_ROWS`` rows.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batches(rows: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class GraphWriter:
    """Batched, transactional, idempotent writes of users, items and interactions."""

    def __init__(self, store: GraphStore, batch_size: int = 10_000,
                 on_error: Literal["skip", "stop"] = "skip", progress: bool = True, writers: int = 2) -> None:
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.store = store
        self.writers = writers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphrec-load-prepare")
        self._lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"graphrec-load-commit-{k}")
                       for k in range(writers)]
        self._check_keys = True  # set again by every interactions() load: its first batch is checked (see _prepare)
        # Element ids of items and users seen so far: a commit finds its nodes by element id (a
        # cheap seek) instead of an index lookup per row. Every use re-checks the node's id
        # property, and a stale entry fails the whole transaction (see load/interactions_create).
        self._item_eids: dict[str, str] = {}
        self._user_eids: dict[str, str] = {}
        self._stale_ids = False
        self.batch_size = batch_size
        self.on_error = on_error
        self.progress = progress

    def _bar(self, desc: str, total: int | None) -> tqdm:
        return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, disable=not self.progress, mininterval=0.5,
                    leave=False)  # one bar at a time: the step's report is its final line

    def _split_bad(self, batch: list[Item], report: LoadReport) -> list[tuple[Any, Source]]:
        good = []
        for row, src in batch:
            if isinstance(row, BadRowError):
                report.add_bad(row)
                if self.on_error == "stop":
                    raise row
            else:
                good.append((row, src))
        return good

    def users(self, rows: Iterable[Item], total: int | None = None) -> LoadReport:
        report = LoadReport("users")
        t0 = time.perf_counter()
        with self._bar("users", total) as bar:
            for batch in _batches(rows, self.batch_size):
                report.rows += len(batch)
                good = self._split_bad(batch, report)
                if good:
                    params = [u.to_param() for u, _ in good]
                    c = self.store.write_many([("load/users", None, {"rows": params, "now": time.time()})])[0]
                    report.written += c.get("nodes_created", 0)
                    report.unchanged += len(good) - c.get("nodes_created", 0)
                bar.update(len(batch))
        report.seconds = time.perf_counter() - t0
        return report

    def items(self, rows: Iterable[Item], total: int | None = None) -> LoadReport:
        report = LoadReport("items")
        t0 = time.perf_counter()
        with self._bar("items", total) as bar:
            for batch in _batches(rows, max(1, self.batch_size // 4)):
                report.rows += len(batch)
                good = self._split_bad(batch, report)
                if good:
                    # The same id twice in one batch: one row, as if they came in two batches
                    # (properties updated, categories/tags replaced when given, created_at of
                    # the first), so the graph does not depend on the batch size.
                    by_id: dict[str, dict[str, Any]] = {}
                    for it, _ in good:
                        p = it.to_param()
                        if it.id in by_id:
                            merge_item_param(by_id[it.id], p)
                        else:
                            by_id[it.id] = p
                    params = list(by_id.values())
                    existing = self.store.read("load/existing_items", ids=list(by_id))[0]["found"]
                    self.store.write_many([("load/items", None, {"rows": params, "now": time.time()})])
                    report.written += len(by_id) - existing
                    report.unchanged += len(good) - (len(by_id) - existing)
                bar.update(len(batch))
        report.seconds = time.perf_counter() - t0
        return report

    def interactions(self, rows: Iterable[Item | InteractionBatch], total: int | None = None) -> LoadReport:
        """Write interactions batch by batch, in a pipeline: the caller's thread reads and
        validates batch k+2 while batch k+1 is *prepared* (one read: unknown items and users;
        stored keys on the first batch and while batches meet them) and batch k is *committed*,
        split by user into one transaction per lane (``writers``). A lane commits its transactions
        in order; lanes run side by side. Under ``on_error="stop"`` a bad row stops the load after every batch before
        it is committed and before anything of its own batch is. A batch prepared before its
        predecessor committed can miss a key or a user that predecessor adds; the key constraint
        and MERGE cover both.

        ``rows`` holds validated rows with their sources (bad ones as BadRowError), or
        :class:`InteractionBatch` columns of valid rows (cut into ``batch_size`` pieces), or both."""
        report = LoadReport("interactions")
        t0 = time.perf_counter()
        self._check_keys = True  # the first batch is checked (see _prepare)
        prepared: Future[_Prepared] | None = None
        nxt: Future[_Prepared] | None = None
        commits: deque[Future[int]] = deque()

        def settle(fut: Future[int]) -> None:
            report.written += fut.result()

        def commit(prep: Future[_Prepared]) -> None:
            p = prep.result()  # a bad row under "stop" raises here, before anything of it is written
            for e in p.bad:
                report.add_bad(e)
            for lane, part in zip(self._lanes, p.parts, strict=True):
                if part:
                    commits.append(lane.submit(self._commit, part))
            while len(commits) > 2 * self.writers:  # bounded: at most two batches in flight
                settle(commits.popleft())

        try:
            with _gc_paused(), self._bar("interactions", total) as bar:
                for batch, seen in self._interaction_batches(rows, report):
                    nxt = self._pool.submit(self._prepare, batch)
                    if prepared is not None:
                        commit(prepared)
                    prepared = nxt
                    bar.update(seen)
                if prepared is not None:
                    commit(prepared)
                    prepared = None
                while commits:
                    settle(commits.popleft())
        finally:
            # On any error: let the lanes finish what they were given (counted when it committed),
            # so the report says what is in the graph, then raise the first error.
            for fut in (prepared, nxt):
                if fut is not None:
                    fut.exception()
            while commits:
                done = commits.popleft()
                if done.exception() is None:
                    settle(done)
        report.unchanged = report.rows - report.bad - report.written
        report.seconds = time.perf_counter() - t0
        return report

    def _interaction_batches(self, rows: Iterable[Item | InteractionBatch],
                             report: LoadReport) -> Iterator[tuple[InteractionBatch, int]]:
        """Batches of at most ``batch_size`` valid rows as columns, each with the number of input
        rows it stands for (bad rows included; they are reported here, and under "stop" raise)."""

        def counted(n: int) -> None:
            if report.rows // GC_EVERY_ROWS != (report.rows + n) // GC_EVERY_ROWS:
                gc.collect(1)
            report.rows += n

        def of_rows(batch: list[Item]) -> tuple[InteractionBatch, int]:
            counted(len(batch))
            good: list[tuple[InteractionRow, Source]] = self._split_bad(batch, report)
            return InteractionBatch.from_rows(good), len(batch)

        pending: list[Item] = []
        for x in rows:
            if isinstance(x, InteractionBatch):
                if pending:
                    yield of_rows(pending)
                    pending = []
                for lo in range(0, len(x), self.batch_size):
                    part = x if len(x) <= self.batch_size else x.slice(lo, lo + self.batch_size)
                    counted(len(part))
                    yield part, len(part)
            else:
                pending.append(x)
                if len(pending) >= self.batch_size:
                    yield of_rows(pending)
                    pending = []
        if pending:
            yield of_rows(pending)

    def _resolve(self, item_ids: set[str], user_ids: set[str]) -> tuple[set[str], set[str]]:
        """Element ids of the batch's items and users (cached); returns the ids not in the graph."""
        if self._stale_ids:
            self._stale_ids = False
            self._item_eids.clear()
            self._user_eids.clear()
        # A full map is dropped before the lookup, never after it: every id of this batch that is
        # in the graph is in the map when the batch is prepared (it may pass the bound by a batch).
        for cache in (self._item_eids, self._user_eids):
            if len(cache) >= MAX_CACHED_IDS:
                cache.clear()
        items = [i for i in item_ids if i not in self._item_eids]
        users = [u for u in user_ids if u not in self._user_eids]
        if not items and not users:
            return set(), set()
        found = self.store.read("load/resolve_refs", item_ids=sorted(items), user_ids=sorted(users))[0]
        self._item_eids.update(found["items"])
        self._user_eids.update(found["users"])
        return ({i for i in items if i not in self._item_eids}, {u for u in users if u not in self._user_eids})

    def _prepare(self, batch: InteractionBatch) -> _Prepared:
        """One read for the batch: drop rows naming unknown items (reported; under "stop" the
        load stops here), keys already stored and duplicates inside the batch; note new users;
        split the rows by user into the lanes' parts."""
        out = _Prepared(parts=[_Part() for _ in self._lanes])
        if not len(batch):
            return out
        items, users, keys, types = batch.item, batch.user, batch.key, batch.type
        missing, new_users = self._resolve(set(items), set(users))
        idx: Iterable[int] = range(len(batch))
        if missing:
            kept = []
            for n in idx:
                if items[n] in missing:
                    src = batch.sources[n]
                    err = BadRowError(src.file, src.line, f"unknown item id {items[n]!r}")
                    if self.on_error == "stop":
                        raise err
                    out.bad.append(err)
                else:
                    kept.append(n)
            idx = kept
        # Drop keys already stored (and duplicates inside the batch): CREATE is cheaper than MERGE.
        # The check costs the server as much CPU as a third of the write, so it runs on the first
        # batch of a load and then only while batches meet stored keys (a re-load, overlapping
        # files): a fresh load goes straight to CREATE after its first batch, a re-load never
        # tries to CREATE what is stored, and the key constraint sends a batch that meets a key
        # stored since its check (a concurrent writer) to MERGE.
        present: set[str] = set()
        if self._check_keys:
            by_type: dict[str, list[str]] = defaultdict(list)
            for n in idx:
                by_type[types[n]].append(keys[n])
            for t, ks in by_type.items():
                present.update(self.store.read("load/interactions_check", {"rel": t}, keys=ks)[0]["present"])
            if not present:
                self._check_keys = False  # back to the optimistic path
        seen: set[str] = set()
        lanes: list[list[int]] = [[] for _ in out.parts]
        nl = len(lanes)
        for n in idx:
            key = keys[n]
            if key in present or key in seen:
                continue
            seen.add(key)
            lanes[hash(users[n]) % nl].append(n)
        for part, ix in zip(out.parts, lanes, strict=True):
            if ix:
                self._fill(part, batch, ix, new_users)
        return out

    def _fill(self, part: _Part, b: InteractionBatch, ix: list[int], new_users: set[str]) -> None:
        """A lane's rows as columns (sorted by item: every transaction takes its item locks in the
        same order), its new users with their first time, its sessions with their time span."""
        users, ts, sessions = b.user, b.ts, b.session
        user_eids = self._user_eids
        ix.sort(key=b.item.__getitem__)
        known = [n for n in ix if users[n] in user_eids]
        fresh = [n for n in ix if users[n] not in user_eids] if len(known) < len(ix) else []  # found by id
        if new_users:
            first: dict[str, float] = {}
            for n in fresh:
                u = users[n]
                if u in new_users and (u not in first or ts[n] < first[u]):
                    first[u] = ts[n]
            part.new_users = [{"user": u, "ts": t} for u, t in sorted(first.items())]
        if known:
            part.known = _Columns.take(b, known, self._item_eids, user_eids)
        if fresh:
            part.fresh = _Columns.take(b, fresh, self._item_eids, {})
        # One row per session with its time span (sessions are MERGEd once per batch), and one
        # more per other user of it, so every user of a session is linked to it (HAS_SESSION).
        span: dict[str, list[Any]] = {}
        for n in ix:
            sid = sessions[n]
            if sid:
                t = ts[n]
                cur = span.get(sid)
                if cur is None:
                    span[sid] = [users[n], t, t, None]
                    continue
                if t < cur[1]:
                    cur[1] = t
                elif t > cur[2]:
                    cur[2] = t
                if users[n] != cur[0]:
                    if cur[3] is None:
                        cur[3] = set()
                    cur[3].add(users[n])
        part.sessions = [{"session": sid, "user": u, "first_ts": lo, "last_ts": hi}
                         for sid, (first_user, lo, hi, others) in sorted(span.items())
                         for u in [first_user, *sorted(others or ())]]
        part.max_ts, part.runner_up = newest_two(ts[n] for n in ix)

    def _commit(self, part: _Part) -> int:
        tail: list[Statement] = (
            [("load/sessions", None, {"rows": part.sessions})] if part.sessions else [])
        tail.append(("load/advance_clock", None, {"ts": part.max_ts, "runner_up": part.runner_up, "slack": 0.0}))  # last: one lock, taken last
        writes: list[Statement] = []
        if part.new_users:
            writes.append(("load/users_first_sight", None, {"rows": part.new_users}))
        first = len(writes)
        if (k := part.known) is not None:
            writes.append(("load/interactions_create", None, {
                "type": k.type, "key": k.key, "user": k.user, "item": k.item, "ie": k.ie, "ue": k.ue,
                "ts": k.ts, "value": k.value, "dwell": k.dwell, "session": k.session}))
        if (f := part.fresh) is not None:
            writes.append(("load/interactions_create_new_users", None, {
                "type": f.type, "key": f.key, "user": f.user, "item": f.item, "ie": f.ie,
                "ts": f.ts, "value": f.value, "dwell": f.dwell, "session": f.session}))
        try:
            counters = self.store.write_many([*writes, *tail])
            return sum(c["relationships_created"] for c in counters[first:len(writes)])
        except QueryError:
            # Some keys were stored since the check (a concurrent writer) or were not checked (a
            # batch prepared before its predecessor committed them), or a remembered element id
            # went stale (the node was deleted):
            # MERGE by id instead, check keys before the next batches and forget the element ids.
            self._check_keys = True
            self._stale_ids = True
            by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for cols in (part.known, part.fresh):
                for q in cols.rows() if cols is not None else ():
                    by_type[q["type"]].append(q)
            merge = [("load/interactions", {"rel": t}, {"rows": params}) for t, params in sorted(by_type.items())]
            counters = self.store.write_many([*merge, *tail])
            # Only the interaction statements count (sessions add HAS_SESSION/INCLUDES links).
            return sum(c["relationships_created"] for c in counters[: len(merge)])
