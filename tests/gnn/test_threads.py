"""Training threads come from the cores other processes leave free."""

from __future__ import annotations

import os

import psutil
import pytest
import torch

from gnn import threads


@pytest.fixture(autouse=True)
def _restore_threads() -> object:
    before = torch.get_num_threads()
    yield None
    torch.set_num_threads(before)


@pytest.mark.parametrize(("per_core", "expected"), [([3.0, 5.0], 2), ([97.0, 4.0], 1), ([100.0, 100.0], 1)])
def test_free_cores_skips_busy_ones(monkeypatch: pytest.MonkeyPatch, per_core: list[float], expected: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: per_core)
    assert threads.free_cores() == expected
    assert threads.choose_threads() == expected and torch.get_num_threads() == expected


def test_affinity_bounds_the_choice_and_a_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})  # pinned to core 1 only
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [0.0, 0.0, 0.0, 0.0])
    assert threads.free_cores() == 1
    assert threads.choose_threads(configured=3) == 3 and torch.get_num_threads() == 3
