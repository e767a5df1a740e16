"""MovieLens-100K, as shipped inside the ``recbole==1.2.1`` wheel on PyPI.

The wheel is fetched once with ``pip download --no-deps``, its sha256 checked, and the five
files of ``recbole/dataset_example/ml-100k/`` extracted into ``<cache_dir>/datasets/ml-100k``
(never into the repo): ratings with timestamps (``.inter``), items with title, year and genres
(``.item``), users with demographics (``.user``), the item → Freebase entity links (``.link``)
and the knowledge-graph triples (``.kg``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from graphrec.core.errors import GraphrecError
from graphrec.core.records import InteractionRow, InteractionType, ItemRow, UserRow
from loaders.writer import GraphWriter, Item, LoadReport, Source

WHEEL = "recbole==1.2.1"
WHEEL_FILE = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user", "ml-100k.link", "ml-100k.kg")
NUM_USERS, NUM_ITEMS, NUM_RATINGS = 943, 1682, 100_000


class DatasetError(GraphrecError):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache_dir: Path) -> Path:
    """The directory holding the ML-100K files, downloading and verifying the wheel if needed."""
    target = cache_dir / "datasets" / "ml-100k"
    if all((target / f).is_file() for f in FILES) and (target / ".verified").is_file():
        return target
    wheels = cache_dir / "datasets" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = wheels / WHEEL_FILE
    if not wheel.is_file() or sha256(wheel) != WHEEL_SHA256:
        with tempfile.TemporaryDirectory(dir=wheels) as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL],
                capture_output=True, text=True,
            )
            got = Path(tmp) / WHEEL_FILE
            if proc.returncode != 0 or not got.is_file():
                raise DatasetError(f"pip could not download {WHEEL}: {proc.stderr.strip()[-500:]}")
            digest = sha256(got)
            if digest != WHEEL_SHA256:
                raise DatasetError(f"{WHEEL_FILE} has sha256 {digest}, expected {WHEEL_SHA256}; refusing it")
            got.replace(wheel)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for f in FILES:
            with zf.open(MEMBER_DIR + f) as src:
                (target / f).write_bytes(src.read())
    (target / ".verified").write_text(WHEEL_SHA256)
    return target


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8") as fh:
        next(fh)  # typed header: "user_id:token\titem_id:token..."
        for n, line in enumerate(fh, start=2):
            line = line.rstrip("\n")
            if line:
                yield n, line.split("\t")


def users(root: Path) -> Iterator[Item]:
    path = root / "ml-100k.user"
    for n, (uid, age, gender, occupation, zip_code) in _rows(path):
        yield UserRow(id=uid, attributes={"age": int(age), "gender": gender, "occupation": occupation,
                                          "zip": zip_code}), Source(str(path), n)


def first_seen(root: Path) -> dict[str, float]:
    """Each item's first rating time: when it entered the catalogue, as far as the data says."""
    seen: dict[str, float] = {}
    for _, (_, iid, _, ts) in _rows(root / "ml-100k.inter"):
        t = float(ts)
        if t < seen.get(iid, float("inf")):
            seen[iid] = t
    return seen


def items(root: Path) -> Iterator[Item]:
    path = root / "ml-100k.item"
    seen = first_seen(root)
    earliest = min(seen.values())
    for n, (iid, title, year, genres) in _rows(path):
        yield ItemRow(id=iid, title=title, year=int(year) if year.strip().isdigit() else None, available=True,
                      categories=genres.split() or None, tags=[],
                      created_at=seen.get(iid, earliest)), Source(str(path), n)


def ratings(root: Path) -> Iterator[Item]:
    path = root / "ml-100k.inter"
    for n, (uid, iid, rating, ts) in _rows(path):
        yield InteractionRow(user_id=uid, item_id=iid, type=InteractionType.RATE, ts=float(ts),
                             value=float(rating)), Source(str(path), n)


def links(root: Path) -> list[dict[str, str]]:
    return [{"item": iid, "entity": eid} for _, (iid, eid) in _rows(root / "ml-100k.link")]


def triples(root: Path) -> Iterator[dict[str, str]]:
    for _, (h, r, t) in _rows(root / "ml-100k.kg"):
        yield {"head": h, "relation": r, "tail": t}


def load(writer: GraphWriter, root: Path, with_kg: bool = True) -> list[LoadReport]:
    """Load users, items, ratings and (optionally) the knowledge graph. Idempotent."""
    import time

    from tqdm import tqdm

    reports = [
        writer.users(users(root), total=NUM_USERS),
        writer.items(items(root), total=NUM_ITEMS),
        writer.interactions(ratings(root), total=NUM_RATINGS),
    ]
    if with_kg:
        t0 = time.perf_counter()
        rep = LoadReport("kg")
        link_rows = links(root)
        rep.written += writer.store.write_many([("load/kg_links", None, {"rows": link_rows})])[0]["relationships_created"]
        rep.rows += len(link_rows)
        batch: list[dict[str, str]] = []
        with tqdm(desc="kg triples", unit=" rows", unit_scale=True, disable=not writer.progress, total=91_631,
                  leave=False) as bar:
            for t in triples(root):
                batch.append(t)
                if len(batch) >= writer.batch_size:
                    rep.written += writer.store.write_many([("load/kg_triples", None, {"rows": batch})])[0]["relationships_created"]
                    rep.rows += len(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                rep.written += writer.store.write_many([("load/kg_triples", None, {"rows": batch})])[0]["relationships_created"]
                rep.rows += len(batch)
                bar.update(len(batch))
        rep.seconds = time.perf_counter() - t0
        rep.unchanged = rep.rows - rep.written
        reports.append(rep)
    return reports


def snapshot(root: Path):  # -> graphrec.core.snapshot.Snapshot
    """The ML-100K files as a :class:`graphrec.core.snapshot.Snapshot` (every rating a RATED interaction),
    without going through Neo4j: for tests and offline experiments. Item entities are the
    linked entity plus its one-hop KG neighbours (actors, directors, genres...)."""
    from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot

    user_ids = [u.id for u, _ in users(root)]
    item_rows = [it for it, _ in items(root)]
    item_ids = [it.id for it in item_rows]
    uidx = {u: i for i, u in enumerate(user_ids)}
    iidx = {it: i for i, it in enumerate(item_ids)}
    raw = [(uidx[u], iidx[i], float(ts), float(r)) for _, (u, i, r, ts) in _rows(root / "ml-100k.inter")]
    arr = np.array(raw, dtype=np.float64)
    ent_of: dict[str, list[str]] = {}
    link = {row["item"]: row["entity"] for row in links(root)}
    neigh: dict[str, set[str]] = {}
    for t in triples(root):
        neigh.setdefault(t["head"], set()).add(t["tail"])
    for iid, e in link.items():
        ent_of[iid] = [e] + sorted(neigh.get(e, ()))
    contents = [ItemContent(title=it.title, year=it.year, categories=list(it.categories or []), tags=[],
                            entities=ent_of.get(it.id, []), available=True, created_at=it.created_at)
                for it in item_rows]
    return Snapshot(
        user_ids=user_ids, item_ids=item_ids,
        user=arr[:, 0].astype(np.int64), item=arr[:, 1].astype(np.int64), ts=arr[:, 2],
        kind=np.full(len(raw), KIND_CODE["RATED"], dtype=np.int8), value=arr[:, 3].astype(np.float32),
        items=contents,
    )
