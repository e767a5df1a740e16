"""Bulk import: the first load of an empty graph through ``neo4j-admin database import``.

The online loader (:class:`loaders.writer.GraphWriter`) writes over Bolt in transactions, with
the server up and every constraint checked per row: it is what re-loads, appends and concurrent
writers need (its rate: ``python -m bench.load``). A first load of
millions of interactions into an empty database does not need any of that. :class:`BulkImport`
takes the same validated rows (users, items, interactions or :class:`InteractionBatch` columns),
does what the online loader's queries would do to them in memory — duplicates by key dropped,
users created on first sight, items without a creation time dated by their first interaction
(load/created_from_first_interaction), sessions with their span, the clock, unknown items reported as
bad rows — writes the import tool's CSV files, then stops the local server, imports, starts it
again and applies the schema (constraints and indexes are built once, over the whole graph).

The graph that comes out is the one the online loader would have written from the same rows
(``tests/integration/test_bulk.py`` compares them); differences: an empty string is not stored
(the import tool reads an empty field as no value), and an attribute column whose rows hold
values of different types (a number in one row, a string in another) is stored with one type
(numbers as floats when ints and floats mix, otherwise strings; the report says which).

Refused, with :class:`BulkImportError`, when Neo4j is not the local server graphrec manages
(``GRAPHREC_NEO4J_URI`` set: run ``neo4j-admin database import`` there), or when the database
holds anything but graphrec's bookkeeping nodes: the import replaces the whole database, so it
never runs where it could destroy data. Memory: the keys of all interactions (for duplicates),
every user and item, and every session are held until the import (a few GB at tens of millions of interactions).

One module over 400 lines: one pipeline from rows to the import tool's files, whose steps share
the in-memory key, user, item and session maps.
"""

from __future__ import annotations

import csv
import functools
import math
import multiprocessing as mp
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm import tqdm

from graphrec.core.config import Settings
from graphrec.core.errors import BadRowError, BulkImportError
from graphrec.core.records import InteractionRow
from loaders.writer import InteractionBatch, Item, LoadReport, merge_item_param

#: Interactions written to the CSV file per ``writerows`` call.
CHUNK = 10_000
#: Constraints and indexes created side by side after the import (see graphrec.core.graph.schema.apply).
SCHEMA_WORKERS = 3
#: Item properties graphrec sets itself: an attribute of the same name gives way (as in load/items).
ITEM_OWN = ("id", "title", "year", "available", "description", "created_at", "updated_at")


@dataclass
class BulkReport:
    """What a bulk import did: the rows of each kind, and where the time went."""

    reports: list[LoadReport]
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase
    interactions: int = 0  # relationships imported as interactions
    nodes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    @property
    def rate(self) -> float:
        """Interactions per second, from the first row read to the graph answering with its indexes built."""
        return self.interactions / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"reports": [r.to_dict() for r in self.reports], "interactions": self.interactions,
                "nodes": self.nodes, "phases_s": {k: round(v, 2) for k, v in self.phases.items()},
                "seconds": round(self.seconds, 2), "interactions_per_s": round(self.rate), "notes": self.notes}


class _Columns:
    """Attribute columns of users or items: the union of the rows' names, one Neo4j type each."""

    def __init__(self) -> None:
        self.types: dict[str, set[type]] = {}

    def see(self, attrs: dict[str, Any]) -> None:
        for k, v in attrs.items():
            self.types.setdefault(k, set()).add(type(v))

    def header(self, skip: Iterable[str] = ()) -> tuple[list[str], list[str], list[str]]:
        """(names, "name:type" header fields, notes on columns of mixed types)."""
        names = sorted(k for k in self.types if k not in set(skip))
        fields, notes = [], []
        for k in names:
            ts = self.types[k]
            if ts == {bool}:
                kind = "boolean"
            elif ts == {int}:
                kind = "long"
            elif ts <= {int, float}:
                kind = "double"
            else:
                kind = "string"
            if len(ts) > 1:
                notes.append(f"attribute {k!r} holds {', '.join(sorted(t.__name__ for t in ts))} values: stored as {kind}")
            fields.append(f"{k}:{kind}")
        return names, fields, notes


