"""``ccs registry login|ls|rm`` over real gRPC to the in-process fake: the password from stdin
only, never printed, and the refusals' exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ccs.config import Context, upsert_context
from ccs.testing import FakeApi, ThreadedServer, serve_in_thread
from cli.main import app

TOKEN = "cli-token"
CLEAN_ENV = {k: None for k in ("CCS_SERVER", "CCS_TOKEN", "CCS_CONTEXT", "CCS_CLUSTER", "CCS_DEBUG",
                                "CCS_INSECURE", "CCS_CA_FILE")}
PASSWORD = "pa55-w0rd-xyz"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi(token=TOKEN)


@pytest.fixture
def config(tmp_path: Path, fake: FakeApi) -> Iterator[Path]:
    with serve_in_thread(fake) as served:
        served_: ThreadedServer = served
        path = tmp_path / "config.yaml"
        upsert_context("test", Context(server=served_.address, token=TOKEN, tls=False), path)
        yield path


def ccs(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=CLEAN_ENV, input=stdin)


def test_login_ls_rm(config: Path, fake: FakeApi) -> None:
    assert ccs(config, "cluster", "create", "prod").exit_code == 0
    res = ccs(config, "registry", "login", "r.example.com:5000", "-u", "ci", "--password-stdin", "-c", "prod",
              stdin=PASSWORD + "\n")
    assert res.exit_code == 0, res.output
    assert PASSWORD not in res.output and "r.example.com:5000" in res.output
    assert fake.registry_logins[("prod", "r.example.com:5000")][1] == PASSWORD  # the newline dropped
    res = ccs(config, "registry", "ls", "-c", "prod", "-o", "json")
    assert [(x["host"], x["username"]) for x in json.loads(res.stdout)] == [("r.example.com:5000", "ci")]
    assert PASSWORD not in res.stdout
    res = ccs(config, "registry", "rm", "r.example.com:5000", "-c", "prod")
    assert res.exit_code == 0 and "removed" in res.stdout
    res = ccs(config, "registry", "rm", "r.example.com:5000", "-c", "prod")
    assert res.exit_code == 3 and "registry login 'r.example.com:5000' not found" in res.stderr


def test_password_only_from_stdin_and_bad_hosts(config: Path, tmp_path: Path) -> None:
    assert ccs(config, "cluster", "create", "prod").exit_code == 0
    res = ccs(config, "registry", "login", "r.example.com", "-u", "ci", "-c", "prod")
    assert res.exit_code == 2 and "--password-stdin" in res.output
    res = ccs(config, "registry", "login", "https://r.example.com", "-u", "ci", "--password-stdin", "-c", "prod",
              stdin="pw\n")
    assert res.exit_code == 4 and "host: 'https://r.example.com' is not a registry host" in res.stderr
    res = ccs(config, "registry", "login", "r.example.com", "-u", "ci", "--password-stdin", "-c", "prod",
              "--ca-file", str(tmp_path / "missing.pem"), stdin="pw\n")
    assert res.exit_code == 4 and "--ca-file: cannot read" in res.stderr
