"""``ccs app diff|history``, ``container get``, ``events`` filters, ``-o``/``--no-headers``/``-l``,
``context``, and the versions, as a user runs them (a subprocess with a config file) against the
REAL server on a real etcd (the ``ccs_server`` fixture in tests/conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccs.version import version

from .cli_process import ROOT, cli, command, environment, ok
from .test_cli_e2e import SMALL, as_json, small_app

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

CHANGED = SMALL.replace("local/busybox:1", "local/busybox:2").replace("replicas: 2", "replicas: 3")
EXIT_DIFFERENT = 12


def deployed(server: Any, cluster: str, tmp_path: Path, *extra: str) -> Path:
    ok(server, "cluster", "create", cluster)
    file = small_app(tmp_path)
    ok(server, "app", "deploy", "-c", cluster, "-f", str(file), "--version", "v1", *extra)
    return file


def in_tty(server: Any, *args: str) -> tuple[int, str]:
    """Run the CLI with its stdout on a pseudo-terminal; returns (exit code, what it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(command("--config", str(server.config_path), *args), stdout=slave,
                            stderr=subprocess.PIPE, cwd=ROOT, env=environment(server.config_path.parent))
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(60)
    return code, b"".join(chunks).decode()


# ---------------------------------------------------------------- app diff


def test_app_diff_shows_each_change_and_exits_12_only_when_there_is_one(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    file = deployed(ccs_server, unique, tmp_path)
    same = cli(ccs_server, "app", "diff", "web-app", "-c", unique, "-f", str(file))
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")

    changed = tmp_path / "v2" / "compose.yaml"
    changed.parent.mkdir()
    changed.write_text(CHANGED)
    (changed.parent / ".env").write_text("GREETING=hello\n")
    res = cli(ccs_server, "app", "diff", "web-app", "-c", unique, "-f", str(changed), "--version", "v2")
    assert res.returncode == EXIT_DIFFERENT, res.stderr
    lines = res.stdout.splitlines()
    assert "--- a/service/web" in lines and "+++ b/service/web" in lines
    assert {"-image: local/busybox:1", "+image: local/busybox:2", "-replicas: 2", "+replicas: 3",
            "-version: v1", "+version: v2", "-revision: 1", "+revision: 2"} <= set(lines)
    assert "\x1b[" not in res.stdout  # not a terminal: no colour
    assert lines[-1] == "# the update would start a rolling release"

    # The parameters are interpolated by the server, as the update would (the .env said hello).
    res = cli(ccs_server, "app", "diff", "web-app", "-c", unique, "-e", "GREETING=bye")
    assert res.returncode == EXIT_DIFFERENT, res.stderr
    assert {"-  GREETING: hello", "+  GREETING: bye"} <= set(res.stdout.splitlines())

    data = json.loads(cli(ccs_server, "app", "diff", "web-app", "-c", unique, "-f", str(changed),
                          "-o", "json").stdout)
    assert [(s["name"], s["change"]) for s in data["services"]] == [("web", "changed")]
    names = cli(ccs_server, "app", "diff", "web-app", "-c", unique, "-f", str(changed), "-o", "name")
    assert (names.returncode, names.stdout) == (EXIT_DIFFERENT, "service/web\n")
    assert (data["services"][0]["before"]["image"], data["services"][0]["after"]["image"]) == (
        "local/busybox:1", "local/busybox:2")

    # Nothing was written by any of them.
    app = as_json(ccs_server, "app", "get", "-c", unique, "web-app")["application"]
    assert (app["revision"], app["spec"]["version"]) == ("1", "v1")
    assert len(as_json(ccs_server, "app", "history", "web-app", "-c", unique)) == 1


def test_app_diff_is_coloured_on_a_terminal_unless_told_not_to(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    deployed(ccs_server, unique, tmp_path)
    code, out = in_tty(ccs_server, "app", "diff", "web-app", "-c", unique, "--version", "v9")
    assert code == EXIT_DIFFERENT
    assert "\x1b[31m-version: v1\x1b[0m" in out and "\x1b[32m+version: v9\x1b[0m" in out
    code, out = in_tty(ccs_server, "app", "diff", "web-app", "-c", unique, "--version", "v9", "--no-color")
    assert code == EXIT_DIFFERENT and "\x1b[" not in out and "+version: v9" in out


def test_app_diff_refuses_what_the_update_refuses(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    deployed(ccs_server, unique, tmp_path)
    bad = tmp_path / "bad" / "compose.yaml"
    bad.parent.mkdir()
    bad.write_text("services:\n  web:\n    image: x\n    ports: [{target: nope}]\n")
    for cmd in ("diff", "update"):
        res = cli(ccs_server, "app", cmd, "web-app", "-c", unique, "-f", str(bad))
        assert res.returncode == 4 and "services.web.ports" in res.stderr, (cmd, res.stderr)
    res = cli(ccs_server, "app", "diff", "nope", "-c", unique, "--version", "x")
    assert res.returncode == 3 and "application 'nope' not found" in res.stderr


def test_a_dry_run_deploy_of_a_name_taken_is_refused_as_the_deploy_is(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    """A dry run evaluates the write's guards: before, a dry-run deploy of an existing name said OK."""
    file = deployed(ccs_server, unique, tmp_path)
    for extra in ((), ("--dry-run",)):
        res = cli(ccs_server, "app", "deploy", "-c", unique, "-f", str(file), *extra)
        assert res.returncode == 5 and "already exists" in res.stderr, (extra, res.stderr)


# ---------------------------------------------------------------- app history


def test_app_history_lists_revisions_and_shows_one(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    deployed(ccs_server, unique, tmp_path)
    changed = tmp_path / "v2" / "compose.yaml"
    changed.parent.mkdir()
    changed.write_text(CHANGED)
    ok(ccs_server, "app", "update", "web-app", "-c", unique, "-f", str(changed), "--version", "v2")

    revs = as_json(ccs_server, "app", "history", "web-app", "-c", unique)
    assert [(r["revision"], r["note"], r["spec"]["version"], r["author"]) for r in revs] == [
        ("1", "deploy", "v1", "admin"), ("2", "update", "v2", "admin")]
    assert [r["template_digest"] for r in revs] == [
        "sha256:" + hashlib.sha256(t.encode()).hexdigest() for t in (SMALL, CHANGED)]

    table = ok(ccs_server, "app", "history", "web-app", "-c", unique).splitlines()
    assert table[0].split() == ["REVISION", "NOTE", "VERSION", "TEMPLATE", "IMAGES", "AUTHOR", "CREATED", "AGE"]
    first = table[1].split()
    # IMAGES is "-": local images are not pinned (no registry to ask).
    assert first[:6] == ["1", "deploy", "v1", "sha256:" + revs[0]["template_digest"][7:19], "-", "admin"]
    assert first[6].endswith("Z")

    one = yaml.safe_load(ok(ccs_server, "app", "history", "web-app", "-c", unique, "--revision", "1", "-o", "yaml"))
    assert (one["revision"], one["spec"]["template"], one["spec"]["version"]) == ("1", SMALL, "v1")
    assert ok(ccs_server, "app", "history", "web-app", "-c", unique, "--revision", "2") == CHANGED
    res = cli(ccs_server, "app", "history", "web-app", "-c", unique, "--revision", "9")
    assert res.returncode == 3 and "revision 9" in res.stderr


# ---------------------------------------------------------------- containers and events


def _containers(server: Any, cluster: str) -> list[dict[str, Any]]:
    """The application's container records, once the reconciler has made them (bounded wait)."""
    end = time.monotonic() + 60
    while True:
        found = as_json(server, "ps", "-c", cluster)
        if len(found) == 2 or time.monotonic() > end:
            return list(found)
        time.sleep(0.3)


def test_container_get_by_name(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    deployed(ccs_server, unique, tmp_path)
    listed = _containers(ccs_server, unique)
    assert len(listed) == 2, listed
    name = listed[0]["meta"]["name"]
    got = as_json(ccs_server, "container", "get", name, "-c", unique)
    assert (got["meta"]["name"], got["application"], got["service"]) == (name, "web-app", "web")
    assert ok(ccs_server, "container", "get", name, "-c", unique, "-o", "name").strip() == f"container/{name}"
    text = ok(ccs_server, "container", "get", name, "-c", unique)
    assert text.splitlines()[0].split()[:3] == ["NAME", "APPLICATION", "SERVICE"]
    assert "image:      local/busybox:1" in text
    res = cli(ccs_server, "container", "get", "nope", "-c", unique)
    assert res.returncode == 3 and "container 'nope' not found" in res.stderr


def test_events_filters_by_time_kind_and_application(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    deployed(ccs_server, unique, tmp_path)
    other = small_app(tmp_path, "other-app")
    ok(ccs_server, "app", "deploy", "-c", unique, "-f", str(other))
    ok(ccs_server, "service", "scale", "-c", unique, "web-app/web", "3")
    everything = as_json(ccs_server, "events", "-c", unique)
    assert {e["kind"] for e in everything} >= {"cluster", "application", "service"}

    apps = as_json(ccs_server, "events", "-c", unique, "--type", "application")
    assert apps and {e["kind"] for e in apps} == {"application"}
    mine = as_json(ccs_server, "events", "-c", unique, "--app", "web-app")
    assert {(e["kind"], e["object"]) for e in mine} >= {("application", "web-app"), ("service", "web-app/web")}
    assert all(e["object"] == "web-app" or e["object"].startswith("web-app/") for e in mine)
    both = as_json(ccs_server, "events", "-c", unique, "--app", "web-app", "--type", "service")
    assert [(e["kind"], e["reason"]) for e in both] == [("service", "Scaled")]
    assert len(as_json(ccs_server, "events", "-c", unique, "--since", "10m")) >= len(everything)
    assert as_json(ccs_server, "events", "-c", unique, "--since", "2100-01-01T00:00:00Z") == []
    # A release's events: the update starts one; asking it to roll back records one at once.
    changed = tmp_path / "v2" / "compose.yaml"
    changed.parent.mkdir()
    changed.write_text(CHANGED)
    ok(ccs_server, "app", "update", "web-app", "-c", unique, "-f", str(changed))
    ok(ccs_server, "release", "rollback", "web-app", "-c", unique)
    releases = as_json(ccs_server, "events", "-c", unique, "--since", "10m", "--type", "release", "--app", "web-app")
    assert ("release", "web-app/r000001", "Requested") in {(e["kind"], e["object"], e["reason"]) for e in releases}
    assert {e["kind"] for e in releases} == {"release"}
    assert as_json(ccs_server, "events", "-c", unique, "--type", "release", "--app", "other-app") == []
    res = cli(ccs_server, "events", "-c", unique, "--type", "bogus")
    assert res.returncode == 2 and "'bogus' is not one of" in res.stderr


# ---------------------------------------------------------------- output formats and label selectors


def test_output_formats_headers_and_label_selectors(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    ok(ccs_server, "cluster", "create", unique, "--label", "team=a")
    for name, team in (("one", "a"), ("two", "b")):
        ok(ccs_server, "app", "deploy", "-c", unique, "-f", str(small_app(tmp_path, name)), "--label", f"team={team}")

    assert ok(ccs_server, "app", "ls", "-c", unique, "-o", "name").split() == ["application/one", "application/two"]
    assert ok(ccs_server, "app", "ls", "-c", unique, "-o", "jsonpath={.items[*].meta.name}").split() == ["one", "two"]
    assert ok(ccs_server, "app", "get", "one", "-c", unique, "-o", "jsonpath=$.application.meta.labels.team") == "a\n"
    assert ok(ccs_server, "cluster", "get", unique, "-o", "jsonpath=.meta.labels").strip() == '{"team":"a"}'
    assert ok(ccs_server, "app", "ls", "-c", unique, "-l", "team=b", "-o", "name").split() == ["application/two"]
    assert ok(ccs_server, "app", "ls", "-c", unique, "-l", "team!=b", "-o", "name").split() == ["application/one"]
    assert ok(ccs_server, "app", "ls", "-c", unique, "-l", "team", "-l", "nope", "-o", "name") == ""
    assert unique in ok(ccs_server, "cluster", "ls", "-l", "team=a", "-o", "name")

    plain = ok(ccs_server, "app", "ls", "-c", unique).splitlines()
    assert plain[0].split()[0] == "NAME" and len(plain) == 3
    bare = ok(ccs_server, "app", "ls", "-c", unique, "--no-headers").splitlines()
    assert [line.split()[0] for line in bare] == ["one", "two"]
    code, out = in_tty(ccs_server, "app", "ls", "-c", unique, "--no-headers")  # rich's table on a terminal
    assert code == 0 and "NAME" not in out and "one" in out and "two" in out
    wide = ok(ccs_server, "app", "ls", "-c", unique, "-o", "wide").splitlines()
    assert wide[0].split()[-3:] == ["TEMPLATE-REVISION", "PROFILES", "LABELS"]
    assert wide[1].split()[-1] == "team=a"
    assert ok(ccs_server, "cluster", "ls", "-o", "wide", "--no-headers", "-l", "team=a").split()[0] == unique

    for bad, message in (("-o", "bogus"), ("-o", "jsonpath="), ("-o", "jsonpath={.items[}")):
        res = cli(ccs_server, "app", "ls", "-c", unique, bad, message)
        assert res.returncode == 2 and "--output" in res.stderr, (message, res.stderr)
    res = cli(ccs_server, "app", "ls", "-c", unique, "-l", "=x")
    assert res.returncode == 2 and "--selector" in res.stderr


# ---------------------------------------------------------------- contexts and versions


def test_context_ls_use_rename_rm(ccs_server: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    shutil.copy(ccs_server.config_path, config)
    original = yaml.safe_load(config.read_text())
    current = original["current-context"]
    token = original["contexts"][current]["token"]

    listed = cli(config, "context", "ls")
    assert listed.returncode == 0 and token not in listed.stdout
    head, first = listed.stdout.splitlines()[:2]
    assert head.split()[:3] == ["CURRENT", "NAME", "SERVER"] and first.split()[:3] == ["*", current, ccs_server.address]
    data = json.loads(cli(config, "context", "ls", "-o", "json").stdout)
    assert data[0]["name"] == current and data[0]["current"] is True and data[0]["token"] == "set"
    assert token not in json.dumps(data)

    assert cli(config, "context", "rename", current, "main").returncode == 0
    after = yaml.safe_load(config.read_text())
    assert after["current-context"] == "main" and after["contexts"]["main"]["token"] == token
    assert cli(config, "cluster", "ls").returncode == 0  # the renamed current context still connects
    assert cli(config, "context", "use", "nope").returncode == 3
    res = cli(config, "context", "rename", "main", "main2")
    assert res.returncode == 0
    after = yaml.safe_load(config.read_text())
    after["contexts"]["other"] = after["contexts"]["main2"]
    config.write_text(yaml.safe_dump(after))
    assert cli(config, "context", "rename", "main2", "other").returncode == 5
    assert cli(config, "context", "use", "other").returncode == 0
    assert yaml.safe_load(config.read_text())["current-context"] == "other"
    res = cli(config, "context", "rm", "other")
    assert res.returncode == 0 and "no context is current" in res.stdout
    left = yaml.safe_load(config.read_text())
    assert left["current-context"] is None and list(left["contexts"]) == ["main2"]
    assert cli(config, "context", "rm", "other").returncode == 3


def test_versions(ccs_server: Any) -> None:
    assert ok(ccs_server, "--version") == f"ccs {version()}\n"
    out = ok(ccs_server, "version").splitlines()
    assert out == [f"client: ccs {version()}", f"server: ccs {version()} ({ccs_server.address})"]
    data = json.loads(ok(ccs_server, "version", "-o", "json"))
    assert (data["client"], data["server"]) == (version(), version())
    bin_dir = Path(sys.executable).parent
    for prog in ("ccs-server", "ccs-agent"):
        res = subprocess.run([str(bin_dir / prog), "--version"], capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stdout) == (0, f"{prog} {version()}\n"), res.stderr
