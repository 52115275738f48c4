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

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import Stubs, call

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow]

T = TypeVar("T")
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""


@dataclass
class Node:
    server: ServerProc
    cluster: str
    name: str
    log: Path

    def api(self, fn: Callable[[Stubs], Awaitable[T]]) -> T:
        return call(self.server, fn)

    def containers(self, app: str) -> list[pb.Container]:
        resp = self.api(lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app), metadata=s.metadata, timeout=10))
        return list(resp.containers)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def wait_for(what: str, probe: Callable[[], T], timeout: float = 90.0) -> T:
    return polling.wait_for(what, probe, timeout=timeout)


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path,
         test_image: TestImages) -> Iterator[Node]:  # noqa: F811
    n = Node(ccs_server, unique, f"{unique}-n1", tmp_path / "agent.log")
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, n.name, tmp_path / "agent", n.log):
            wait_for("the node READY", lambda: n.api(lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=n.name), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY)
            yield n
    finally:
        remove_from_engine(unique)  # containers, networks, volumes and the fabric of the cluster


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
