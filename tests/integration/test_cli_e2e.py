"""The ``ccs`` CLI as a user runs it (a subprocess with a config file) against the REAL
server on a real etcd (the ``ccs_server`` fixture in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import ccs
from ccs.v1 import api_pb2

from .cli_process import ROOT, cli, command, ok
from .stacks import dump_stacks, signal_state, with_default_sigint

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]
SMALL = """\
services:
  web:
    image: local/busybox:1
    command: ["httpd", "-f", "-p", "8080"]
    environment: {GREETING: "${GREETING:-hi}"}
    deploy: {replicas: 2}
"""


def as_json(server: Any, *args: str) -> Any:
    return json.loads(ok(server, *args, "-o", "json"))


def small_app(tmp_path: Path, name: str = "web-app", template: str = SMALL) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "compose.yaml").write_text(template)
    (d / ".env").write_text("GREETING=hello\n")
    return d / "compose.yaml"


def test_cluster_lifecycle(ccs_server: Any, unique: str) -> None:
    created = as_json(ccs_server, "cluster", "create", unique, "-d", "e2e", "--label", "t=1")
    assert created["meta"]["name"] == unique and created["meta"]["labels"] == {"t": "1"}
    assert unique in [c["meta"]["name"] for c in as_json(ccs_server, "cluster", "ls")]
    assert unique in ok(ccs_server, "cluster", "ls").split()
    assert as_json(ccs_server, "cluster", "get", unique)["description"] == "e2e"
    token = ok(ccs_server, "cluster", "join-token", unique).strip()
    assert token and "\n" not in token
    ok(ccs_server, "cluster", "rm", unique)
    res = cli(ccs_server, "cluster", "get", unique)
    assert res.returncode == 3 and res.stderr.startswith("error: ") and unique in res.stderr


def test_deploy_get_scale_and_remove(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    ok(ccs_server, "cluster", "create", unique)
    app = as_json(ccs_server, "app", "deploy", "-c", unique, "-f", str(small_app(tmp_path)),
                  "--version", "v1", "--env", "EXTRA=1")
    assert app["meta"]["name"] == "web-app"  # the template's directory name
    assert app["spec"]["files"] == {".env": "GREETING=hello\n"}
    assert (app["spec"]["version"], app["spec"]["env"]) == ("v1", {"EXTRA": "1"})
    got = as_json(ccs_server, "app", "get", "-c", unique, "web-app")
    assert set(got) == {"application", "services"}
    assert [s["meta"]["name"] for s in got["services"]] == ["web"]
    assert got["services"][0]["spec"]["image"] == "local/busybox:1"
    assert [a["meta"]["name"] for a in as_json(ccs_server, "app", "ls", "-c", unique)] == ["web-app"]
    scaled = as_json(ccs_server, "service", "scale", "-c", unique, "web-app/web", "3")
    assert scaled["spec"]["replicas"] == 3
    assert as_json(ccs_server, "service", "get", "-c", unique, "web-app/web")["spec"]["replicas"] == 3
    assert isinstance(as_json(ccs_server, "ps", "-c", unique, "-a", "web-app"), list)
    res = cli(ccs_server, "cluster", "rm", unique)
    assert res.returncode == 5, res.stderr  # not empty
    ok(ccs_server, "app", "rm", "-c", unique, "web-app")
    assert cli(ccs_server, "app", "get", "-c", unique, "web-app").returncode == 3
    ok(ccs_server, "cluster", "rm", unique, "--force")


def test_corpus_template_dry_run(ccs_server: Any, unique: str, compose_corpus: Path) -> None:
    ok(ccs_server, "cluster", "create", unique)
    app = as_json(ccs_server, "app", "deploy", "-c", unique, "--dry-run",
                  "-f", str(compose_corpus / "wordpress-mysql"))
    assert app["meta"]["name"] == "wordpress-mysql"
    assert as_json(ccs_server, "app", "ls", "-c", unique) == []
    ok(ccs_server, "cluster", "rm", unique)


def test_invalid_template_exits_4_with_the_field_path(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    ok(ccs_server, "cluster", "create", unique)
    bad = small_app(tmp_path, template="services:\n  web:\n    image: x\n    ports: [{target: nope}]\n")
    res = cli(ccs_server, "app", "deploy", "-c", unique, "-f", str(bad))
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: ")
    assert "services.web.ports" in res.stderr
    ok(ccs_server, "cluster", "rm", unique)


def test_an_explicit_empty_name_is_refused_not_replaced(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    """``--name ""`` is a bad name (exit 4, naming the field), not "use the directory name"."""
    ok(ccs_server, "cluster", "create", unique)
    res = cli(ccs_server, "app", "deploy", "-c", unique, "-f", str(small_app(tmp_path)), "--name", "")
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert res.stderr.startswith("error: name: ") and "required" in res.stderr, res.stderr
    assert as_json(ccs_server, "app", "ls", "-c", unique) == []  # nothing deployed as "web-app"
    ok(ccs_server, "cluster", "rm", unique)


@pytest.mark.parametrize("depth", [500, 10_000])
def test_deeply_nested_template_exits_4_naming_the_depth_limit(
    ccs_server: Any, unique: str, tmp_path: Path, depth: int
) -> None:
    ok(ccs_server, "cluster", "create", unique)
    deep = "services:\n  web:\n    image: x\nx-deep: " + "[" * depth + "]" * depth + "\n"
    res = cli(ccs_server, "app", "deploy", "-c", unique, "-f", str(small_app(tmp_path, template=deep)))
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: ")
    assert "nesting deeper than 100 levels" in res.stderr and "the limit is 100" in res.stderr
    ok(ccs_server, "cluster", "rm", unique)


def test_wrong_token_and_unknown_names(ccs_server: Any, unique: str) -> None:
    assert cli(ccs_server, "--token", "wrong", "cluster", "ls").returncode == 6
    assert cli(ccs_server, "app", "ls", "-c", unique).returncode == 3


def test_events_and_watch_see_a_deploy(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    ok(ccs_server, "cluster", "create", unique)

    async def scenario() -> api_pb2.WatchResponse:
        client: ccs.AsyncClient
        async with ccs_server.client() as client:
            rev = await client.events.current_revision(unique)
            watch = client.events.watch(unique, rev + 1, ["application", "service"])
            deploy = await asyncio.create_subprocess_exec(
                *command("--config", str(ccs_server.config_path), "app", "deploy", "-c", unique,
                         "-f", str(small_app(tmp_path))), cwd=ROOT,
            )
            assert await deploy.wait() == 0
            resp = await anext(watch)
            await watch.aclose()
            assert resp.revision > rev
            return resp

    resp = asyncio.run(scenario())
    kinds = {(e.kind, getattr(e, e.kind).meta.name) for e in resp.events}
    assert ("application", "web-app") in kinds
    events = as_json(ccs_server, "events", "-c", unique)
    assert {(e["kind"], e["object"]) for e in events} >= {
        ("cluster", unique), ("application", "web-app")}
    assert all(e["cluster"] == unique for e in events)


def test_events_follow_prints_live_events_until_interrupted(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    """Both pipes are drained by threads while the test runs: a CLI blocked writing into a
    full pipe cannot serve its SIGINT (asyncio's handler runs on the loop), which is a hang
    of the test, not of ccs. The line count is in the failure message, to tell an event
    storm from a hang.

    The CLI starts with SIGINT at its default, as under a terminal where a user presses
    Ctrl-C. Why this must be made so: a process started with SIGINT *ignored* keeps it
    ignored through exec, and Python then never installs its KeyboardInterrupt handler. A
    pytest started as a background job of a non-interactive shell (``bash -c 'pytest &'``,
    as CI wrappers do) has SIGINT ignored, and its children inherited that unless something
    in the run had reset pytest's handler first (asyncio's remove_signal_handler does): this
    was the "hang" that appeared in some full runs and never alone (issue 8)."""
    ok(ccs_server, "cluster", "create", unique)
    follow = subprocess.Popen(
        [*with_default_sigint(), "-m", "cli", "--config", str(ccs_server.config_path),
         "events", "-c", unique, "-f", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    out, err = follow.stdout, follow.stderr
    assert out is not None and err is not None

    def drain_out() -> None:
        for line in out:
            lines.put(line)

    def drain_err() -> None:
        errors.extend(err)

    readers = [threading.Thread(target=drain_out, daemon=True), threading.Thread(target=drain_err, daemon=True)]
    for r in readers:
        r.start()
    try:
        past = json.loads(lines.get(timeout=60))  # the cluster's "Created" event
        assert (past["kind"], past["object"]) == ("cluster", unique)
        ok(ccs_server, "app", "deploy", "-c", unique, "-f", str(small_app(tmp_path)))
        live = json.loads(lines.get(timeout=60))
        assert (live["kind"], live["object"]) == ("application", "web-app")
        follow.send_signal(signal.SIGINT)
        try:
            code = follow.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ccs events -f still running 30 s after SIGINT; {lines.qsize()} more "
                                 f"lines printed; stderr: {''.join(errors)[-2000:]}; pytest's SIGINT handler: "
                                 f"{signal.getsignal(signal.SIGINT)}; CLI {signal_state(follow.pid)}; stacks:\n"
                                 f"{dump_stacks(follow.pid)}") from None
        assert code == 130, "".join(errors)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
