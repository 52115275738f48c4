"""The CLI end to end over real gRPC to an in-process fake API (ccs.testing): argument
parsing, output formats, and the error -> exit code table."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from typer.testing import CliRunner, Result

from ccs.config import Context, upsert_context
from ccs.testing import FakeApi, ThreadedServer, serve_in_thread
from ccs.v1 import resources_pb2
from cli.main import app

TOKEN = "cli-token"
CLEAN_ENV = {k: None for k in ("CCS_SERVER", "CCS_TOKEN", "CCS_CONTEXT", "CCS_CLUSTER", "CCS_DEBUG",
                                "CCS_INSECURE", "CCS_CA_FILE")}
TEMPLATE = "services:\n  web: {image: nginx, deploy: {replicas: 2}}\n  db: {image: postgres}\n"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi(token=TOKEN, page_size=2)


@pytest.fixture
def served(fake: FakeApi) -> Iterator[ThreadedServer]:
    with serve_in_thread(fake) as s:
        yield s


@pytest.fixture
def config(tmp_path: Path, served: ThreadedServer) -> Path:
    path = tmp_path / "config.yaml"
    upsert_context("test", Context(server=served.address, token=TOKEN, tls=False), path)
    return path


def ccs(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=CLEAN_ENV)


def ok(config: Path, *args: str) -> str:
    result = ccs(config, *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def fails(config: Path, code: int, *args: str) -> str:
    """Run a failing command; check the exit code and the one-line error; return it."""
    result = ccs(config, *args)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def bundle(tmp_path: Path, name: str = "my_shop", template: str = TEMPLATE) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "compose.yaml").write_text(template)
    (d / ".env").write_text("TAG=1\n")
    return d / "compose.yaml"


def test_cluster_commands_and_formats(config: Path) -> None:
    out = ok(config, "cluster", "create", "prod", "-d", "production", "--label", "tier=1",
             "--pod-cidr", "10.144.0.0/12")
    assert out.splitlines()[0].split() == ["NAME", "DESCRIPTION", "POD", "CIDR", "ALLOWS", "LABELS", "AGE"]
    assert out.splitlines()[1].split()[:5] == ["prod", "production", "10.144.0.0/12", "-", "tier=1"]
    for name in ("a", "b", "c"):  # more than one page (the fake pages by 2)
        ok(config, "cluster", "create", name)
    listed = json.loads(ok(config, "cluster", "ls", "-o", "json"))
    assert [c["meta"]["name"] for c in listed] == ["a", "b", "c", "prod"]
    got = json.loads(ok(config, "cluster", "get", "prod", "-o", "json"))
    assert got["description"] == "production" and got["meta"]["labels"] == {"tier": "1"}
    assert "resource_version" in got["meta"]  # proto field names, not lowerCamelCase
    assert yaml.safe_load(ok(config, "cluster", "get", "prod", "-o", "yaml")) == got
    assert ok(config, "cluster", "join-token", "prod", "--rotate") == "join-prod-1\n"
    assert ok(config, "cluster", "rm", "a") == "cluster a removed\n"
    out = ok(config, "cluster", "update", "prod", "--allow", "privileged,cap_add", "--allow", "pid")
    assert out.splitlines()[1].split()[3] == "cap_add,pid,privileged"
    got = json.loads(ok(config, "cluster", "update", "prod", "--deny", "pid", "-o", "json"))
    assert got["policy"] == {"allow": ["cap_add", "privileged"]}
    assert "allow[0]: 'root' is not a policy name" in fails(config, 4, "cluster", "update", "prod", "--allow", "root")
    assert ccs(config, "cluster", "update", "prod").exit_code == 2
    assert [r.split()[0] for r in ok(config, "cluster", "ls").splitlines()[1:]] == ["b", "c", "prod"]


def test_app_deploy_get_update_and_remove(config: Path, tmp_path: Path, fake: FakeApi) -> None:
    ok(config, "cluster", "create", "prod")
    file = bundle(tmp_path)
    app_json = json.loads(ok(config, "app", "deploy", "-c", "prod", "-f", str(file),
                             "--env", "A=b=c", "--version", "v1", "-o", "json"))
    assert app_json["meta"]["name"] == "my-shop"  # the directory name as a DNS label
    assert app_json["spec"]["env"] == {"A": "b=c"}
    assert app_json["spec"]["files"] == {".env": "TAG=1\n"}
    got = json.loads(ok(config, "app", "get", "-c", "prod", "my-shop", "-o", "json"))
    assert set(got) == {"application", "services"}
    assert sorted(s["meta"]["name"] for s in got["services"]) == ["db", "web"]
    table = ok(config, "app", "get", "-c", "prod", "my-shop")
    assert "SERVICE" in table and "nginx" in table and "postgres" in table
    assert ok(config, "app", "ls", "-c", "prod").splitlines()[1].split()[:4] == [
        "my-shop", "running", "Deploying", "v1"]
    updated = json.loads(ok(config, "app", "update", "-c", "prod", "my-shop", "--version", "v2",
                            "--strategy", "canary", "-o", "json"))
    assert updated["spec"]["version"] == "v2"
    assert "profiles" not in updated["spec"]
    profiled = json.loads(ok(config, "app", "update", "-c", "prod", "my-shop", "--profile", "debug",
                             "--profile", "ops", "-o", "json"))
    assert profiled["spec"]["profiles"] == ["debug", "ops"]
    assert "profiles: debug, ops" in ok(config, "app", "get", "-c", "prod", "my-shop")
    kept = json.loads(ok(config, "app", "update", "-c", "prod", "my-shop", "--version", "v3", "-o", "json"))
    assert kept["spec"]["profiles"] == ["debug", "ops"]
    cleared = json.loads(ok(config, "app", "update", "-c", "prod", "my-shop", "--no-profiles", "-o", "json"))
    assert "profiles" not in cleared["spec"]
    assert ccs(config, "app", "update", "-c", "prod", "my-shop", "--no-profiles", "--profile", "x").exit_code == 2
    assert "stopped" in ok(config, "app", "stop", "-c", "prod", "my-shop")
    assert "running" in ok(config, "app", "start", "-c", "prod", "my-shop")
    assert ok(config, "app", "rm", "-c", "prod", "my-shop") == "application my-shop removed\n"
    assert json.loads(ok(config, "app", "ls", "-c", "prod", "-o", "json")) == []


def test_dry_run_deploys_nothing(config: Path, tmp_path: Path) -> None:
    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "x", "--dry-run")
    assert json.loads(ok(config, "app", "ls", "-c", "prod", "-o", "json")) == []


def test_services_containers_and_default_cluster_from_context(
    config: Path, tmp_path: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "shop")
    upsert_context("dflt", Context(server=served.address, token=TOKEN, cluster="prod", tls=False), config)
    lines = ok(config, "service", "ls", "-a", "shop").splitlines()  # -c from the context
    assert [ln.split()[:4] for ln in lines[1:]] == [["shop", "db", "postgres", "0/1"],
                                                    ["shop", "web", "nginx", "0/2"]]
    scaled = json.loads(ok(config, "service", "scale", "shop/web", "5", "-o", "json"))
    assert scaled["spec"]["replicas"] == 5
    assert json.loads(ok(config, "service", "get", "shop/web", "-o", "json"))["spec"]["replicas"] == 5
    served.call(fake.add_container, "prod", "shop", "web", 1, "node-1")
    served.call(fake.add_container, "prod", "shop", "db", 1, "node-2")
    rows = ok(config, "ps", "-a", "shop", "-s", "web").splitlines()[1:]
    assert [r.split()[:5] for r in rows] == [["shop-web-1", "shop", "web", "node-1", "running"]]
    by_node = json.loads(ok(config, "container", "ls", "-n", "node-2", "-o", "json"))
    assert [c["meta"]["name"] for c in by_node] == ["shop-db-1"]
    assert ok(config, "logs", "shop/web") == "shop-web-1 | hello from shop-web-1\n"


def test_a_container_named_alone_is_found_one_way_by_get_logs_and_exec(
    config: Path, tmp_path: Path, served: ThreadedServer, fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ccs container get`, `ccs logs CONTAINER` and `ccs exec CONTAINER` look a container up by
    its name through one helper (cli.commands.container.named): one answer and one error."""
    from cli.commands import container

    looked_up: list[str] = []
    real = container.named

    async def named(cl: object, cluster: str, name: str) -> resources_pb2.Container:
        looked_up.append(name)
        return await real(cl, cluster, name)  # type: ignore[arg-type]

    monkeypatch.setattr(container, "named", named)
    import cli.commands.container_exec as container_exec
    monkeypatch.setattr(container_exec, "named", named)
    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "shop")
    served.call(fake.add_container, "prod", "shop", "web", 1, "node-1")
    assert json.loads(ok(config, "container", "get", "shop-web-1", "-c", "prod", "-o", "json"))["service"] == "web"
    assert ok(config, "logs", "shop-web-1", "-c", "prod") == "hello from shop-web-1\n"
    for args in (["container", "get", "-c", "prod", "nosuch"], ["logs", "-c", "prod", "nosuch"],
                 ["exec", "-c", "prod", "nosuch", "--", "true"]):
        assert fails(config, 3, *args) == "error: container 'nosuch' not found in cluster 'prod'"
    assert looked_up == ["shop-web-1", "shop-web-1", "nosuch", "nosuch", "nosuch"]


