"""UNHEALTHY containers are replaced (issue 11, "Health"), end to end: real etcd and ``ccs-server``,
one real ``ccs-agent`` (no router) on the local Docker Engine.

Each container's health check is ``test -f /tmp/ok``, and its command creates ``/tmp/ok`` first
thing. The test makes a container unhealthy on purpose by removing the file with ``docker exec``;
no race is involved, and a replacement starts healthy because its command creates the file again.

- ``web`` (2 replicas, default settings, ``restart_policy.delay: 1s``): slot 1 turns unhealthy, is
  stopped (stop-first, the default order) and replaced by a container that carries
  ``ccs.replaces``; the ``UnhealthyReplaced`` event names it; slot 2 keeps its container
  throughout (same record, same Docker container, never retired).
- ``keep`` (``x-ccs.replace_unhealthy: false``) and ``swap`` (default) in one application, both made
  unhealthy: ``swap`` is replaced (the positive that shows the control plane looked and acts),
  while ``keep``'s status says its unhealthy container is not replaced, written by the same
  planner pass that would have replaced it, and its container is still the same one, UNHEALTHY.

Why one host and not the 3-host testbed: the rule is the control plane's reaction to the agent's
health verdict; one node shows it, and this module needs no testbed lock.
"""

from __future__ import annotations

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
WAIT = 90.0  # bounds every wait: health checks at 1 s, a 1 s restart delay, then backoff
HEALTHY, UNHEALTHY = pb.CONTAINER_STATE_HEALTHY, pb.CONTAINER_STATE_UNHEALTHY
SERVICE = """
    image: local/busybox:1
    command: ["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; while true; do sleep 1; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      timeout: 1s
      retries: 1
"""


@dataclass
class Node:
    server: ServerProc
    cluster: str
    name: str

    def api(self, fn: Callable[[Stubs], Awaitable[T]]) -> T:
        return call(self.server, fn)

    def deploy(self, app: str, template: str) -> None:
        self.api(lambda s: s.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=self.cluster, name=app, template=template), metadata=s.metadata, timeout=30))

    def containers(self, app: str, service: str) -> list[pb.Container]:
        resp = self.api(lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app, service=service), metadata=s.metadata, timeout=10))
        return sorted(resp.containers, key=lambda c: (c.slot, c.meta.created_at.ToNanoseconds()))

    def status(self, app: str, service: str) -> str:
        svc: pb.Service = self.api(lambda s: s.services.GetService(api_pb2.GetServiceRequest(
            cluster=self.cluster, application=app, name=service), metadata=s.metadata, timeout=10))
        return str(svc.status.message)

    def replaced_events(self) -> list[pb.Event]:
        resp = self.api(lambda s: s.events.ListEvents(api_pb2.ListEventsRequest(
            cluster=self.cluster), metadata=s.metadata, timeout=10))
        return [e for e in resp.events if e.reason == "UnhealthyReplaced"]


def wait_for(what: str, probe: Callable[[], T]) -> T:
    return polling.wait_for(what, probe, timeout=WAIT)


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path,
         test_image: TestImages) -> Iterator[Node]:  # noqa: F811
    n = Node(ccs_server, unique, f"{unique}-n1")
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, n.name, tmp_path / "agent", tmp_path / "agent.log"):
            wait_for("the node READY", lambda: n.api(lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=n.name), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY)
            yield n
    finally:
        remove_from_engine(unique)


def healthy(node: Node, app: str, service: str, count: int) -> list[pb.Container]:
    """The service's records once exactly ``count`` exist and all are HEALTHY (else [])."""
    found = node.containers(app, service)
    return found if len(found) == count and all(c.status.state == HEALTHY for c in found) else []


def make_unhealthy(docker_client: docker.DockerClient, c: pb.Container) -> None:  # noqa: F811
    result = docker_client.containers.get(c.status.docker_id).exec_run(["rm", "/tmp/ok"])
    assert result.exit_code == 0, result.output


def test_an_unhealthy_container_is_replaced_while_the_healthy_one_keeps_running(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    app = "health"
    node.deploy(app, f"""
services:
  web:{SERVICE}
    deploy:
      replicas: 2
      restart_policy: {{delay: 1s}}
""")
    sick, fine = wait_for("web: 2 HEALTHY", lambda: healthy(node, app, "web", 2))
    fine_started = docker_client.containers.get(fine.status.docker_id).attrs["State"]["StartedAt"]
    make_unhealthy(docker_client, sick)

    (event,) = wait_for("the UnhealthyReplaced event", node.replaced_events)
    assert (event.kind, event.object, event.type) == ("container", f"{app}/web/{sick.meta.name}", "Warning")
    assert "is replaced because it is unhealthy" in event.message and "stop-first" in event.message

    def replaced() -> list[pb.Container]:
        now = healthy(node, app, "web", 2)
        return now if {c.meta.id for c in now} != {sick.meta.id, fine.meta.id} else []

    after = wait_for("slot 1 replaced by a HEALTHY container, and the old record gone", replaced)
    new = next(c for c in after if c.slot == 1)
    assert new.meta.labels["ccs.replaces"] == sick.meta.id, new.meta.labels
    assert new.meta.labels["ccs.unhealthy.streak"] == "1" and new.meta.labels["ccs.restart.count"] == "1"
    # The healthy one kept serving: the same record and the same Docker container, never retired.
    kept = next(c for c in after if c.slot == 2)
    assert (kept.meta.id, kept.status.docker_id, kept.desired_state) == (
        fine.meta.id, fine.status.docker_id, pb.DESIRED_STATE_RUNNING)
    assert docker_client.containers.get(kept.status.docker_id).attrs["State"]["StartedAt"] == fine_started

    def removed() -> bool:
        try:
            docker_client.containers.get(sick.status.docker_id)
        except docker.errors.NotFound:
            return True
        return False

    wait_for("the unhealthy container removed from the engine", removed)


def test_replace_unhealthy_false_keeps_the_unhealthy_container(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    app = "health"
    node.deploy(app, f"""
services:
  keep:{SERVICE}
    deploy: {{restart_policy: {{delay: 1s}}}}
    x-ccs: {{replace_unhealthy: false}}
  swap:{SERVICE}
    deploy: {{restart_policy: {{delay: 1s}}}}
""")
    (keep,) = wait_for("keep HEALTHY", lambda: healthy(node, app, "keep", 1))
    (swap,) = wait_for("swap HEALTHY", lambda: healthy(node, app, "swap", 1))
    make_unhealthy(docker_client, keep)
    make_unhealthy(docker_client, swap)

    # The positive: with the default, the control plane replaces swap's container.
    (event,) = wait_for("swap's UnhealthyReplaced event", node.replaced_events)
    assert event.object == f"{app}/swap/{swap.meta.name}"
    wait_for("swap replaced by a HEALTHY container", lambda: [
        c for c in healthy(node, app, "swap", 1) if c.meta.labels.get("ccs.replaces") == swap.meta.id])
    # The negative, decided by a pass that saw keep UNHEALTHY: not replaced, and why.
    wait_for("keep's status: not replaced", lambda: "unhealthy, not replaced: slot 1 "
             "(x-ccs.replace_unhealthy: false)" in node.status(app, "keep"))
    (still,) = node.containers(app, "keep")
    assert (still.meta.id, still.status.docker_id) == (keep.meta.id, keep.status.docker_id)
    assert (still.status.state, still.desired_state) == (UNHEALTHY, pb.DESIRED_STATE_RUNNING)
    assert [e.object for e in node.replaced_events()] == [f"{app}/swap/{swap.meta.name}"]
