"""Secrets and configs end to end: real etcd and ``ccs-server``, one real ``ccs-agent`` on the
local Docker Engine (issue 12, "Secrets and configs").

- The container sees each secret and config as a file at its target, with the Compose
  uid/gid/mode, read-only; the file lives on a tmpfs of the node.
- The value is nowhere else: not in ``docker inspect`` (environment, labels, command, anything),
  not in the server's or the agent's log, not in events, the audit log or any ``-o json`` output.
- ``ccs secret update`` rolls the service: a new container with the new value replaces the old
  one, and the old container's files are removed from the node with it.

Run under the Docker lock (BRIEFING): ``flock /run/ccs-docker.lock pytest ...``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call

from .cli_process import checked
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
VALUE = "s3cr3t-value-7f1e2d"
VALUE2 = "s3cr3t-value-second-9a8b"
CONFIG = "listen=8080"
FILES_ROOT = Path("/run/ccs/files")
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""
TEMPLATE = f"""
services:
  web:
    image: local/busybox:1
    command: {IDLE}
    environment: {{GREETING: hello}}
    labels: {{team: a}}
    secrets:
      - db
      - {{source: db, target: /etc/pw, uid: "1000", gid: "1001", mode: "0440"}}
    configs:
      - {{source: conf, target: /etc/app.conf}}
secrets:
  db: {{external: true}}
configs:
  conf: {{content: "{CONFIG}"}}
"""


@dataclass
class Node:
    server: ServerProc
    cluster: str
    name: str
    log: Path

    def containers(self, app: str) -> list[pb.Container]:
        resp = call(self.server, lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app), metadata=s.metadata, timeout=10))
        return list(resp.containers)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path, test_image: TestImages) -> Iterator[Node]:  # noqa: F811
    n = Node(ccs_server, unique, f"{unique}-n1", tmp_path / "agent.log")
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, n.name, tmp_path / "agent", n.log):
            polling.wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=n.name), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, timeout=90)
            yield n
    finally:
        remove_from_engine(unique)
        root = FILES_ROOT / f"{unique}-{n.name}"
        subprocess.run(["umount", str(root)], capture_output=True, check=False)
        subprocess.run(["rmdir", str(root)], capture_output=True, check=False)


def run(server: ServerProc, *args: str) -> str:
    """Both outputs of a ``ccs`` that must succeed (a secret must appear in neither)."""
    res = checked(server, *args)
    return res.stdout + res.stderr


def sh(engine: docker.DockerClient, docker_id: str, *cmd: str) -> tuple[int, str]:
    code, out = engine.containers.get(docker_id).exec_run(["/bin/busybox", *cmd])
    return code, out.decode(errors="replace").strip()


def running(node: Node, app: str, generation: int) -> list[pb.Container]:
    return [c for c in node.containers(app) if c.status.state == pb.CONTAINER_STATE_RUNNING
            and c.spec_generation == generation]


def test_secrets_and_configs_are_files_in_the_container_and_nowhere_else(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    server, cluster, app = node.server, node.cluster, "vault"

    async def create() -> None:
        async with server.client() as client:
            await client.secrets.create(cluster, "db", VALUE.encode())
            await client.applications.create(cluster, app, TEMPLATE)

    asyncio.run(create())
    (web,) = polling.wait_for("web running", lambda: running(node, app, 1), timeout=120)
    docker_id = web.status.docker_id

    # In the container: the files, their owners and modes, read-only.
    assert sh(docker_client, docker_id, "cat", "/run/secrets/db") == (0, VALUE)
    assert sh(docker_client, docker_id, "cat", "/etc/pw") == (0, VALUE)
    assert sh(docker_client, docker_id, "cat", "/etc/app.conf") == (0, CONFIG)
    assert sh(docker_client, docker_id, "stat", "-c", "%a %u %g", "/run/secrets/db") == (0, "444 0 0")
    assert sh(docker_client, docker_id, "stat", "-c", "%a %u %g", "/etc/pw") == (0, "440 1000 1001")
    assert sh(docker_client, docker_id, "stat", "-c", "%a %u %g", "/etc/app.conf") == (0, "444 0 0")
    code, _ = sh(docker_client, docker_id, "sh", "-c", "echo x > /run/secrets/db")
    assert code != 0, "a secret file must be read-only in the container"
    assert VALUE not in sh(docker_client, docker_id, "env")[1]

    # Not in docker inspect (environment, labels, command, mounts: only paths).
    inspect = docker_client.api.inspect_container(docker_id)
    assert VALUE not in json.dumps(inspect)
    sources = {m["Destination"]: m["Source"] for m in inspect["Mounts"]}
    assert set(sources) == {"/run/secrets/db", "/etc/pw", "/etc/app.conf"}
    assert all(not m["RW"] for m in inspect["Mounts"])
    # On the node, on a tmpfs of the agent's, under the container's id.
    host_file = Path(sources["/run/secrets/db"])
    assert host_file.read_text() == VALUE and host_file.parent.name == web.meta.id
    mounts = Path("/proc/mounts").read_text().splitlines()
    root = FILES_ROOT / f"{cluster}-{node.name}"
    assert any(line.split()[1] == str(root) and line.split()[2] == "tmpfs" for line in mounts)

    # A new version rolls the service: a new container with the new value; the old one's files go.
    async def update() -> None:
        async with server.client() as client:
            await client.secrets.update(cluster, "db", VALUE2.encode())

    asyncio.run(update())
    (web2,) = polling.wait_for("web rolled to generation 2", lambda: [
        c for c in running(node, app, 2) if len(node.containers(app)) == 1], timeout=180)
    assert web2.spec.secrets[0].version == 2
    assert sh(docker_client, web2.status.docker_id, "cat", "/run/secrets/db") == (0, VALUE2)
    assert not host_file.parent.exists(), "the replaced container's files are still on the node"
    assert VALUE2 not in json.dumps(docker_client.api.inspect_container(web2.status.docker_id))

    # Nowhere in what ccs says: logs of the server and the agent, events, audit, -o json.
    outputs = [
        server.log_path.read_text(errors="replace"),
        node.log.read_text(errors="replace"),
        run(server, "events", "-c", cluster, "-o", "json"),
        run(server, "audit", "ls", "-o", "json"),
        run(server, "secret", "ls", "-c", cluster, "-o", "json"),
        run(server, "secret", "get", "db@1", "-c", cluster, "-o", "json"),
        run(server, "container", "ls", "-c", cluster, "-a", app, "-o", "json"),
        run(server, "app", "get", app, "-c", cluster, "-o", "json"),
    ]
    for text in outputs:
        assert VALUE not in text and VALUE2 not in text

    # Removing the application removes the files with its containers.
    call(server, lambda s: s.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(
        cluster=cluster, name=app), metadata=s.metadata, timeout=30))
    polling.wait_for("the app's containers gone", lambda: not docker_client.containers.list(
        all=True, filters={"label": [f"ccs.cluster={cluster}", f"ccs.app={app}"]}), timeout=120)
    polling.wait_for("the files gone", lambda: not any(root.iterdir()), timeout=30)