def test_the_lookup_by_name_asks_the_server_for_that_name_not_for_every_container(
    config: Path, tmp_path: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    """cli.commands.container.named sends ``name`` (ListContainersRequest.name), so the server
    answers with that container alone; before, it listed every container of the cluster and
    picked one on the client."""
    import asyncio

    from ccs.client import AsyncClient
    from cli.commands import container

    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "shop")
    for slot in (1, 2, 3):
        served.call(fake.add_container, "prod", "shop", "web", slot, "node-1")
    asked: list[dict[str, object]] = []

    async def look() -> str:
        async with AsyncClient(served.address, TOKEN, tls=False) as cl:
            real = cl.containers.list

            async def spy(cluster: str, **kw: object) -> object:
                listed = await real(cluster, **kw)  # type: ignore[arg-type]
                asked.append({**kw, "returned": len(listed)})
                return listed

            cl.containers.list = spy  # type: ignore[assignment,method-assign]
            return (await container.named(cl, "prod", "shop-web-3")).meta.name

    assert asyncio.run(look()) == "shop-web-3"
    assert asked == [{"name": "shop-web-3", "returned": 1}]


def test_service_get_and_ps_show_container_addresses(
    config: Path, tmp_path: Path, served: ThreadedServer, fake: FakeApi
) -> None:
    """Each running container's address on the application network: a table under `service
    get`, in its -o json/yaml (status.addresses), and a column of `ps`."""
    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "shop")
    running = resources_pb2.CONTAINER_STATE_RUNNING
    served.call(lambda: fake.add_container("prod", "shop", "web", 1, "node-1", running,
                                           addresses={"default": "10.128.0.18"}))
    served.call(lambda: fake.add_container("prod", "shop", "web", 2, "node-2", running,
                                           addresses={"default": "10.128.0.3", "back": "10.128.1.3"}))
    served.call(fake.add_container, "prod", "shop", "web", 3, "", resources_pb2.CONTAINER_STATE_PENDING)
    served.call(fake.set_service_status, "prod", "shop", "web", 2, 2)
    out = ok(config, "service", "get", "-c", "prod", "shop/web")
    at = out.splitlines().index(next(ln for ln in out.splitlines() if ln.split()[:1] == ["CONTAINER"]))
    assert [ln.split() for ln in out.splitlines()[at:]] == [
        ["CONTAINER", "NODE", "NETWORK", "ADDRESS"],
        ["shop-web-1", "node-1", "default", "10.128.0.18"],
        ["shop-web-2", "node-2", "back", "10.128.1.3"],
        ["shop-web-2", "node-2", "default", "10.128.0.3"],
    ]
    as_json = json.loads(ok(config, "service", "get", "-c", "prod", "shop/web", "-o", "json"))
    assert as_json["status"]["addresses"][0] == {
        "container": "shop-web-1", "node": "node-1", "network": "default", "address": "10.128.0.18"}
    as_yaml = yaml.safe_load(ok(config, "service", "get", "-c", "prod", "shop/web", "-o", "yaml"))
    assert as_yaml["status"]["addresses"] == as_json["status"]["addresses"]
    lines = ok(config, "ps", "-c", "prod", "-a", "shop", "-s", "web").splitlines()
    assert lines[0].split()[:6] == ["NAME", "APPLICATION", "SERVICE", "NODE", "STATE", "ADDRESS"]
    assert [ln.split()[5] for ln in lines[1:]] == ["10.128.0.18", "back=10.128.1.3,default=10.128.0.3", "-"]
    [record] = json.loads(ok(config, "container", "ls", "-c", "prod", "-n", "node-1", "-o", "json"))
    assert record["status"]["addresses"] == {"default": "10.128.0.18"}


