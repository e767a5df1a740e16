"""Write validated rows to Neo4j in batches, one transaction per batch, idempotently.

A batch is all-or-nothing: either every good row of it is written or none is. Bad rows (they
failed validation, or name an item that does not exist) are reported with their source and line
and, under ``on_error="skip"``, left out; under ``"stop"`` the load stops before the batch that
holds the first bad row is written, so nothing is half-written.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm import tqdm

from graphrec.errors import BadRowError, QueryError
from graphrec.graph.store import GraphStore
from loaders.records import InteractionRow, ItemRow

#: How many bad rows a report keeps in full (all are counted).
MAX_REPORTED = 1000


@dataclass
class Source:
    """Where a row came from, for error messages."""

    file: str
    line: int


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
class _Prepared:
    """A batch of interactions ready to commit: new rows by type, users to create, bad rows."""

    fresh: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    new_users: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadRowError] = field(default_factory=list)


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
                 on_error: Literal["skip", "stop"] = "skip", progress: bool = True) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphrec-load-prepare")
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphrec-load-commit")
        self._check_keys = False  # see _prepare
        self.batch_size = batch_size
        self.on_error = on_error
        self.progress = progress

    def _bar(self, desc: str, total: int | None) -> tqdm:
        return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, disable=not self.progress, mininterval=0.5)

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
                    # The same id twice in one batch: the last row wins, once.
                    by_id: dict[str, ItemRow] = {}
                    for it, _ in good:
                        by_id[it.id] = it
                    params = [it.to_param() for it in by_id.values()]
                    existing = self.store.read("load/existing_items", ids=list(by_id))[0]["found"]
                    self.store.write_many([("load/items", None, {"rows": params, "now": time.time()})])
                    report.written += len(by_id) - existing
                    report.unchanged += len(good) - (len(by_id) - existing)
                bar.update(len(batch))
        report.seconds = time.perf_counter() - t0
        return report

    def interactions(self, rows: Iterable[Item], total: int | None = None) -> LoadReport:
        """Write interactions batch by batch, in a three-stage pipeline: the caller's thread reads
        and validates batch k+2 while batch k+1 is *prepared* (reads: unknown items and users, and
        keys already stored once a batch met one) and batch k is *committed* (one write transaction). Commits happen
        in order, one at a time: parallel writers deadlock on popular items' relationship groups
        (measured in bench/load). A batch prepared before its predecessor committed can miss a
        key or a user that predecessor adds; the key constraint and MERGE cover both."""
        report = LoadReport("interactions")
        t0 = time.perf_counter()
        prepared: Future[_Prepared] | None = None
        committed: Future[int] | None = None

        def settle(fut: Future[int]) -> None:
            report.written += fut.result()

        def commit(prep: Future[_Prepared]) -> Future[int]:
            p = prep.result()  # a bad row under "stop" raises here, before anything of it is written
            for e in p.bad:
                report.add_bad(e)
            return self._write_pool.submit(self._commit, p)

        with self._bar("interactions", total) as bar:
            for batch in _batches(rows, self.batch_size):
                report.rows += len(batch)
                good: list[tuple[InteractionRow, Source]] = self._split_bad(batch, report)
                nxt = self._pool.submit(self._prepare, good)
                if prepared is not None:
                    if committed is not None:
                        settle(committed)
                    committed = commit(prepared)
                prepared = nxt
                bar.update(len(batch))
            if prepared is not None:
                if committed is not None:
                    settle(committed)
                committed = commit(prepared)
            if committed is not None:
                settle(committed)
        report.unchanged = report.rows - report.bad - report.written
        report.seconds = time.perf_counter() - t0
        return report

    def _prepare(self, good: list[tuple[InteractionRow, Source]]) -> _Prepared:
        """One read for the batch: drop rows naming unknown items (reported; under "stop" the
        load stops here), keys already stored and duplicates inside the batch; note new users."""
        out = _Prepared()
        if not good:
            return out
        item_ids = sorted({r.item_id for r, _ in good})
        user_ids = sorted({r.user_id for r, _ in good})
        refs = self.store.read("load/missing_refs", item_ids=item_ids, user_ids=user_ids)[0]
        missing = set(refs["missing_items"])
        if missing:
            kept = []
            for r, src in good:
                if r.item_id in missing:
                    err = BadRowError(src.file, src.line, f"unknown item id {r.item_id!r}")
                    if self.on_error == "stop":
                        raise err
                    out.bad.append(err)
                else:
                    kept.append((r, src))
            good = kept
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r, _ in good:
            by_type[r.type.value].append(r.to_param())
        # Drop keys already stored (and duplicates inside the batch): CREATE is cheaper than MERGE.
        # The check costs the server as much CPU as a third of the write, so it runs only once a
        # batch met stored keys (a re-load, overlapping files); a fresh load goes straight to
        # CREATE, and the key constraint sends a batch that meets a stored key to MERGE.
        check = self._check_keys
        found_any = False
        for t, params in by_type.items():
            present: set[str] = set()
            if check:
                present = set(self.store.read("load/interactions_check", {"rel": t},
                                              keys=[p["key"] for p in params])[0]["present"])
                found_any = found_any or bool(present)
            seen: set[str] = set()
            keep = []
            for p in params:
                if p["key"] not in present and p["key"] not in seen:
                    seen.add(p["key"])
                    keep.append(p)
            if keep:
                out.fresh[t] = keep
        if check and not found_any:
            self._check_keys = False  # back to the optimistic path
        new_users = set(refs["missing_users"])
        first: dict[str, float] = {}
        for params in out.fresh.values():
            for p in params:
                if p["user"] in new_users and (p["user"] not in first or p["ts"] < first[p["user"]]):
                    first[p["user"]] = p["ts"]
        out.new_users = [{"user": u, "ts": ts} for u, ts in sorted(first.items())]
        return out

    def _commit(self, p: _Prepared) -> int:
        fresh = p.fresh
        if not fresh:
            return 0
        # Rows sorted by item: every transaction takes its node locks in the same order.
        all_rows = sorted(({**q, "type": t} for t, params in fresh.items() for q in params),
                          key=lambda q: (q["item"], q["user"]))
        # One row per session with its time span: sessions are MERGEd once per batch.
        span: dict[str, dict[str, Any]] = {}
        for q in all_rows:
            sid = q["session"]
            if sid:
                cur = span.get(sid)
                if cur is None:
                    span[sid] = {"session": sid, "user": q["user"], "first_ts": q["ts"], "last_ts": q["ts"]}
                else:
                    cur["first_ts"] = min(cur["first_ts"], q["ts"])
                    cur["last_ts"] = max(cur["last_ts"], q["ts"])
        sessions = sorted(span.values(), key=lambda q: q["session"])
        tail: list[tuple[str, dict[str, str] | None, dict[str, Any]]] = (
            [("load/sessions", None, {"rows": sessions})] if sessions else [])
        tail.append(("load/advance_clock", None, {"ts": max(q["ts"] for q in all_rows)}))
        head: list[tuple[str, dict[str, str] | None, dict[str, Any]]] = (
            [("load/users_first_sight", None, {"rows": p.new_users})] if p.new_users else [])
        try:
            counters = self.store.write_many([*head, ("load/interactions_create", None, {"rows": all_rows}), *tail])
            return counters[len(head)]["relationships_created"]
        except QueryError:
            # Some keys were stored already (a re-load without the check, or a concurrent writer
            # since the check): MERGE instead, and check keys before the next batches.
            self._check_keys = True
            merge = [("load/interactions", {"rel": t}, {"rows": params}) for t, params in sorted(fresh.items())]
            counters = self.store.write_many([*merge, *tail])
            # Only the interaction statements count (sessions add HAS_SESSION/INCLUDES links).
            return sum(c["relationships_created"] for c in counters[: len(merge)])
