"""``ccs release ...`` and ``ccs route ls`` end to end over real gRPC to the in-process fake:
tables, formats, --wait's plain progress lines and its exit codes (0, 9, 10)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ccs.config import Context, upsert_context
from ccs.testing import FakeApi, ThreadedServer, serve_in_thread
from ccs.v1 import resources_pb2 as pb
from cli.commands.release import steps_option, steps_text
from cli.main import app

pytestmark = pytest.mark.timeout(60)
TOKEN = "cli-token"
CLEAN_ENV = {k: None for k in ("CCS_SERVER", "CCS_TOKEN", "CCS_CONTEXT", "CCS_CLUSTER", "CCS_DEBUG",
                                "CCS_INSECURE", "CCS_CA_FILE")}
V1 = "services: {web: {image: 'web:1', deploy: {replicas: 2}}}\n"
V2 = "services: {web: {image: 'web:2', deploy: {replicas: 2}}}\n"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi(token=TOKEN)


@pytest.fixture
def served(fake: FakeApi) -> Iterator[ThreadedServer]:
    with serve_in_thread(fake) as s:
        yield s


@pytest.fixture
def config(tmp_path: Path, served: ThreadedServer, fake: FakeApi) -> Path:
    path = tmp_path / "config.yaml"
    upsert_context("test", Context(server=served.address, token=TOKEN, tls=False), path)
    ccs(path, "cluster", "create", "prod")
    (tmp_path / "v1.yaml").write_text(V1)
    (tmp_path / "v2.yaml").write_text(V2)
    assert ccs(path, "app", "deploy", "-c", "prod", "-f", str(tmp_path / "v1.yaml"),
               "--name", "shop").exit_code == 0
    return path


def ccs(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=CLEAN_ENV)


def ok(config: Path, *args: str) -> str:
    result = ccs(config, *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def update(config: Path, tmp_path: Path, strategy: str) -> None:
    ok(config, "app", "update", "-c", "prod", "shop", "-f", str(tmp_path / "v2.yaml"),
       "--strategy", strategy)


def in_background(config: Path, served: ThreadedServer, fake: FakeApi, *args: str) -> tuple[
        threading.Thread, dict[str, Result]]:
    """Run a --wait command in a thread; return once its watch is open."""
    box: dict[str, Result] = {}
    before = served.call(lambda: len(fake.watch_requests))
    t = threading.Thread(target=lambda: box.update(r=ccs(config, *args)))
    t.start()
    while t.is_alive() and served.call(lambda: len(fake.watch_requests)) == before:
        threading.Event().wait(0.01)
    return t, box


def test_ls_and_get_show_phase_progress_and_history(config: Path, tmp_path: Path) -> None:
    update(config, tmp_path, "blue-green")
    out = ok(config, "release", "ls", "-c", "prod", "shop").splitlines()
    assert out[0].split() == ["NAME", "STRATEGY", "PHASE", "REVISIONS", "UPDATED", "WEIGHT",
                              "STEP", "AGE"]
    assert out[1].split()[:7] == ["r000001", "blue-green", "awaiting-shift", "1->2", "2/2", "0%", "-"]
    ok(config, "release", "shift", "-c", "prod", "shop", "--weight", "25")
    got = ok(config, "release", "get", "-c", "prod", "shop")
    assert got.splitlines()[1].split()[:6] == ["r000001", "blue-green", "awaiting-shift", "1->2",
                                               "2/2", "25%"]
    assert "services: web" in got and "history:" in got
    assert "  traffic shifted to 25%" in got.splitlines()
    data = json.loads(ok(config, "release", "get", "-c", "prod", "shop", "r000001", "-o", "json"))
    assert (data["status"]["phase"], data["status"]["weight"]) == ("RELEASE_PHASE_AWAITING_SHIFT", 25)
    listed = ok(config, "release", "ls", "-c", "prod", "shop", "-o", "yaml")
    assert "name: r000001" in listed


def test_canary_get_shows_steps_and_promote(config: Path, tmp_path: Path, fake: FakeApi,
                                            served: ThreadedServer) -> None:
    update(config, tmp_path, "canary")
    got = ok(config, "release", "get", "-c", "prod", "shop")
    # no --steps: the server's default steps, shown in the --steps syntax
    assert "steps:    10%,pause 30s,50%,pause 30s,100%" in got and "(max 5.00%)" in got  # the server's default analysis: the CLI sent none
    out = ok(config, "release", "promote", "-c", "prod", "shop")
    assert out.splitlines()[1].split()[2] == "progressing"  # a request: the planner acts on it later
    assert ok(config, "release", "get", "-c", "prod", "shop").splitlines()[1].split()[5] == "50%"


def test_wait_prints_plain_progress_lines_and_exits_0(
    config: Path, tmp_path: Path, fake: FakeApi, served: ThreadedServer
) -> None:
    update(config, tmp_path, "rolling")
    served.call(lambda: fake.set_release("prod", "shop", phase=pb.RELEASE_PHASE_PAUSED))
    t, box = in_background(config, served, fake, "release", "promote", "-c", "prod", "shop",
                           "--wait")
    served.call(lambda: fake.set_release("prod", "shop", step=1, updated=1))
    served.call(lambda: fake.set_release("prod", "shop", step=2, updated=2,
                                         phase=pb.RELEASE_PHASE_SUCCEEDED))
    t.join()
    result = box["r"]
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "release r000001 succeeded"
    progress = [ln for ln in lines if ln.startswith("release r000001 rolling:")]
    assert progress[-1] == "release r000001 rolling: succeeded, started 2/2, 2/2 updated ready"
    # Level-triggered: the middle state may be skipped when both changes land before a re-read.
    assert progress[0] == "release r000001 rolling: progressing, started 0/2, 0/2 updated ready"


def test_wait_exits_10_with_the_reason_when_rolled_back(
    config: Path, tmp_path: Path, fake: FakeApi, served: ThreadedServer
) -> None:
    update(config, tmp_path, "canary")
    t, box = in_background(config, served, fake, "release", "shift", "-c", "prod", "shop",
                           "--weight", "20", "--wait")
    served.call(lambda: fake.set_release("prod", "shop", phase=pb.RELEASE_PHASE_ROLLED_BACK,
                                         message="5xx ratio 0.30 above 0.05"))
    t.join()
    result = box["r"]
    assert result.exit_code == 10, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == ["error: release rolled-back: 5xx ratio 0.30 above 0.05"]
    assert "weight new 20% / old 80%" in result.stdout


def test_wait_exits_9_on_timeout(config: Path, tmp_path: Path) -> None:
    update(config, tmp_path, "blue-green")
    result = ccs(config, "release", "shift", "-c", "prod", "shop", "--weight", "10", "--wait",
                 "--timeout", "0.1")
    assert result.exit_code == 9, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: release r000001 still awaiting-shift after 0.1s")


def test_wait_with_json_keeps_stdout_parseable(config: Path, tmp_path: Path) -> None:
    update(config, tmp_path, "blue-green")
    result = ccs(config, "release", "confirm", "-c", "prod", "shop", "--wait", "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # the release as the request left it; the wait then follows it
    assert (data["status"]["phase"], data["status"]["requests"]) == ("RELEASE_PHASE_AWAITING_SHIFT", ["confirm"])
    assert "release r000001 succeeded" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["release", "get", "-c", "prod", "shop"], 3, "error: release 'shop (the application has had no release yet)' not found"),
        (["release", "confirm", "-c", "prod", "shop"], 3, "the application has had no release yet"),
        (["release", "ls", "-c", "prod", "nope"], 3, "application 'nope' not found"),
    ],
)
def test_errors_map_to_exit_codes(config: Path, args: list[str], code: int, message: str) -> None:
    result = ccs(config, *args)
    assert result.exit_code == code and message in result.stderr, (result.exit_code, result.stderr)


def test_shift_weight_out_of_range_is_a_usage_error(config: Path) -> None:
    result = ccs(config, "release", "shift", "-c", "prod", "shop", "--weight", "120")
    assert result.exit_code == 2 and "--weight" in result.output + result.stderr


def test_route_ls_one_row_per_backend(config: Path, fake: FakeApi, served: ThreadedServer) -> None:
    assert ok(config, "route", "ls", "-c", "prod").split() == [
        "DOMAIN", "PATH", "SERVICE", "BACKEND", "ADDRESS", "WEIGHT", "GROUP", "MATCH"]
    table = pb.RoutingTable(cluster="prod", version=3, routes=[
        pb.RouteEntry(application="shop", service="web", domain="shop.example", path="/api",
                      match_header="X-Beta", match_value="1", backends=[
                          pb.RouteBackend(container="shop-web-1", node="n1", address="10.0.0.1",
                                          port=32768, weight=256, group="stable"),
                          pb.RouteBackend(container="shop-web-1-g2", node="n2",
                                          address="10.0.0.2", port=32769, weight=0,
                                          group="canary")]),
        pb.RouteEntry(application="blog", service="www", domain="blog.example")])
    served.call(fake.set_routes, "prod", table)
    rows = [ln.split() for ln in ok(config, "route", "ls", "-c", "prod").splitlines()[1:]]
    assert rows == [
        ["shop.example", "/api", "shop/web", "shop-web-1@n1", "10.0.0.1:32768", "256", "stable",
         "header", "X-Beta=1"],
        ["shop.example", "/api", "shop/web", "shop-web-1-g2@n2", "10.0.0.2:32769", "0", "canary",
         "header", "X-Beta=1"],
        ["blog.example", "/", "blog/www", "-", "-", "-", "-", "-"],
    ]
    data = json.loads(ok(config, "route", "ls", "-c", "prod", "-o", "json"))
    assert data["version"] == "3" and len(data["routes"]) == 2


def test_steps_option_round_trips_and_names_the_bad_token() -> None:
    import typer

    steps = steps_option("10%,pause 30s,50%,pause,100%")
    assert steps is not None and steps_text(steps) == "10%,pause 30s,50%,pause,100%"
    with pytest.raises(typer.BadParameter, match="token 2 'pause 3x'"):
        steps_option("10%,pause 3x")


def test_route_ls_shows_the_certificate_of_an_https_domain() -> None:
    from cli.commands.route import rows

    table = pb.RoutingTable(routes=[
        pb.RouteEntry(application="shop", service="web", domain="shop.example", tls=pb.RouteTLS(secret="c", version=2)),
        pb.RouteEntry(application="shop", service="web", domain="plain.example"),
    ])
    assert [r[0] for r in rows(table)] == ["shop.example (tls c@2)", "plain.example"]


@pytest.mark.parametrize(("phase", "code", "says"), [
    (pb.RELEASE_PHASE_SUCCEEDED, 0, "release r000001 succeeded"),
    (pb.RELEASE_PHASE_FAILED, 10, "error: release failed: boom"),
])
def test_release_wait_names_a_release_and_exits_by_its_end(
    config: Path, tmp_path: Path, fake: FakeApi, served: ThreadedServer, phase: int, code: int, says: str
) -> None:
    """``ccs release wait APP NAME``: what a CI job runs after a trigger answered the release."""
    update(config, tmp_path, "rolling")
    t, box = in_background(config, served, fake, "release", "wait", "-c", "prod", "shop", "r000001")
    served.call(lambda: fake.set_release("prod", "shop", phase=phase, message="boom"))
    t.join()
    result = box["r"]
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert says in result.stdout + result.stderr


def test_trigger_create_prints_url_and_secret_once_as_shell_assignments(config: Path) -> None:
    made = ccs(config, "trigger", "create", "-c", "prod", "shop", "--action", "scale", "--service", "web")
    assert made.exit_code == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == "CCS_TRIGGER_URL=''" and lines[1].startswith("CCS_TRIGGER_SECRET=")
    secret = lines[1].split("=", 1)[1].strip("'")
    assert "trigger shop/scale (scale web) created; its secret is shown only now" in made.stderr
    for fmt in ("table", "json", "yaml"):
        assert secret not in ok(config, "trigger", "ls", "-c", "prod", "-o", fmt)
    ran = ok(config, "trigger", "run", "-c", "prod", "shop", "scale", "--replicas", "3")
    assert ran == "service shop/web: 3 replicas\n"
    rotated = ok(config, "trigger", "rotate", "-c", "prod", "shop", "scale")
    assert secret not in rotated and "CCS_TRIGGER_SECRET=" in rotated
    assert ok(config, "trigger", "rm", "-c", "prod", "shop", "scale") == "trigger shop/scale removed\n"
    bad = ccs(config, "trigger", "create", "-c", "prod", "shop", "--action", "deploy")
    assert bad.exit_code == 2 and "use one of redeploy," in " ".join(bad.stderr.split())


def test_app_update_blue_green_wait_exits_0_once_the_new_side_is_up_and_awaits_a_shift(
    config: Path, tmp_path: Path,
) -> None:
    """Before: ``--wait`` followed the release until it ended, which a blue-green release does
    only after an operator's confirm, so the command always timed out (exit 9)."""
    result = ccs(config, "app", "update", "-c", "prod", "shop", "-f", str(tmp_path / "v2.yaml"),
                 "--strategy", "blue-green", "--wait", "--timeout", "20s")
    assert result.exit_code == 0, result.output + result.stderr
    assert ("release r000001 is up and awaits a shift: the new side is ready (2/2), weight new 0% / old 100%; "
            "move traffic with `ccs release shift shop PERCENT`, then `ccs release confirm shop`") in result.stderr
    assert "succeeded" not in result.stderr
    rel = ok(config, "release", "get", "-c", "prod", "shop").splitlines()[1].split()
    assert rel[:3] == ["r000001", "blue-green", "awaiting-shift"]  # nothing was confirmed for the caller
