"""The cluster policy and profiles end to end: CLI -> ccs-server -> a node agent -> the root dockerd.

A template with privileged keys is refused until `ccs cluster update --allow` admits them; then
it deploys and `docker inspect` shows each key on the container. `--deny` leaves the running
container alone and refuses the application's next update until the template drops the key.
`--profile` on an update adds the profile's service as a container.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from nodeagent.runtime import naming

from . import cli_process
from .docker_fixtures import TestImages, docker_client, remove_cluster_objects, test_image  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.etcd, pytest.mark.slow, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = f"cp{uuid.uuid4().hex[:8]}"
POD_RANGE = "100.103.0.0/16"  # away from 10.0.0.0/8, where default cluster ranges are


@pytest.fixture
def clean_engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:  # noqa: F811
    try:
        yield docker_client
    finally:
        remove_cluster_objects(docker_client, CLUSTER)


def cli(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_process.cli(server, *args, timeout=180)  # a deploy may wait for the engine


def ok(server: Any, *args: str) -> str:
    return cli_process.ok(server, *args, timeout=180)


def containers(client: docker.DockerClient, service: str) -> list[dict[str, Any]]:
    found = client.api.containers(filters={"label": [f"{naming.CLUSTER}={CLUSTER}", f"{naming.SERVICE}={service}"]})
    return [client.api.inspect_container(c["Id"]) for c in found]


TEMPLATE = """
services:
  web:
    image: {image}
    command: [sleep, "3600"]
    cap_drop: [NET_RAW]
    read_only: true
  tools:
    image: {image}
    command: [sleep, "3600"]
    cap_add: [SYS_ADMIN]
    devices: ["/dev/loop0:/dev/ccs-loop:r"]
    {pid}
  debug:
    image: {image}
    command: [sleep, "3600"]
    profiles: [debug]
"""


def test_policy_and_profiles_through_the_server_and_agent(
    ccs_server: Any, clean_engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    ok(ccs_server, "cluster", "create", CLUSTER, "--pod-cidr", POD_RANGE)
    token = ok(ccs_server, "cluster", "join-token", CLUSTER).strip()
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "nodeagent.main", "--server", ccs_server.address, "--join-token", token,
         "--name", f"{CLUSTER}-node", "--address", "127.0.0.1", "--state-dir", str(tmp_path / "agent"),
         "--no-router", "--log-format", "json", "--metrics-listen", "127.0.0.1:0"],
        stdout=log, stderr=log, cwd=ROOT,
    )
    try:
        compose = tmp_path / "app" / "compose.yaml"
        compose.parent.mkdir()
        compose.write_text(TEMPLATE.format(image=test_image.busybox, pid="pid: host"))
        deploy = ("app", "deploy", "-c", CLUSTER, "-f", str(compose), "--name", "tools", "--wait", "--timeout", "2m")

        refused = cli(ccs_server, *deploy)
        assert refused.returncode == 6, (refused.stdout, refused.stderr)
        line = refused.stderr.strip()
        for path, policy in (("cap_add[0]", "cap_add"), ("devices[0]", "devices"), ("pid", "pid")):
            assert f"services.tools.{path}: " in line and f"`ccs cluster update {CLUSTER} --allow {policy}`" in line
        assert containers(clean_engine, "tools") == []

        ok(ccs_server, "cluster", "update", CLUSTER, "--allow", "cap_add,devices", "--allow", "pid")
        shown = ok(ccs_server, "cluster", "get", CLUSTER).splitlines()
        assert shown[0].split()[4] == "ALLOWS" and shown[1].split()[3] == "cap_add,devices,pid"
        ok(ccs_server, *deploy)

        (tools,) = containers(clean_engine, "tools")
        host = tools["HostConfig"]
        assert host["CapAdd"] == ["CAP_SYS_ADMIN"] and host["PidMode"] == "host"
        assert host["Devices"] == [{"PathOnHost": "/dev/loop0", "PathInContainer": "/dev/ccs-loop",
                                    "CgroupPermissions": "r"}]
        (web,) = containers(clean_engine, "web")
        assert web["HostConfig"]["CapDrop"] == ["CAP_NET_RAW"] and web["HostConfig"]["ReadonlyRootfs"] is True
        assert containers(clean_engine, "debug") == []  # its profile was not chosen

        ok(ccs_server, "cluster", "update", CLUSTER, "--deny", "pid")
        refused = cli(ccs_server, "app", "update", "-c", CLUSTER, "tools", "--env", "X=1")
        assert refused.returncode == 6, (refused.stdout, refused.stderr)
        assert refused.stderr.strip() == (
            f"error: services.tools.pid: pid: host is refused by the policy of cluster {CLUSTER}; "
            f"allow with `ccs cluster update {CLUSTER} --allow pid`"
        )
        (still,) = containers(clean_engine, "tools")  # what was accepted keeps running
        assert still["Id"] == tools["Id"] and still["State"]["Running"]

        compose.write_text(TEMPLATE.format(image=test_image.busybox, pid=""))
        ok(ccs_server, "app", "update", "-c", CLUSTER, "tools", "-f", str(compose), "--profile", "debug",
           "--wait", "--timeout", "2m")
        (tools,) = containers(clean_engine, "tools")
        assert tools["HostConfig"]["PidMode"] == "" and tools["HostConfig"]["CapAdd"] == ["CAP_SYS_ADMIN"]
        (debug,) = containers(clean_engine, "debug")
        assert debug["State"]["Running"]
        app = json.loads(ok(ccs_server, "app", "get", "-c", CLUSTER, "tools", "-o", "json"))
        assert app["application"]["spec"]["profiles"] == ["debug"]
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()
        cli(ccs_server, "cluster", "rm", CLUSTER, "--force")
