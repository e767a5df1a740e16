"""What /healthz and /readyz report about the engine: the stores' health, the breakers, the
journal's backlog and how many recent answers Neo4j degraded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from graphrec.engine.state import Serving


async def health(s: Serving) -> dict[str, bool]:
    neo = await s.store.ping()
    vec = s.open_vectors is None  # none configured (exact search in memory) or one that failed to open
    if s.vectors is not None:
        try:
            vec = bool(await asyncio.wait_for(asyncio.to_thread(s.vectors.healthy), 1.0))
        except Exception:  # noqa: BLE001 - health reports, never raises
            vec = False
    return {"neo4j": neo, "vectors": vec, "degraded": not (neo and vec), "model": s.model is not None}


def journal_stuck(s: Serving, pending: int) -> bool:
    """Entries pending, the Neo4j breaker closed, and the replay offset unmoved for
    ``engine.journal_stuck_s`` (as sampled by the replay task): nothing is replaying them."""
    waiting = s.journal_waiting
    return (pending > 0 and waiting is not None and s.neo4j_breaker.state == "closed"
            and time.monotonic() - waiting[0] >= s.cfg.journal_stuck_s)


def readiness(s: Serving) -> dict[str, Any]:
    """What /readyz reports besides the stores' health: the breakers' states, the journal's
    backlog (bytes, whether it grew over the last minute of samples, and whether it is stuck:
    entries pending for ``engine.journal_stuck_s`` with the Neo4j breaker closed and the replay
    not moving; the entry whose replay is failing, if any), whether the start-up
    warm-up is still running (``warming``: answers are served, not yet at full speed), how many entries
    were dead-lettered, and the answers computed in the last 10-20 s with how many of them
    were degraded by Neo4j (slow or away: what clients saw), and the version of the neighbour lists'
    files in use (None: the lists are read from Neo4j)."""
    pending = s.journal.pending()
    oldest = s.journal_samples[0][1] if s.journal_samples else pending
    period = int(time.monotonic() // 10)
    recent = [c for c in s.answer_counts if c[0] >= period - 1]
    return {"warming": s.warming,
            "breakers": {"neo4j": s.neo4j_breaker.state, "vectors": s.vector_breaker.state},
            "journal": {"pending_bytes": pending, "growing": pending > oldest, "stuck": journal_stuck(s, pending),
                        "dead_lettered": s.journal.dead_lettered(), "failing": s.journal.failing()},
            "answers": {"recent": sum(c[1] for c in recent), "degraded_by_neo4j": sum(c[2] for c in recent)},
            "neighbour_files": s.neighbours.index.version if s.neighbours.index is not None else None}
