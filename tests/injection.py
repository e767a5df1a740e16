"""Fault injection for tests: the product has no hooks for it, tests patch the step they break."""

from __future__ import annotations

from typing import Any

import pytest


def crash_after_training(mp: pytest.MonkeyPatch) -> None:
    """A retraining that crashes half-way: training finishes, then the pipeline raises (before
    anything is registered or published)."""
    import gnn.lifecycle

    real = gnn.lifecycle.train

    def crashing(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("injected failure after training")

    mp.setattr(gnn.lifecycle, "train", crashing)
