"""Stored artifact paths resolve under the models directory, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

from graphrec.core.registry import ModelVersion, artifact_path


def test_relative_paths_resolve_under_the_models_dir(tmp_path: Path) -> None:
    models = tmp_path / "elsewhere" / "var" / "models"
    # what the registry stores now: the version's folder
    assert artifact_path(models, "gnn-20261203-120000-ab12") == str(models / "gnn-20261203-120000-ab12")
    # what older records hold: a path relative to the directory training ran in
    assert artifact_path(models, "var/models/gnn-20261203-120000-ab12") == str(models / "gnn-20261203-120000-ab12")
    # absolute paths are kept; nothing stored stays nothing
    assert artifact_path(models, "/srv/models/gnn-x") == "/srv/models/gnn-x"
    assert artifact_path(models, None) is None


def test_a_version_read_from_the_graph_points_into_the_models_dir(tmp_path: Path) -> None:
    v = ModelVersion.from_props({"id": "gnn-1", "kind": "gnn", "status": "live", "artifact_dir": "gnn-1"}, tmp_path)
    assert v.artifact_dir == str(tmp_path / "gnn-1")
