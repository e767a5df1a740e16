"""Pure steps of the pipeline shared by the engine and the offline evaluation: seeds from a
history, and the merge of candidate lists (de-duplicated, every source's score and rank kept)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from graphrec.core.recs.candidate import Candidate, Ranked, SourceResult
from graphrec.core.recs.rules import Scored


def decay_now(recent: list[dict[str, Any]], clock: float) -> float:
    """"Now" for a user's time decay: their own latest event, else the graph's clock.

    Ages are measured from the user's last activity, not from the newest event anywhere: on a
    historical dataset (MovieLens is from 1998) one live interaction moves the graph's clock to
    today, and decaying a 1998 user's history over 28 years would turn every weight into ~2^-113
    (scores printed as 0.00). Popularity and freshness windows end at the graph's clock (a quiet
    popular window is widened: graphrec.core.recs.popularity; docs/graph-model.md)."""
    latest = max((h["ts"] for h in recent if h.get("ts") is not None), default=None)
    return float(latest) if latest is not None else clock


def seeds_from_history(recent: list[dict[str, Any]], now: float, half_life_s: float, n: int,
                       type_weights: Mapping[str, float]) -> list[dict[str, Any]]:
    """The ``n`` strongest recent positive items: weight = type weight (``[interactions]
    score_weights``; ratings: (value-2)/3)
    × 2^(-age/half-life); an item seen several times keeps its strongest weight."""
    best: dict[str, float] = {}
    for h in recent:
        w = type_weights.get(h["type"], 0.0)
        if h["type"] == "RATED":
            w = max(0.0, ((h.get("value") or 0.0) - 2.0) / 3.0)
        w *= 2.0 ** (-max(0.0, now - (h["ts"] or now)) / half_life_s)
        if w > 0:
            best[h["item_id"]] = max(best.get(h["item_id"], 0.0), w)
    top = sorted(best.items(), key=lambda x: (-x[1], x[0]))[:n]
    return [{"id": i, "w": float(w)} for i, w in top]


def cold_start_weights(weights: dict[str, float]) -> dict[str, float]:
    """Source weights for a user without history: popular (narrowed by stated preferences) and
    fresh lists at least at 1.0 and 0.2."""
    out = dict(weights)
    out["popular"] = max(out.get("popular", 0.0), 1.0)
    out["fresh"] = max(out.get("fresh", 0.0), 0.2)
    return out


class Pool:
    """The merged candidates of one request as columns: one entry per item (first-seen order),
    ``fused`` = Σ over sources of weight × (source score / that source's best score). The
    per-candidate records (:class:`Scored`, with every source's score and rank) are built only
    for the items a step asks for (:meth:`scored`): a request merges ~1,000 candidates and shows 20.
    """

    def __init__(self, by_source: Mapping[str, SourceResult], weights: Mapping[str, float]) -> None:
        self.sources: dict[str, Ranked] = {}  # each source's candidates as columns, as it gave them
        self._order: dict[str, list[int]] = {}  # each source's rank -> its column (best first)
        self._scores: dict[str, list[float]] = {}  # each source's scores, best first
        src_ids: dict[str, list[str]] = {}
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for name, given in by_source.items():
            if not len(given):
                continue
            cols = given if isinstance(given, Ranked) else _columns(given, name)
            sc = cols.scores
            order = np.argsort(-sc, kind="stable")  # best first; equal scores keep the source's order
            self.sources[name] = cols
            self._order[name] = order.tolist()
            self._scores[name] = sc[order].tolist()
            src_ids[name] = [cols.ids[k] for k in self._order[name]]
            ids.extend(src_ids[name])
            parts.append(weights.get(name, 0.0) * (sc[order] / (float(sc.max()) or 1.0)))
        self.ids: list[str] = list(dict.fromkeys(ids))
        self.pos: dict[str, int] = dict(zip(self.ids, range(len(self.ids)), strict=True))
        inv = np.fromiter(map(self.pos.__getitem__, ids), dtype=np.intp, count=len(ids))
        self.fused: np.ndarray = np.bincount(inv, weights=np.concatenate(parts) if parts else None,
                                             minlength=len(self.ids)).astype(np.float64)
        self._src_ids = src_ids
        self._inv = inv  # each source's ids (best first, the sources one after another) -> their positions
        self._rank: np.ndarray | None = None  # [source, position]: its rank in that source, -1: not there

    def __len__(self) -> int:
        return len(self.ids)

    def scored(self, positions: Iterable[int], scores: np.ndarray | None = None) -> list[Scored]:
        """The candidates at ``positions`` as :class:`Scored` records (score: ``scores`` at that
        position, default the fused score); ``because`` and ``via`` from the first source (in
        the sources' order) that gives them."""
        positions = list(positions)
        score = (self.fused if scores is None else scores).tolist()
        if 4 * len(positions) >= len(self.ids):  # most of the pool: one pass over the sources
            out: dict[int, Scored | None] = dict.fromkeys(range(len(self.ids)))
            for p in positions:
                out[p] = Scored(self.ids[p], score[p], {})
            pos = self.pos
            for name, ranked_ids in self._src_ids.items():
                cols, order, scs = self.sources[name], self._order[name], self._scores[name]
                for r, item in enumerate(ranked_ids):
                    rec = out[pos[item]]
                    if rec is not None:
                        self._attach(rec, name, cols, order[r], scs[r], r)
            return [rec for p in positions if (rec := out[p]) is not None]
        names = list(self._src_ids)
        if self._rank is None:  # an item listed twice by one source: its last rank, as one pass gives it
            self._rank = np.full((len(names), len(self.ids)), -1, dtype=np.intp)
            start = 0
            for k, name in enumerate(names):
                n = len(self._src_ids[name])
                self._rank[k, self._inv[start:start + n]] = np.arange(n)
                start += n
        recs: list[Scored] = []
        for p, ranks in zip(positions, self._rank[:, positions].T.tolist(), strict=True):
            rec = Scored(self.ids[p], score[p], {})
            for name, at in zip(names, ranks, strict=True):
                if at >= 0:
                    self._attach(rec, name, self.sources[name], self._order[name][at], self._scores[name][at], at)
            recs.append(rec)
        return recs

    @staticmethod
    def _attach(rec: Scored, name: str, cols: Ranked, k: int, score: float, rank: int) -> None:
        rec.sources[name] = (score, rank)
        if not rec.because:
            rec.because = cols.because(k)
        if not rec.via:
            rec.via = cols.via(k)


def _columns(cands: Sequence[Candidate], name: str) -> Ranked:
    """Candidate records as columns."""
    cands = list(cands)
    return Ranked([c[0] for c in cands], np.array([c[1] for c in cands], dtype=np.float64), name,
                  lambda k: cands[k][3], lambda k: cands[k][4])


def merge_candidates(by_source: Mapping[str, SourceResult], weights: Mapping[str, float]) -> dict[str, Scored]:
    """One entry per item; ``score`` = Σ weight × (source score / that source's best score)."""
    pool = Pool(by_source, weights)
    return dict(zip(pool.ids, pool.scored(range(len(pool))), strict=True))




class NeighbourList(NamedTuple):
    """One item's materialised neighbours, best first, as two columns (ids and their scores): the
    form the engine's neighbour cache and the offline replay hold them in."""

    ids: tuple[str, ...]
    scores: np.ndarray  # float64, one per id

    def pairs(self) -> tuple[tuple[str, float], ...]:
        """``(neighbour id, score)`` pairs, best first."""
        return tuple(zip(self.ids, self.scores.tolist(), strict=True))


NO_NEIGHBOURS = NeighbourList((), np.zeros(0))


def neighbour_list(pairs: Iterable[tuple[str, float]]) -> NeighbourList:
    """A list of ``(neighbour id, score)`` pairs as a :class:`NeighbourList`."""
    pairs = tuple(pairs)
    if not pairs:
        return NO_NEIGHBOURS
    ids, scores = zip(*pairs, strict=True)
    return NeighbourList(tuple(map(str, ids)), np.asarray(scores, dtype=np.float64))


def aggregate_neighbours(seeds: list[dict[str, object]], lists: Mapping[str, NeighbourList], limit: int,
                         name: str) -> Ranked:
    """Σ over seeds of seed weight × neighbour score (seeds themselves excluded), the ``limit``
    best (ties by id); ``because`` names the (up to 3) seeds that contributed most. Shared by the
    engine and the offline evaluation. Vectorised over the seeds' lists (a request sums ~20 × 50
    entries per source)."""
    seed_ids: list[str] = []
    ids: list[str] = []
    parts: list[np.ndarray] = []
    owner: list[int] = []  # per seed list: how many entries it gave
    for s in seeds:
        sid = str(s["id"])
        seed_ids.append(sid)
        lst = lists.get(sid, NO_NEIGHBOURS)
        owner.append(len(lst.ids))
        if lst.ids:
            ids.extend(lst.ids)
            parts.append(lst.scores * float(s["w"]))  # type: ignore[arg-type]
    if not ids:
        return Ranked.empty(name)
    uniq = list(dict.fromkeys(ids))
    pos = dict(zip(uniq, range(len(uniq)), strict=True))
    inv = np.fromiter(map(pos.__getitem__, ids), dtype=np.intp, count=len(ids))
    vals = np.concatenate(parts)
    seed_of = np.repeat(np.arange(len(seed_ids)), owner)
    score = np.bincount(inv, weights=vals, minlength=len(uniq))
    out = np.zeros(len(uniq), dtype=bool)
    out[[pos[s] for s in set(seed_ids) if s in pos]] = True  # a seed is never its own candidate
    k = min(limit, len(uniq) - int(out.sum()))
    if k <= 0:
        return Ranked.empty(name)
    ranked = np.flatnonzero(~out)
    ranked = ranked[np.argsort(-score[ranked], kind="stable")]
    cut = score[ranked[k - 1]]
    tied = ranked[score[ranked] >= cut]  # the k best and every item tied with the k-th: ties by id
    tied_sc = score[tied]
    if (tied_sc[1:] < tied_sc[:-1]).all():  # no two equal: the order by score is the order
        top = tied[:k].tolist()
    else:
        sc = score.tolist()
        top = sorted(tied.tolist(), key=lambda p: (-sc[p], uniq[p]))[:k]
    # Each candidate's contributions, strongest first (equal ones: the larger seed id first); the
    # tuples of the three strongest are built only for the candidates a request shows.
    desc = {sid: r for r, sid in enumerate(sorted(set(seed_ids), reverse=True))}
    seed_rank = np.array([desc[sid] for sid in seed_ids])[seed_of]
    order = np.lexsort((seed_rank, -vals, inv))
    grouped = inv[order]
    starts = np.searchsorted(grouped, top, side="left")
    ends = np.minimum(np.searchsorted(grouped, top, side="right"), starts + 3)
    by = np.array(seed_ids, dtype=object)[seed_of[order]]  # each contribution's seed, grouped by candidate

    def because(j: int) -> tuple[str, ...]:
        return tuple(by[starts[j]:ends[j]].tolist())

    return Ranked([uniq[p] for p in top], score[top], name, because)


#: How many of the current session's last items seed the session sources.
SESSION_SEEDS = 10


def session_seed_weights(session_items: list[str]) -> list[dict[str, object]]:
    """Seeds of the session source: the session's last ``SESSION_SEEDS`` items (oldest first),
    the latest weighted most. Shared by the engine and the offline replay."""
    items = list(session_items[-SESSION_SEEDS:])
    return [{"id": i, "w": 0.5 + 0.5 * (k + 1) / len(items)} for k, i in enumerate(items)]
