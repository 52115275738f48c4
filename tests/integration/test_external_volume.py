"""An external volume, end to end: real etcd and ``ccs-server``, one real ``ccs-agent`` on the local
Docker Engine (no router).

The template's ``db`` mounts ``external: true`` volume that does not exist on the node:

- Before: the container is placed on the node and stays PENDING there with a message that names
  the volume and the node; the agent has not created the volume.
- The test creates the volume with ``docker volume create`` (as an operator would). After: the
  agent's retry (backoff) finds it, the container runs with that very volume mounted, and the
  volume still has only the labels it was made with (ccs neither created nor relabelled it).

Nothing here races: the volume does not exist until the test creates it, and the test waits for
the PENDING report before it does.

Why one host and not the 3-host testbed: what is on trial is the agent's handling of one node's
engine; one node shows it, and this module needs no testbed lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow]

T = TypeVar("T")
AGENT = str(Path(sys.executable).parent / "ccs-agent")
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""


@dataclass
class Node:
    server: ServerProc
    cluster: str
    name: str
    log: Path
    agent: subprocess.Popen[bytes] | None = None

    def api(self, fn: Callable[[Stubs], Awaitable[T]]) -> T:
        async def main() -> T:
            s = stubs(self.server.address, self.server.token)
            try:
                return await fn(s)
            finally:
                await s.channel.close()

        return asyncio.run(main())

    def containers(self, app: str) -> list[pb.Container]:
        resp = self.api(lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app), metadata=s.metadata, timeout=10))
        return list(resp.containers)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def wait_for(what: str, probe: Callable[[], T], timeout: float = 90.0) -> T:
    """Poll until ``probe`` returns something truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:  # e.g. the node not registered yet
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(0.3)


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path,
         test_image: TestImages) -> Iterator[Node]:  # noqa: F811
    async def create(s: Stubs) -> str:
        await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=s.metadata)
        resp = await s.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique), metadata=s.metadata)
        return str(resp.token)

    n = Node(ccs_server, unique, f"{unique}-n1", tmp_path / "agent.log")
    token = n.api(create)
    log = open(n.log, "ab")  # noqa: SIM115 - owned by the child
    n.agent = subprocess.Popen(
        [AGENT, "--server", ccs_server.address, "--join-token", token, "--name", n.name,
         "--state-dir", str(tmp_path / "agent"), "--address", "127.0.0.1", "--no-router",
         "--log-format", "json"], stdout=log, stderr=log)
    log.close()
    engine = docker.from_env()
    try:
        wait_for("the node READY", lambda: n.api(lambda s: s.nodes.GetNode(
            api_pb2.GetNodeRequest(cluster=unique, name=n.name), metadata=s.metadata,
            timeout=10)).status.state == pb.NODE_STATE_READY)
        yield n
    finally:
        if n.agent.poll() is None:
            n.agent.send_signal(signal.SIGTERM)
            n.agent.wait(30)
        for c in engine.containers.list(all=True, filters={"label": f"ccs.cluster={unique}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for net in engine.networks.list(filters={"label": f"ccs.cluster={unique}"}):
            with contextlib.suppress(docker.errors.APIError):
                net.remove()
        for vol in engine.volumes.list(filters={"label": f"ccs.cluster={unique}"}):
            with contextlib.suppress(docker.errors.APIError):
                vol.remove()
        engine.close()


def test_a_container_waits_pending_for_a_missing_external_volume_then_runs_with_it(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    app, volume = "ext", f"{node.cluster}-handmade"
    template = f"""
services:
  db:
    image: local/busybox:1
    command: {IDLE}
    volumes: [data:/data]
volumes:
  data:
    external: true
    name: {volume}
"""
    node.api(lambda s: s.apps.CreateApplication(api_pb2.CreateApplicationRequest(
        cluster=node.cluster, name=app, template=template), metadata=s.metadata, timeout=30))
    try:
        # Before: placed on the node, pending there, with the reason naming the volume and the node.
        (db,) = wait_for("db pending on its node for the missing volume", lambda: [
            c for c in node.containers(app)
            if c.node == node.name and c.status.state == pb.CONTAINER_STATE_PENDING
            and "does not exist" in c.status.message])
        assert f"external volume {volume!r} (volumes.data) does not exist on node {node.name}" \
            in db.status.message, db.status.message
        assert not db.status.failure_reason, "a missing external volume is not a final failure"
        assert volume not in {v.name for v in docker_client.volumes.list()}, "the agent created it"

        docker_client.api.create_volume(volume, labels={"made": "by-hand"})

        # After: the agent's retry finds it; the container runs with that volume mounted.
        (db,) = wait_for("db running", lambda: [
            c for c in node.containers(app) if c.status.state == pb.CONTAINER_STATE_RUNNING], timeout=120)
        mounts = docker_client.api.inspect_container(db.status.docker_id)["Mounts"]
        assert [(m["Name"], m["Destination"]) for m in mounts] == [(volume, "/data")], node.log_tail()
        assert docker_client.api.inspect_volume(volume)["Labels"] == {"made": "by-hand"}
    finally:
        node.api(lambda s: s.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(
            cluster=node.cluster, name=app), metadata=s.metadata, timeout=30))
        wait_for("the app's containers gone", lambda: not docker_client.containers.list(
            all=True, filters={"label": [f"ccs.cluster={node.cluster}", f"ccs.app={app}"]}))
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_volume(volume)
