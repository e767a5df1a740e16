"""What "now" means for a user's time decay (graphrec.core.recs.merge.decay_now)."""

from __future__ import annotations

from graphrec.core.config import InteractionSettings
from graphrec.core.recs.merge import decay_now, seeds_from_history

WEIGHTS = InteractionSettings().score_weights


def test_decay_is_measured_from_the_users_latest_event() -> None:
    history = [{"item_id": "a", "type": "RATED", "ts": 880_000_000.0, "value": 5.0},  # 1997
               {"item_id": "b", "type": "RATED", "ts": 890_000_000.0, "value": 4.0}]  # 1998
    today = 1_796_000_000.0  # the graph's clock after one live write (2026)
    assert decay_now(history, today) == 890_000_000.0
    assert decay_now([], today) == today  # no history: the graph's clock
    # Seeds keep readable weights (the 1998 rating at full weight) instead of ~2^-113.
    seeds = seeds_from_history(history, decay_now(history, today), 90 * 86400.0, 5, WEIGHTS)
    assert {s["id"] for s in seeds} == {"a", "b"} and max(s["w"] for s in seeds) > 0.5
    assert max(s["w"] for s in seeds_from_history(history, today, 90 * 86400.0, 5, WEIGHTS)) < 1e-30  # the old behaviour
