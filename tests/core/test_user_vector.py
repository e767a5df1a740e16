"""Training and serving compute the same user vector for the same history (one recipe,
graphrec.core.recs.user_vector), and the recipe's weights are the settings'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gnn.user import user_matrix, user_params
from graphrec.core.config import InteractionSettings, Settings
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.recs.model import LiveModel
from graphrec.core.snapshot import KINDS

N_ITEMS, DIM = 40, 8
CFG = GNNConfig(max_history=12, rating_center=2.5, half_life_days=30.0)


def _histories(seed: int = 7) -> dict[str, np.ndarray]:
    """Six users, one with more interactions than max_history, every type, repeated items, ratings."""
    rng = np.random.default_rng(seed)
    n = 60
    user = np.r_[np.zeros(20, dtype=np.int64), rng.integers(1, 6, n - 20)]
    kind = rng.integers(0, len(KINDS), n).astype(np.int8)
    value = np.where(kind == KINDS.index("RATED"), rng.integers(1, 6, n), 0).astype(np.float32)
    return {"user": user, "item": rng.integers(0, N_ITEMS, n), "kind": kind, "value": value,
            "ts": 1.7e9 + rng.uniform(0, 200 * 86400.0, n)}


def _emb(seed: int = 3) -> np.ndarray:
    emb = np.random.default_rng(seed).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _served(tmp_path: Path, emb: np.ndarray, params: dict[str, Any] | None) -> LiveModel:
    """The model as the engine loads a published version (gnn.lifecycle writes these files)."""
    d = tmp_path / "version"
    d.mkdir(exist_ok=True)
    np.save(d / "item_embeddings.npy", emb)
    (d / "item_ids.json").write_text(json.dumps([f"i{k}" for k in range(N_ITEMS)]))
    if params is not None:
        (d / "user_params.json").write_text(json.dumps(params))
    elif (d / "user_params.json").exists():
        (d / "user_params.json").unlink()
    return LiveModel.load("v1", d)


def _history_of(h: dict[str, np.ndarray], u: int) -> list[dict[str, Any]]:
    """User ``u``'s interactions as the engine reads them (repo/user_state's ``recent`` rows)."""
    rows = np.nonzero(h["user"] == u)[0]
    return [{"item_id": f"i{h['item'][j]}", "type": KINDS[h["kind"][j]], "ts": float(h["ts"][j]),
             "value": float(h["value"][j]) if KINDS[h["kind"][j]] == "RATED" else None} for j in rows]


def _both(tmp_path: Path, params: dict[str, Any], served_params: dict[str, Any] | None = None, saved: bool = True
          ) -> tuple[np.ndarray, np.ndarray]:
    """(training's vectors of the six users, serving's): training with ``params``, serving with
    ``served_params`` (default: the same) saved with the version, or with none saved."""
    h, emb = _histories(), _emb()
    now = float(h["ts"].max())
    trained = user_matrix(emb, h["user"], h["item"], h["kind"], h["value"], h["ts"], 6, now, params)
    model = _served(tmp_path, emb, None if not saved else params if served_params is None else served_params)
    served = np.stack([model.user_vector(_history_of(h, u), now) for u in range(6)])
    return trained, served


def test_training_and_serving_compute_the_same_user_vectors(tmp_path: Path) -> None:
    params = user_params(CFG, InteractionSettings().vector_weights)
    trained, served = _both(tmp_path, params)
    np.testing.assert_allclose(served, trained, atol=1e-6)
    assert len(np.nonzero(_histories()["user"] == 0)[0]) > CFG.max_history  # the cap is exercised


def test_with_the_trend_prior_too(tmp_path: Path) -> None:
    prior = _emb(5)[0]
    params = dict(user_params(CFG, InteractionSettings().vector_weights), prior=prior.tolist(), prior_weight=0.3)
    trained, served = _both(tmp_path, params)
    np.testing.assert_allclose(served, trained, atol=1e-6)


def test_one_side_with_another_weight_is_caught(tmp_path: Path) -> None:
    """The comparison above is sensitive: serving with one type's weight changed gives other vectors."""
    params = user_params(CFG, InteractionSettings().vector_weights)
    changed = dict(params, type_weights={**params["type_weights"], "CLICKED": params["type_weights"]["CLICKED"] + 0.5})
    trained, served = _both(tmp_path, params, changed)
    assert not np.allclose(served, trained, atol=1e-3)


def test_a_version_saved_without_a_recipe_serves_with_the_configured_one(tmp_path: Path) -> None:
    """No user_params.json (an old artifact): the engine pools as training would with the default
    settings, not with a recipe of its own."""
    trained, served = _both(tmp_path, user_params(GNNConfig(), InteractionSettings().vector_weights), saved=False)
    np.testing.assert_allclose(served, trained, atol=1e-6)


def test_the_recipe_weights_are_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training saves the ``[interactions] vector_weights`` it is given (the lifecycle gives it
    the setting's) with a version; the setting can come from the environment."""
    weights = {"PURCHASED": 5.0, "RATED": 1.0, "CLICKED": 0.1, "VIEWED": 0.0, "SKIPPED": -1.0}
    assert user_params(GNNConfig(), weights)["type_weights"] == weights
    monkeypatch.setenv("GRAPHREC_INTERACTIONS_VECTOR_WEIGHTS", json.dumps(weights))
    settings = Settings()
    assert settings.interactions.vector_weights == weights
    assert user_params(settings.gnn, settings.interactions.vector_weights)["type_weights"] == weights
