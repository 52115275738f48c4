"""A service gated on an ``aliyun.probe`` probe, end to end: real etcd and ``ccs-server``, one real
``ccs-agent`` on the local Docker Engine with its HAProxy router.

``web`` carries ``aliyun.probe.cmd: test -f /tmp/ready`` and a route; ``worker`` depends on it
with ``condition: service_healthy``. The probe's outcome is the test's to choose: the file does
not exist until the test creates it with ``docker exec``, so there is no race to win (and
``x-ccs.replace_unhealthy: false`` keeps the control plane from replacing the UNHEALTHY ``web``
before the test gets to it).

- Before: the agent has run the probe and it failed (``web`` is reported UNHEALTHY, "probe failed
  3 times"). At that moment ``worker`` has no container, its status says it waits for ``web``,
  route's only backend, ``web``, has weight 0, and the node's router answers 503 for the domain
  (it knows the route and has no server in rotation) — never ``web``'s answer.
- After the file exists: ``web`` is HEALTHY, ``worker`` runs, ``web`` gets a weight in the route,
  and the router answers ``v1`` from ``web``.

Why one host and not the 3-host testbed: the gate is the agent's probe verdict and the control
plane's readiness rule; one node shows both, and this module needs no testbed lock.
"""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc, free_port
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import Stubs, call
from tests.integration.polling import wait_for

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [
    pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
]

T = TypeVar("T")
WAIT = 90.0  # a bound against hanging: the probe must fail 3 times before the first check
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""


@dataclass
class Node:
    server: ServerProc
    cluster: str
    name: str
    router_port: int
    log: Path

    def api(self, fn: Callable[[Stubs], Awaitable[T]]) -> T:
        return call(self.server, fn)

    def containers(self, app: str, service: str) -> list[pb.Container]:
        resp = self.api(lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app, service=service), metadata=s.metadata, timeout=10))
        return list(resp.containers)

    def service(self, app: str, service: str) -> pb.Service:
        svc: pb.Service = self.api(lambda s: s.services.GetService(api_pb2.GetServiceRequest(
            cluster=self.cluster, application=app, name=service), metadata=s.metadata, timeout=10))
        return svc

    def routes(self, domain: str) -> list[pb.RouteEntry]:
        async def list_routes(s: Stubs) -> pb.RoutingTable:
            table: pb.RoutingTable = await api_pb2_grpc.RouteServiceStub(s.channel).ListRoutes(
                api_pb2.ListRoutesRequest(cluster=self.cluster), metadata=s.metadata, timeout=10)
            return table

        return [r for r in self.api(list_routes).routes if r.domain == domain]

    def get(self, domain: str) -> tuple[int, str]:
        """GET / through this node's router with ``Host: domain``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.router_port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": domain})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace").strip()
        finally:
            conn.close()

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path,
         test_image: TestImages) -> Iterator[Node]:  # noqa: F811
    probe_node = Node(ccs_server, unique, f"{unique}-n1", free_port(), tmp_path / "agent.log")
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, probe_node.name, tmp_path / "agent", probe_node.log,
                           router_port=probe_node.router_port):
            wait_for("the node READY", lambda: probe_node.api(lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=probe_node.name), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, WAIT)
            yield probe_node
    finally:
        remove_from_engine(unique)


def state(c: pb.Container) -> str:
    return pb.ContainerState.Name(c.status.state)


def test_a_service_is_not_ready_routed_or_depended_on_until_its_aliyun_probe_passes(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    app, domain = "gated", f"{node.cluster}.gate.local"
    template = f"""
services:
  web:
    image: local/webapp:v1
    ports: ["8080"]
    labels:
      aliyun.probe.cmd: test -f /tmp/ready
      aliyun.routing.port_8080: {domain}
    x-ccs: {{replace_unhealthy: false}}  # web stays UNHEALTHY until the test creates the file
  worker:
    image: local/busybox:1
    command: {IDLE}
    depends_on:
      web: {{condition: service_healthy}}
"""
    node.api(lambda s: s.apps.CreateApplication(api_pb2.CreateApplicationRequest(
        cluster=node.cluster, name=app, template=template), metadata=s.metadata, timeout=30))

    # Before: the probe has run and failed three times, as it must while /tmp/ready is absent.
    (web,) = wait_for("web reported UNHEALTHY by its probe", lambda: [
        c for c in node.containers(app, "web")
        if c.status.state == pb.CONTAINER_STATE_UNHEALTHY and "probe failed 3 times" in c.status.message], WAIT)
    assert "command exited 1" in web.status.message, web.status.message
    assert node.containers(app, "worker") == [], "worker started before web's probe passed"
    worker_status = node.service(app, "worker").status
    assert "waiting for web to be healthy (0/1 healthy)" in worker_status.message, worker_status
    (route,) = node.routes(domain)
    # Configured with weight 0 (a health flip is then a weight change, not a router reload).
    assert [(b.container, b.weight) for b in route.backends] == [(web.meta.id, 0)], route

    def routed_answer() -> tuple[int, str] | None:
        """The router's answer once it knows the route (404 until then: an unknown host)."""
        answer = node.get(domain)
        return answer if answer[0] != 404 else None

    answer = wait_for("the router to know the route", routed_answer, WAIT)
    assert answer is not None and answer[0] == 503 and answer[1] != "v1", (answer, node.log_tail())

    # The probe's condition comes true.
    result = docker_client.containers.get(web.status.docker_id).exec_run(["touch", "/tmp/ready"])
    assert result.exit_code == 0, result.output

    wait_for("web HEALTHY", lambda: [state(c) for c in node.containers(app, "web")] == ["CONTAINER_STATE_HEALTHY"],
             WAIT)
    wait_for("worker running", lambda: [state(c) for c in node.containers(app, "worker")]
             == ["CONTAINER_STATE_RUNNING"], WAIT)
    wait_for("web in rotation", lambda: [(b.container, b.weight > 0) for r in node.routes(domain)
                                          for b in r.backends] == [(web.meta.id, True)], WAIT)
    assert wait_for("the router to send web's answer", lambda: node.get(domain) == (200, "v1"), WAIT)
