"""``ccs app deploy|update --wait`` over real gRPC to the in-process fake API, whose
``reconcile_hook`` plays the control plane: plain progress lines without a terminal, the
one-line error and the exit codes 8 (deploy failed) and 9 (timed out), and a run from a plain
subprocess as the end-to-end tests will do it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from ccs.config import Context, upsert_context
from ccs.testing import FakeApi, ThreadedServer, serve_in_thread
from ccs.v1 import resources_pb2 as pb
from cli.main import app
from cli.progress import parse_duration

pytestmark = pytest.mark.timeout(60)
TOKEN = "cli-token"
CLEAN_ENV = {k: None for k in ("CCS_SERVER", "CCS_TOKEN", "CCS_CONTEXT", "CCS_CLUSTER", "CCS_DEBUG",
                                "CCS_INSECURE", "CCS_CA_FILE")}
TEMPLATE = "services:\n  web: {image: nginx, deploy: {replicas: 2}}\n  db: {image: postgres}\n"
ROOT = Path(__file__).resolve().parents[2]
Hook = Callable[[FakeApi, str, str], None]


def runs(api: FakeApi, cluster: str, app_name: str) -> None:
    """Every service of the application runs its current generation; older ones are retired."""
    for key, svc in list(api.objects.items()):
        if key[0] != "service" or key[1:3] != (cluster, app_name):
            continue
        assert isinstance(svc, pb.Service)
        gen, name, n = svc.generation, svc.meta.name, svc.spec.replicas
        for slot in range(1, n + 1):
            if gen > 1:
                api.add_container(cluster, app_name, name, slot, "n1", generation=gen - 1,
                                  desired=pb.DESIRED_STATE_REMOVED)
            api.add_container(cluster, app_name, name, slot, "n1", generation=gen)
        api.set_service_status(cluster, app_name, name, n, n)
    if api._releases(cluster, app_name):  # an update started a release: it succeeds at once here
        api.set_release(cluster, app_name, phase=pb.RELEASE_PHASE_SUCCEEDED)


def image_not_found(api: FakeApi, cluster: str, app_name: str) -> None:
    api.add_container(cluster, app_name, "web", 1, "n1", pb.CONTAINER_STATE_FAILED,
                      message="image not found: local/nope:1", reason=pb.FAILURE_REASON_IMAGE_NOT_FOUND)


@pytest.fixture
def fake() -> FakeApi:
    api = FakeApi(token=TOKEN)
    api.commit([(("cluster", "prod"), pb.Cluster(meta=pb.Meta(name="prod")))])
    api.add_node("prod", "n1")
    return api


@pytest.fixture
def served(fake: FakeApi) -> Iterator[ThreadedServer]:
    with serve_in_thread(fake) as s:
        yield s


@pytest.fixture
def config(tmp_path: Path, served: ThreadedServer) -> Path:
    path = tmp_path / "config.yaml"
    upsert_context("test", Context(server=served.address, token=TOKEN, cluster="prod", tls=False), path)
    return path


@pytest.fixture
def compose(tmp_path: Path) -> Path:
    d = tmp_path / "shop"
    d.mkdir()
    (d / "compose.yaml").write_text(TEMPLATE)
    return d / "compose.yaml"


def ccs(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=CLEAN_ENV)


def set_hook(served: ThreadedServer, fake: FakeApi, hook: Hook | None) -> None:
    served.call(setattr, fake, "reconcile_hook", hook)


def error_line(result: Result) -> str:
    """The one ``error:`` line, which must come last on stderr."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    return errors[0]


def test_deploy_wait_prints_plain_progress_and_exits_0(
    config: Path, compose: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    set_hook(served, fake, runs)
    plain = ccs(config, "app", "deploy", "-f", str(compose))
    ccs(config, "app", "rm", "shop")
    waited = ccs(config, "app", "deploy", "-f", str(compose), "--wait", "--timeout", "30s")
    assert waited.exit_code == 0, waited.stderr
    assert waited.stdout.splitlines()[1].split()[:2] == plain.stdout.splitlines()[1].split()[:2] == ["shop", "running"]
    lines = waited.stderr.splitlines()
    assert "web 2/2 running 2/2 healthy" in lines and "db 1/1 running 1/1 healthy" in lines
    assert lines[-1].startswith("application shop is ready: 2 service(s), 3/3 healthy")
    assert all(ch == "\n" or ch.isprintable() for ch in waited.stderr), "no control characters"


def test_update_wait_waits_for_the_new_version(
    config: Path, compose: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    set_hook(served, fake, runs)
    assert ccs(config, "app", "deploy", "-f", str(compose), "--wait").exit_code == 0
    compose.write_text(TEMPLATE.replace("nginx", "nginx:2"))
    result = ccs(config, "app", "update", "shop", "-f", str(compose), "--wait", "--timeout", "90")
    assert result.exit_code == 0, result.stderr
    web = served.call(lambda: fake.objects[("service", "prod", "shop", "web")])
    assert isinstance(web, pb.Service) and web.generation == 2
    assert "application shop is ready" in result.stderr


def test_image_not_found_exits_8_with_one_error_line(
    config: Path, compose: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    set_hook(served, fake, image_not_found)
    result = ccs(config, "app", "deploy", "-f", str(compose), "--wait")
    assert result.exit_code == 8, (result.stdout, result.stderr)
    assert error_line(result) == "error: service web: image not found: local/nope:1"


def test_timeout_exits_9_naming_the_services(config: Path, compose: Path) -> None:
    result = ccs(config, "app", "deploy", "-f", str(compose), "--wait", "--timeout", "0.5s")
    assert result.exit_code == 9, (result.stdout, result.stderr)
    assert error_line(result).startswith("error: timed out after 0.5s waiting for db (")
    assert "web (" in error_line(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "5m"], "only meaningful with --wait"),
        (["--wait", "--dry-run"], "cannot be combined with --dry-run"),
        (["--wait", "--timeout", "soon"], "must be a duration like 1m30s"),
    ],
)
def test_usage_errors_exit_2(config: Path, compose: Path, args: list[str], message: str) -> None:
    result = ccs(config, "app", "deploy", "-f", str(compose), *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600), ("1m30s", 90),
                                               ("45", 45), ("2.5", 2.5), (" 2m ", 120),
                                               ("500ms", 0.5), ("1d", 86400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "5 m", "-1", "0", "0s", "inf", "1h-5m", "2M"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_duration(text)
    assert repr(text) in info.value.message


def test_works_from_a_plain_subprocess(
    compose: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    set_hook(served, fake, runs)
    env = {**{k: v for k, v in os.environ.items() if k not in CLEAN_ENV},
           "CCS_CONFIG": str(compose.parent / "none.yaml")}
    cmd = [sys.executable, "-m", "cli", "--server", served.address, "--token", TOKEN, "--insecure",
           "app", "deploy", "-c", "prod", "-f", str(compose), "--wait", "--timeout", "30s"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "web 2/2 running 2/2 healthy" in done.stderr.splitlines()
    assert "\x1b" not in done.stderr + done.stdout
    set_hook(served, fake, image_not_found)
    cmd[cmd.index("prod") + 0: cmd.index("prod") + 1] = ["prod", "--name", "broken"]
    failed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 8, failed.stderr
    assert failed.stderr.splitlines()[-1] == "error: service web: image not found: local/nope:1"