def _cell(v: Any) -> Any:
    """A property value as the import tool reads it (booleans lower-case, None empty)."""
    if v is None:
        return None
    if v is True:
        return "true"
    if v is False:
        return "false"
    return v


class BulkImport:
    """Collect rows, then :meth:`commit` them into the empty local database in one import.

    Use it as a context manager: leaving it without a commit (an error, a bad row under
    ``on_error="stop"``) removes the files and leaves Neo4j untouched."""

    def __init__(self, settings: Settings, on_error: Literal["skip", "stop"] = "skip", progress: bool = True) -> None:
        from graphrec.core.neo4j_server import Neo4jServer

        if not settings.neo4j.managed:
            raise BulkImportError(
                "bulk import works on the local Neo4j graphrec manages (it stops the server and replaces "
                "the database); for the server at GRAPHREC_NEO4J_URI use the online loader, or run "
                "neo4j-admin database import on that server")
        self.settings = settings
        self.server = Neo4jServer(settings)
        self.on_error = on_error
        self.progress = progress
        self.dir = self.server.home / "import" / f"bulk-{int(time.time())}"
        self._t0 = time.perf_counter()
        self._users: dict[str, list[Any]] = {}  # id -> [created_at, attributes]
        self._seen: dict[str, float] = {}  # users named only by interactions -> their first ts
        self._items: dict[str, dict[str, Any]] = {}
        # Items whose creation time is unknown (read from a file without created_at) -> the time
        # of their first interaction, once one is read (load/created_from_first_interaction).
        self._undated: dict[str, float | None] = {}
        self._keys: set[str] = set()
        self._sessions: dict[str, list[Any]] = {}  # id -> [first user, first ts, last ts]
        self._session_links: set[tuple[str, str]] = set()  # (user, session) beyond a session's first user
        self._latest = -math.inf
        self._runner_up = -math.inf  # the newest time before _latest (the clock is the older of the two)
        self._interactions = 0
        self._reports: list[LoadReport] = []
        self._file: Any = None
        self._writer: Any = None
        self._committed = False
        self._parts: list[str] = []  # interaction files written by parallel parts

    # -- the target --------------------------------------------------------------------------
    def _check_target(self) -> None:
        """Start the local server if needed and refuse unless its database is empty."""
        from graphrec.core.graph.store import GraphStore

        self.server.start()
        with GraphStore.from_settings(self.settings) as store:
            row = store.read("load/bulk_target")[0]
        if row["nodes"]:
            raise BulkImportError(
                f"the database holds {row['nodes']:,} nodes: a bulk import replaces the whole database, so it "
                "only runs on an empty one (load more data with the online loader: graphrec load ...)")

    def __enter__(self) -> BulkImport:
        self._check_target()
        # The server is asked to stop now and shuts down while rows are read: nothing can write
        # to the database between the check and the import, and the stop costs no wall time. (No
        # thread waits for it: interaction_parts forks, and a fork must not copy a busy thread.)
        self.server.stop(wait=False)
        self._t0 = time.perf_counter()  # the rate counts from the first row read
        self.dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.dir / "interactions.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if not self._committed:  # nothing imported: the server comes back as it was, untouched
            self.server.stop()
            self.server.start()

    # -- rows ------------------------------------------------------------------------------
    def _bar(self, desc: str, total: int | None) -> tqdm:
        return tqdm(total=total, desc=f"{desc} (to import)", unit=" rows", unit_scale=True,
                    disable=not self.progress, mininterval=0.5, leave=False)  # the report is the final line

    def _bad(self, err: BadRowError, report: LoadReport) -> None:
        report.add_bad(err)
        if self.on_error == "stop":
            raise err

    def _valid(self, rows: Iterable[Item], report: LoadReport, total: int | None) -> Iterator[Any]:
        """The valid rows of ``rows``, counted in ``report`` (bad ones reported, or raised under
        "stop"); at the end the report gets its time and joins the import's reports."""
        t0 = time.perf_counter()
        with self._bar(report.kind, total) as bar:
            for row, _ in rows:
                report.rows += 1
                bar.update()
                if isinstance(row, BadRowError):
                    self._bad(row, report)
                else:
                    yield row
        report.seconds = time.perf_counter() - t0
        self._reports.append(report)

    def users(self, rows: Iterable[Item], total: int | None = None) -> LoadReport:
        """Users; a repeated id updates the attributes (as load/users' ``SET u += props``)."""
        report, now = LoadReport("users"), time.time()
        for u in self._valid(rows, report, total):
            have = self._users.get(u.id)
            if have is not None:
                have[1].update(u.attributes)
                report.unchanged += 1
                continue
            self._users[u.id] = [u.created_at if u.created_at is not None else now, dict(u.attributes)]
            if u.id in self._seen:  # already created on first sight by an interaction
                report.unchanged += 1
            else:
                report.written += 1
        return report

    def items(self, rows: Iterable[Item], total: int | None = None) -> LoadReport:
        """Items with categories and tags; a repeated id updates properties and replaces the
        categories or tags it gives (:func:`loaders.writer.merge_item_param`, as online)."""
        report, now = LoadReport("items"), time.time()
        for it in self._valid(rows, report, total):
            p = it.to_param()
            if it.id in self._items:
                merge_item_param(self._items[it.id], p)
                report.unchanged += 1
                continue
            if p["created_at"] is None:
                if p.get("created_unknown"):  # as load/items: unknown, never fresh, until a first interaction
                    self._undated[it.id] = None
                else:
                    p["created_at"] = now
            self._items[it.id] = p
            report.written += 1
        return report

    def interactions(self, rows: Iterable[Item | InteractionBatch], total: int | None = None) -> LoadReport:
        """Interactions of items loaded before (others are bad rows, as in the online loader);
        the first of each key is kept."""
        report, t0 = LoadReport("interactions"), time.perf_counter()
        with self._bar("interactions", total) as bar:
            for batch in self._batches(rows, report):
                n = self._take(batch, report)
                bar.update(n)
        report.unchanged = report.rows - report.bad - report.written
        report.seconds = time.perf_counter() - t0
        self._reports.append(report)
        return report

    def interaction_parts(self, parts: Sequence[Callable[[], Iterable[InteractionBatch]]],
                          total: int | None = None) -> LoadReport:
        """Interactions from several sources at once, one process each (forked: each reads its
        source and writes its own file of the import). The sources must partition the users —
        every key, and every session, comes from one source only — as the parts of
        :meth:`loaders.synthetic.SyntheticCatalog.interaction_batches` do. Duplicates inside a
        source are dropped as in :meth:`interactions`."""
        report, t0 = LoadReport("interactions"), time.perf_counter()
        ctx = mp.get_context("fork")
        done = ctx.Value("q", 0)
        pipes, procs = [], []
        for k, source in enumerate(parts):
            mine, theirs = ctx.Pipe(duplex=False)
            p = ctx.Process(target=self._part, args=(k, source, theirs, done), name=f"graphrec-bulk-{k}", daemon=True)
            p.start()
            theirs.close()
            pipes.append(mine)
            procs.append(p)
        results: list[Any] = [None] * len(parts)
        with self._bar("interactions", total) as bar:
            while any(r is None for r in results):
                for k, conn in enumerate(pipes):
                    if results[k] is None and conn.poll(0.2):
                        results[k] = conn.recv()
                    elif results[k] is None and not procs[k].is_alive() and not conn.poll():
                        results[k] = ("error", BulkImportError(f"bulk part {k} exited with code {procs[k].exitcode}"))
                bar.update(done.value - bar.n)
        for p in procs:
            p.join()
        for res in results:
            if res[0] == "error":
                raise res[1]
        for _, part_report, path, seen, sessions, links, latest, runner_up, undated in results:
            for i, t in undated.items():
                if t is not None and (self._undated[i] is None or t < self._undated[i]):
                    self._undated[i] = t
            self._parts.append(path)
            report.rows += part_report.rows
            report.written += part_report.written
            for e in part_report.errors:
                report.add_bad(e)
            report.bad += part_report.bad - len(part_report.errors)
            for u, t in seen.items():
                first = self._seen.get(u)
                if first is None or t < first:
                    self._seen[u] = t
            for sid, (u, a, z) in sessions.items():
                span = self._sessions.get(sid)
                if span is None:
                    self._sessions[sid] = [u, a, z]
                    continue
                span[1], span[2] = min(span[1], a), max(span[2], z)
                if u != span[0]:
                    self._session_links.add((u, sid))
            self._session_links |= links
            self._latest, self._runner_up = _top_two(self._latest, self._runner_up, latest, runner_up)
        self._interactions += report.written
        report.unchanged = report.rows - report.bad - report.written
        report.seconds = time.perf_counter() - t0
        self._reports.append(report)
        return report

    def _part(self, k: int, source: Callable[[], Iterable[InteractionBatch]], conn: Any, done: Any) -> None:
        """One part of :meth:`interaction_parts`, in a forked process with its own state."""
        try:
            self._keys, self._seen, self._sessions, self._session_links = set(), {}, {}, set()
            self._latest = self._runner_up = -math.inf
            self._undated = dict.fromkeys(self._undated)
            path = str(self.dir / f"interactions-{k}.csv")
            report = LoadReport("interactions")
            with open(path, "w", newline="", encoding="utf-8") as fh:
                self._writer = csv.writer(fh)
                for batch in self._batches(source(), report):
                    n = self._take(batch, report)
                    with done.get_lock():
                        done.value += n
            conn.send(("ok", report, path, self._seen, self._sessions, self._session_links, self._latest, self._runner_up,
                       self._undated))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
            conn.send(("error", exc))
        finally:
            conn.close()

    def _batches(self, rows: Iterable[Item | InteractionBatch], report: LoadReport) -> Iterator[InteractionBatch]:
        pending: list[tuple[InteractionRow, Any]] = []
        for x in rows:
            if isinstance(x, InteractionBatch):
                if pending:
                    yield InteractionBatch.from_rows(pending)
                    pending = []
                yield x
                continue
            row, src = x
            if isinstance(row, BadRowError):
                report.rows += 1
                self._bad(row, report)
                continue
            pending.append((row, src))
            if len(pending) >= CHUNK:
                yield InteractionBatch.from_rows(pending)
                pending = []
        if pending:
            yield InteractionBatch.from_rows(pending)

    def _take(self, b: InteractionBatch, report: LoadReport) -> int:
        """Keep a batch's new interactions (one CSV row each) and note users, sessions and time."""
        items, keys, users, seen = self._items, self._keys, self._users, self._seen
        sessions, links, undated = self._sessions, self._session_links, self._undated
        out: list[tuple[Any, ...]] = []
        latest, runner_up = self._latest, self._runner_up
        for n, (ty, k, u, i, t, v, d, s) in enumerate(zip(b.type, b.key, b.user, b.item, b.ts, b.value, b.dwell,
                                                        b.session, strict=True)):
            if i not in items:
                src = b.sources[n]
                self._bad(BadRowError(src.file, src.line, f"unknown item id {i!r}"), report)
                continue
            if k in keys:
                continue
            keys.add(k)
            out.append((u, i, ty, k, t, v, d, s))
            if i in undated:
                first = undated[i]
                if first is None or t < first:
                    undated[i] = t
            if u not in users:
                first = seen.get(u)
                if first is None or t < first:
                    seen[u] = t
            if s is not None:
                span = sessions.get(s)
                if span is None:
                    sessions[s] = [u, t, t]
                else:
                    if t < span[1]:
                        span[1] = t
                    if t > span[2]:
                        span[2] = t
                    if u != span[0]:
                        links.add((u, s))
            if t > latest:
                latest, runner_up = t, latest
            elif runner_up < t < latest:
                runner_up = t
        self._latest, self._runner_up = latest, runner_up
        self._writer.writerows(out)
        report.rows += len(b)
        report.written += len(out)
        self._interactions += len(out)
        return len(b)

    # -- the import ------------------------------------------------------------------------
    def _write_nodes(self) -> tuple[list[str], list[str], bool]:
        """Every file but the interactions; returns (--nodes=..., --relationships=..., multiline)."""
        d, now = self.dir, time.time()
        multiline = False

        def text(v: Any) -> Any:
            nonlocal multiline
            if isinstance(v, str) and ("\n" in v or "\r" in v):
                multiline = True
            return _cell(v)

        def put(name: str, header: list[str], rows: Iterable[Iterable[Any]]) -> str:
            with open(d / f"{name}.header.csv", "w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(header)
            with open(d / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows(rows)
            return f"{d / f'{name}.header.csv'},{d / f'{name}.csv'}"

        ucols = _Columns()
        for _, attrs in self._users.values():
            ucols.see(attrs)
        unames, ufields, notes = ucols.header()
        icols = _Columns()
        for it in self._items.values():
            icols.see({k: v for k, v in it["props"].items() if k not in ITEM_OWN})
        inames, ifields, inotes = icols.header(skip=ITEM_OWN)
        self._notes = notes + inotes
        # Users named by interactions before any profile are created on first sight, at their
        # earliest interaction (load/users_first_sight); a profile read later adds its attributes
        # and leaves created_at alone (load/users sets it on create only).
        seen = self._seen
        users = [(uid, seen.get(uid, ca), *(text(attrs.get(k)) for k in unames))
                 for uid, (ca, attrs) in self._users.items()]
        users += [(uid, ts, *([None] * len(unames))) for uid, ts in seen.items() if uid not in self._users]
        cats: set[str] = set()
        tags: set[str] = set()
        item_rows, in_cat, has_tag = [], [], []
        for iid, it in self._items.items():
            p = it["props"]
            item_rows.append((iid, text(p.get("title")), p.get("year"), _cell(p.get("available", True)),
                              text(p.get("description")),
                              it["created_at"] if iid not in self._undated else self._undated[iid], now,
                              *(text(p.get(k)) for k in inames)))
            for c in it["categories"] or ():
                cats.add(c)
                in_cat.append((iid, c))
            for t in it["tags"] or ():
                tags.add(t)
                has_tag.append((iid, t))
        nodes = [
            f"User={put('users', ['id:ID(User)', 'created_at:double', *ufields], users)}",
            "Item=" + put("items", ["id:ID(Item)", "title", "year:long", "available:boolean", "description",
                                    "created_at:double", "updated_at:double", *ifields], item_rows),
            f"Category={put('categories', ['name:ID(Category)'], ((c,) for c in sorted(cats)))}",
            f"Tag={put('tags', ['name:ID(Tag)'], ((t,) for t in sorted(tags)))}",
            "Session=" + put("sessions", ["id:ID(Session)", "user_id", "started_at:double", "last_at:double"],
                             ((s, u, a, z) for s, (u, a, z) in self._sessions.items())),
        ]
        if self._latest > -math.inf:  # the graph's clock: the older of the two newest times (load/advance_clock)
            top = [t for t in (self._latest, self._runner_up) if t > -math.inf]
            meta = put("meta", ["key:ID(Meta)", "latest_ts:double", "top:double[]"],
                       [("clock", top[-1], ";".join(repr(t) for t in top))])
            nodes.append(f"GraphrecMeta={meta}")
        links = [(u, s) for s, (u, _, _) in self._sessions.items()]
        links += sorted(self._session_links)
        rels = [
            f"IN_CATEGORY={put('in_category', [':START_ID(Item)', ':END_ID(Category)'], in_cat)}",
            f"HAS_TAG={put('has_tag', [':START_ID(Item)', ':END_ID(Tag)'], has_tag)}",
            f"HAS_SESSION={put('has_session', [':START_ID(User)', ':END_ID(Session)'], links)}",
        ]
        with open(d / "interactions.header.csv", "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([":START_ID(User)", ":END_ID(Item)", ":TYPE", "key", "ts:double",
                                     "value:double", "dwell:double", "session"])
        rels.append(",".join([str(d / "interactions.header.csv"), str(d / "interactions.csv"), *self._parts]))
        self._nodes = {"users": len(users), "items": len(item_rows), "categories": len(cats), "tags": len(tags),
                       "sessions": len(self._sessions)}
        return nodes, rels, multiline

    def commit(self) -> BulkReport:
        """Write the files, import (the server has been down since the target was checked), start
        the server, build the schema."""
        from graphrec.core.graph import schema
        from graphrec.core.graph.store import GraphStore

        out = BulkReport(self._reports)
        out.phases["read"] = time.perf_counter() - self._t0
        t = time.perf_counter()
        self._file.close()
        nodes, rels, multiline = self._write_nodes()
        out.notes, out.nodes, out.interactions = self._notes, self._nodes, self._interactions
        out.phases["files"] = time.perf_counter() - t
        t = time.perf_counter()
        self.server.stop()
        out.phases["stop"] = time.perf_counter() - t  # what was left of it
        t = time.perf_counter()
        options = [*(f"--nodes={n}" for n in nodes), *(f"--relationships={r}" for r in rels),
                   "--bad-tolerance=0", f"--multiline-fields={'true' if multiline else 'false'}",
                   f"--report-file={self.server.home / 'logs' / 'import.report'}"]
        say = tqdm.write if self.progress else (lambda _: None)
        self._committed = True
        try:
            self.server.import_full(options, self.server.home / "logs" / "import.log",
                                    on_stage=lambda line: say(f"neo4j-admin import: {line}"))
        finally:
            out.phases["import"] = time.perf_counter() - t
            t = time.perf_counter()
            self.server.start()  # also after a failed import: the server comes back either way
            out.phases["start"] = time.perf_counter() - t
        t = time.perf_counter()
        with GraphStore.from_settings(self.settings) as store:
            schema.apply(store, workers=SCHEMA_WORKERS)  # built once, over the imported graph
        out.phases["schema"] = time.perf_counter() - t
        return out


def import_synthetic(settings: Settings, catalog: Any, parts: int = 2) -> BulkReport:
    """A :class:`loaders.synthetic.SyntheticCatalog` as the first load of an empty local graph:
    users, items, then the events generated by ``parts`` processes side by side (each a share of
    the users, so the parts partition keys and sessions)."""
    spec = catalog.spec
    with BulkImport(settings, on_error="stop") as bulk:
        bulk.users(catalog.users(), total=spec.users)
        bulk.items(catalog.items(), total=spec.items)
        bulk.interaction_parts([functools.partial(catalog.interaction_batches, part=k, parts=parts)
                                for k in range(parts)], total=spec.interactions)
        return bulk.commit()


def _top_two(a1: float, a2: float, b1: float, b2: float) -> tuple[float, float]:
    """The two newest distinct times of two (newest, runner-up) pairs (-inf: none)."""
    times = sorted({a1, a2, b1, b2}, reverse=True)
    return times[0], (times[1] if len(times) > 1 else -math.inf)
