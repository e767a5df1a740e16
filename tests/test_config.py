"""Configuration: the shipped reference config equals the code defaults; env overrides work."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from graphrec.core.config import Settings, load_settings
from graphrec.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_reference_config_equals_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith("GRAPHREC_"):
            monkeypatch.delenv(k)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("GRAPHREC_CONFIG", str(empty))
    code = _flatten(Settings().model_dump(mode="json"))
    text = (ROOT / "graphrec.example.toml").read_text()
    shipped = _flatten(tomllib.loads(text))
    for k, v in shipped.items():
        assert k in code, f"{k} in graphrec.example.toml is not a setting"
        assert v == code[k], f"{k}: example says {v!r}, code default is {code[k]!r}"
    for k in set(code) - set(shipped) - {"cache_dir"}:
        # Settings whose default is "unset" (None) appear commented out, by name.
        assert code[k] is None, f"{k} is missing from graphrec.example.toml"
        assert f"# {k.split('.')[-1]} =" in text, f"{k} (unset by default) is not documented"


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHREC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("GRAPHREC_CONFIG")
    monkeypatch.setenv("GRAPHREC_NEO4J_PASSWORD", "s3cret-password")
    monkeypatch.setenv("GRAPHREC_NEO4J_URI", "neo4j+s://abc.databases.neo4j.io")
    monkeypatch.setenv("GRAPHREC_QDRANT_URL", "http://127.0.0.1:6333")
    monkeypatch.setenv("GRAPHREC_NEO4J_BOLT_PORT", "7999")
    s = load_settings()
    assert s.neo4j.password is not None and s.neo4j.password.get_secret_value() == "s3cret-password"
    assert s.neo4j.uri == "neo4j+s://abc.databases.neo4j.io" and not s.neo4j.managed
    assert s.qdrant.url == "http://127.0.0.1:6333"
    assert s.neo4j.bolt_port == 7999
    assert "s3cret" not in repr(s)


def test_toml_file_and_bad_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('[neo4j]\nheap = "2g"\n[loader]\non_error = "stop"\n')
    monkeypatch.setenv("GRAPHREC_CONFIG", str(cfg))
    s = load_settings()
    assert s.neo4j.heap == "2g" and s.loader.on_error == "stop"
    cfg.write_text('[loader]\non_error = "explode"\n')
    with pytest.raises(ConfigError, match="loader.on_error"):
        load_settings()
    monkeypatch.setenv("GRAPHREC_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
