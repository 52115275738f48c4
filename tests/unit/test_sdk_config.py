"""Client contexts: load, save (atomic, 0600), upsert, and errors that name the field."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ccs.config import (
    ClientConfig,
    ConfigError,
    Context,
    default_config_path,
    load_config,
    save_config,
    upsert_context,
)


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "none.yaml")
    assert cfg.current_context is None and cfg.contexts == {}


def test_save_then_load_round_trips_with_the_documented_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.yaml"
    cfg = ClientConfig(
        current_context="local",
        contexts={"local": Context(server="127.0.0.1:7443", token="abc", cluster="dev")},
    )
    save_config(cfg, path)
    assert load_config(path) == cfg
    text = path.read_text()
    assert "current-context: local" in text
    assert "server: 127.0.0.1:7443" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left


def test_reads_the_documented_yaml_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "current-context: local\n"
        "contexts:\n"
        '  local: {server: "127.0.0.1:7443", token: "t", tls: false, ca_file: null}\n'
    )
    name, ctx = load_config(path).context()
    assert (name, ctx.server, ctx.token, ctx.tls, ctx.ca_file) == (
        "local", "127.0.0.1:7443", "t", False, None)


def test_upsert_adds_replaces_and_keeps_other_contexts(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    upsert_context("a", Context(server="a:1"), path)
    upsert_context("b", Context(server="b:1"), path, make_current=False)
    assert load_config(path).current_context == "a"
    cfg = upsert_context("a", Context(server="a:2", token="new"), path)
    assert cfg == load_config(path)
    assert {n: c.server for n, c in cfg.contexts.items()} == {"a": "a:2", "b": "b:1"}
    assert cfg.contexts["a"].token == "new"


def test_unknown_field_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("contexts:\n  prod: {server: 'x:1', tsl: true}\n")
    with pytest.raises(ConfigError, match=r"contexts\.prod\.tsl"):
        load_config(path)


def test_invalid_yaml_and_wrong_top_level_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("contexts: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- a\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(path)


def test_context_selection_errors_name_the_context(tmp_path: Path) -> None:
    cfg = ClientConfig(contexts={"a": Context(server="a:1")})
    with pytest.raises(ConfigError, match="no context selected"):
        cfg.context()
    with pytest.raises(ConfigError, match=r"context 'zz' not found \(known: a\)"):
        cfg.context("zz")
    assert cfg.context("a")[1].server == "a:1"


def test_default_path_honours_ccs_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCS_CONFIG", str(tmp_path / "x.yaml"))
    assert default_config_path() == tmp_path / "x.yaml"
    monkeypatch.delenv("CCS_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".config" / "ccs" / "config.yaml"


def test_config_module_imports_without_grpc() -> None:
    code = "import sys, ccs.config; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
