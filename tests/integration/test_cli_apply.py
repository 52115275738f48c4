"""``ccs app apply`` as CI runs it (a subprocess with a config file) against the real server on a
real etcd: created, then "unchanged" with exit 0 and no new revision or release, then updated;
its usage and template errors keep the documented exit codes. No engine needed (no agent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .cli_process import cli, ok
from .test_cli_e2e import as_json, small_app

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]


def test_apply_creates_then_reports_unchanged_then_updates(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    ok(ccs_server, "cluster", "create", unique)
    path = str(small_app(tmp_path))
    first = cli(ccs_server, "app", "apply", "-c", unique, "-f", path, "--env", "EXTRA=1", "--version", "v1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.rstrip().endswith("application web-app: created"), first.stdout
    again = cli(ccs_server, "app", "apply", "-c", unique, "-f", path, "--env", "EXTRA=1", "--version", "v1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip().endswith("application web-app: unchanged"), again.stdout
    revisions = [r.revision for r in _revisions(ccs_server, unique)]
    assert revisions == [1]
    assert cli(ccs_server, "release", "get", "-c", unique, "web-app").returncode == 3  # no release
    # -o json: stdout is the application alone, the outcome goes to stderr
    res = cli(ccs_server, "app", "apply", "-c", unique, "-f", path, "--env", "EXTRA=2", "-o", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["revision"] == "2" and res.stderr.strip() == "application web-app: updated"
    got = as_json(ccs_server, "app", "get", "-c", unique, "web-app")["application"]
    assert (got["spec"]["env"], got["spec"]["version"]) == ({"EXTRA": "2"}, "v1")
    ok(ccs_server, "app", "rm", "-c", unique, "web-app")
    ok(ccs_server, "cluster", "rm", unique, "--force")


def test_apply_errors_keep_their_exit_codes(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    ok(ccs_server, "cluster", "create", unique)
    bad = small_app(tmp_path, template="services:\n  web:\n    image: x\n    ports: [{target: nope}]\n")
    res = cli(ccs_server, "app", "apply", "-c", unique, "-f", str(bad))
    assert res.returncode == 4 and res.stderr.startswith("error: ") and "services.web.ports" in res.stderr
    res = cli(ccs_server, "app", "apply", "-c", unique, "-f", str(bad), "--push-to", "127.0.0.1:5000")
    assert res.returncode == 2 and "only meaningful with --build" in res.stderr, res.stderr
    built = small_app(tmp_path, "built", template="services:\n  web:\n    build: .\n")
    res = cli(ccs_server, "app", "apply", "-c", unique, "-f", str(built))  # no --build: the server says to use it
    assert res.returncode == 4 and "services.web.build: " in res.stderr and "--build" in res.stderr, res.stderr
    res = cli(ccs_server, "app", "apply", "-c", unique, "-f", str(built), "--build")  # nowhere to push
    assert res.returncode == 4, res.stderr
    assert res.stderr.strip() == ("error: services.web.build: no registry to push to: pass --push-to REGISTRY, "
                                  "or name one in services.web.image (e.g. registry.example.com/team/app)")
    # a template the server refuses for something else is refused by its dry run, before any build
    # (no engine is touched: this test runs without Docker)
    other = small_app(tmp_path, "other", template="services:\n  web:\n    build: .\n    volumes: [./data:/data]\n")
    for command in ("apply", "deploy"):
        res = cli(ccs_server, "app", command, "-c", unique, "-f", str(other), "--build", "--push-to", "127.0.0.1:1")
        assert res.returncode == 4, (command, res.stderr)
        assert res.stderr.startswith("error: services.web.volumes[0]: ") and "building" not in res.stderr
    assert as_json(ccs_server, "app", "ls", "-c", unique) == []
    ok(ccs_server, "cluster", "rm", unique)


def _revisions(server: Any, cluster: str) -> list[Any]:
    import ccs

    with ccs.Client(server.address, server.token, tls=True, ca_pem=server.ca_pem) as client:
        return client.applications.revisions(cluster, "web-app")
