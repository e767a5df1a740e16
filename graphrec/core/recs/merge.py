"""Pure steps of the pipeline shared by the engine and the offline evaluation: seeds from a
history, and the merge of candidate lists (de-duplicated, every source's score and rank kept)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from graphrec.core.recs.candidate import Candidate
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


def merge_candidates(by_source: dict[str, list[Candidate]], weights: dict[str, float]) -> dict[str, Scored]:
    """One entry per item; ``score`` = Σ weight × (source score / that source's best score)."""
    merged: dict[str, Scored] = {}
    get = merged.get
    for name, cands in by_source.items():
        if not cands:
            continue
        w = weights.get(name, 0.0)
        top = max(c.score for c in cands) or 1.0
        # Best first; equal scores keep the source's order (a reverse sort is stable too).
        for rank, c in enumerate(sorted(cands, key=_score, reverse=True)):
            s = get(c.item_id)
            if s is None:
                merged[c.item_id] = Scored(c.item_id, w * (c.score / top), {name: (c.score, rank)}, c.because, c.via)
                continue
            s.sources[name] = (c.score, rank)
            s.score += w * (c.score / top)
            if c.because and not s.because:
                s.because = c.because
            if c.via and not s.via:
                s.via = c.via
    return merged


_score = attrgetter("score")


def aggregate_neighbours(seeds: list[dict[str, object]], lists: Mapping[str, Sequence[tuple[str, float]]], limit: int,
                         name: str) -> list[Candidate]:
    """Σ over seeds of seed weight × neighbour score (seeds themselves excluded), best first;
    ``because`` names the strongest seeds. Shared by the engine and the offline evaluation."""
    seed_ids = {str(s["id"]) for s in seeds}
    score: dict[str, float] = {}
    best: dict[str, list[tuple[float, str]]] = {}
    for s in seeds:
        sid, w = str(s["id"]), float(s["w"])  # type: ignore[arg-type]
        for nid, ns in lists.get(sid, ()):
            if nid in seed_ids:
                continue
            v = w * ns
            score[nid] = score.get(nid, 0.0) + v
            best.setdefault(nid, []).append((v, sid))
    top = sorted(score.items(), key=lambda x: (-x[1], x[0]))[:limit]
    return [Candidate(i, sc, name, tuple(b for _, b in sorted(best[i], reverse=True)[:3])) for i, sc in top]


#: How many of the current session's last items seed the session sources.
SESSION_SEEDS = 10


def session_seed_weights(session_items: list[str]) -> list[dict[str, object]]:
    """Seeds of the session source: the session's last ``SESSION_SEEDS`` items (oldest first),
    the latest weighted most. Shared by the engine and the offline replay."""
    items = list(session_items[-SESSION_SEEDS:])
    return [{"id": i, "w": 0.5 + 0.5 * (k + 1) / len(items)} for k, i in enumerate(items)]