def test_nodes(config: Path, served: ThreadedServer, fake: FakeApi) -> None:
    ok(config, "cluster", "create", "edge")
    served.call(fake.add_node, "edge", "n1")
    assert ok(config, "node", "ls", "-c", "edge").splitlines()[1].split()[:4] == [
        "n1", "ready", "active", "worker"]
    assert ok(config, "node", "drain", "-c", "edge", "n1") == "node n1: drain\n"
    labelled = json.loads(ok(config, "node", "label", "-c", "edge", "n1", "zone=a", "-o", "json"))
    assert labelled["meta"]["labels"] == {"zone": "a"}
    assert json.loads(ok(config, "node", "get", "-c", "edge", "n1", "-o", "json"))["spec"][
        "availability"] == "NODE_AVAILABILITY_DRAIN"
    ok(config, "node", "rm", "-c", "edge", "n1")
    fails(config, 3, "node", "get", "-c", "edge", "n1")


def test_events_list_and_follow(config: Path, served: ThreadedServer, fake: FakeApi) -> None:
    ok(config, "cluster", "create", "prod")
    served.call(fake.add_event, "prod", "node", "n1", "Joined", "node n1 joined")
    assert ok(config, "events", "-c", "prod").splitlines()[1].split()[1:] == [
        "Normal", "Joined", "node/n1", "node", "n1", "joined"]
    # Follow: the stream sends one revision, then fails with a non-retryable code so the
    # command ends (exit 6) after printing the past and the live event.
    fake.watch_faults, fake.watch_fault_code = [1], grpc.StatusCode.PERMISSION_DENIED
    box: dict[str, Result] = {}
    runner = threading.Thread(target=lambda: box.update(r=ccs(config, "events", "-c", "prod",
                                                             "-f", "-o", "json")))
    runner.start()
    while not served.call(lambda: bool(fake.watch_requests)):
        threading.Event().wait(0.01)
    served.call(fake.add_event, "prod", "application", "shop", "Deployed", "live one")
    served.call(fake.add_event, "prod", "application", "shop", "Again", "not delivered")
    runner.join()
    result = box["r"]
    assert result.exit_code == 6, result.stderr
    reasons = [json.loads(line)["reason"] for line in result.stdout.splitlines()]
    assert reasons == ["Joined", "Deployed"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["cluster", "get", "nope"], 3, "error: cluster 'nope' not found"),
        (["cluster", "create", "dup"], 5, "error: cluster 'dup' already exists"),
        (["cluster", "rm", "dup"], 5, "still has 1 application(s) and 0 node(s)"),
        (["app", "get", "-c", "dup", "none"], 3, "application 'none' not found"),
        (["service", "scale", "-c", "dup", "shop/none", "2"], 3, "not found"),
    ],
)
def test_server_errors_map_to_exit_codes(
    config: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    ok(config, "cluster", "create", "dup")
    ok(config, "app", "deploy", "-c", "dup", "-f", str(bundle(tmp_path)), "--name", "shop")
    assert message in fails(config, code, *args)


def test_a_rate_limited_trigger_run_exits_14_with_the_wait_not_the_size_hint(
    config: Path, tmp_path: Path, fake: FakeApi
) -> None:
    """It exited 1 with "ccs requests are at most 4 MiB": every RESOURCE_EXHAUSTED was the size limit."""
    ok(config, "cluster", "create", "prod")
    ok(config, "app", "deploy", "-c", "prod", "-f", str(bundle(tmp_path)), "--name", "shop")
    ok(config, "trigger", "create", "-c", "prod", "shop", "--name", "ci", "--action", "redeploy")
    fake.trigger_rate_limited = True
    message = fails(config, 14, "trigger", "run", "-c", "prod", "shop", "ci")
    assert "more than 1 calls a second" in message and "retry in 1.0s" in message and "4 MiB" not in message
    fake.trigger_rate_limited = False
    ok(config, "trigger", "run", "-c", "prod", "shop", "ci")


def test_invalid_template_exits_4_naming_the_field(config: Path, tmp_path: Path) -> None:
    ok(config, "cluster", "create", "prod")
    bad = bundle(tmp_path, template="services:\n  web: {ports: ['80']}\n")
    assert "services.web.image" in fails(config, 4, "app", "deploy", "-c", "prod", "-f", str(bad))
    missing = bundle(tmp_path, "other", "services:\n  web: {image: x, env_file: [gone.env]}\n")
    line = fails(config, 4, "app", "deploy", "-c", "prod", "-f", str(missing))
    assert "services.web.env_file[0]" in line and "gone.env" in line


def test_auth_and_connection_errors(config: Path, tmp_path: Path) -> None:
    assert "invalid or revoked token" in fails(config, 6, "--token", "wrong", "cluster", "ls")
    assert "cannot reach 127.0.0.1:1" in fails(config, 7, "--server", "127.0.0.1:1", "cluster", "ls")
    empty = tmp_path / "empty.yaml"
    assert "no server configured" in fails(empty, 1, "cluster", "ls")
    assert "context 'zz' not found" in fails(config, 1, "--context", "zz", "cluster", "ls")


@pytest.mark.parametrize(
    "args",
    [
        ["cluster", "create", "x", "--label", "novalue"],
        ["service", "get", "-c", "x", "no-slash"],
        ["service", "scale", "-c", "x", "a/b", "-1"],
        ["ps", "-c", "x", "-s", "web"],
        ["app", "update", "-c", "x", "a", "--strategy", "yolo"],
        ["node", "ls"],  # no -c and no default cluster
        ["cluster", "ls", "-o", "xml"],
    ],
)
def test_usage_errors_exit_2(config: Path, args: list[str]) -> None:
    assert ccs(config, *args).exit_code == 2


def test_env_vars_select_server_and_token(served: ThreadedServer, tmp_path: Path) -> None:
    # CCS_INSECURE: the fake is plaintext; without it the CLI would insist on TLS (its default).
    env = {**CLEAN_ENV, "CCS_SERVER": served.address, "CCS_TOKEN": TOKEN, "CCS_CLUSTER": "e", "CCS_INSECURE": "1"}
    runner = CliRunner()
    no_cfg = ["--config", str(tmp_path / "none.yaml")]
    assert runner.invoke(app, [*no_cfg, "cluster", "create", "e"], env=env).exit_code == 0
    result = runner.invoke(app, [*no_cfg, "app", "ls", "-o", "json"], env=env)
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def test_node_enum_names_render_in_tables() -> None:
    from cli.output import enum_name

    assert enum_name(resources_pb2.NODE_STATE_READY, resources_pb2.NodeState, "NODE_STATE_") == "ready"
    assert enum_name(0, resources_pb2.NodeState, "NODE_STATE_") == "-"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90s", 1000.0 - 90), ("10m", 1000.0 - 600), ("500ms", 999.5), ("123.5", 123.5),
     ("1970-01-01T00:16:40Z", 1000.0)],
)
def test_logs_since_accepts_durations_seconds_and_times(value: str, expected: float) -> None:
    from cli.commands.container import parse_since

    assert parse_since(value, now=1000.0) == pytest.approx(expected)


def test_logs_since_rejects_garbage_naming_the_option() -> None:
    import typer

    from cli.commands.container import parse_since

    with pytest.raises(typer.BadParameter) as info:
        parse_since("yesterday-ish", now=1000.0)
    assert "'--since'" in info.value.format_message()


def test_service_endpoints_render_as_node_address_and_port() -> None:
    from ccs.v1 import resources_pb2 as R
    from cli.commands.service import endpoint_row

    e = R.Endpoint(container="web-1-abc123", node="host2", address="10.77.0.12", published=18081, target=8080)
    assert endpoint_row(e) == ["web-1-abc123", "host2", "10.77.0.12:18081", "8080/tcp"]
