"""The agent's own first run of a container's health check (nodeagent.first_check), against the
real Docker Engine: the executor on a real DockerRuntime, its status reports collected.

Every health check here has a 300 s interval, so the engine's own first check comes 300 s after
the start, long after these tests end: a HEALTHY report while the engine still says "starting"
can only come from the agent's check, and there is no race with the engine to win. Whether a
check passes is the test's to choose (`test -f /tmp/ready`, the file made with `docker exec`
once the agent has failed several times), not a matter of time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.assignments import AssignmentBook
from nodeagent.executor import Executor
from nodeagent.mounted_files import MountedFiles
from nodeagent.runtime.docker_engine import DockerRuntime

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .runtime_helpers import CLUSTER, WAIT, clean_engine, container, rt  # noqa: F401

LONG_INTERVAL_MS = 300_000  # the engine's first check is 5 minutes after the start


@dataclass
class Node:
    executor: Executor
    book: AssignmentBook
    reports: list[agent_pb2.ContainerStatusUpdate] = field(default_factory=list)

    def run(self, c: pb.Container) -> None:
        """Assign `c` as this node's whole set (one container per test) and converge it."""
        self.book.apply(agent_pb2.SessionMessage(
            type=agent_pb2.SessionMessage.TYPE_COMPLETE, version=1,
            assignments=[agent_pb2.Assignment(action=agent_pb2.Assignment.ACTION_UPDATE, container=c)]))
        self.executor.enqueue(c.meta.id)

    def states(self, cid: str) -> list[int]:
        name = self._name(cid)
        return [r.status.state for r in self.reports if r.container == name]

    def _name(self, cid: str) -> str:
        c, _ = self.book.get(cid)
        assert c is not None
        return c.meta.name

    def last(self, cid: str) -> pb.ContainerStatus:
        name = self._name(cid)
        return next(r.status for r in reversed(self.reports) if r.container == name)


@pytest.fixture
async def node(rt: DockerRuntime, tmp_path: Path) -> AsyncIterator[Node]:  # noqa: F811
    book = AssignmentBook()
    n = Node(Executor(rt, book, lambda u: None, cluster=CLUSTER, node="node-1", address="127.0.0.1",
                      files=MountedFiles(tmp_path / "files")), book)
    n.executor._report = n.reports.append
    yield n
    await n.executor.close()


async def until(what: str, predicate: Callable[[], bool]) -> None:
    """Wait for a condition; the bound only turns a hang into a failure."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached: {what}")
        await asyncio.sleep(0.05)


def engine_health(client: docker.DockerClient, docker_id: str) -> dict[str, object]:
    health: dict[str, object] = client.api.inspect_container(docker_id)["State"].get("Health") or {}
    return health


def sleeper(app: str, **spec: object) -> pb.Container:
    return container(app, "web", "local/busybox:1", command=["sleep", "300"], **spec)  # type: ignore[arg-type]


async def test_a_container_is_reported_healthy_by_the_agents_check_while_the_engine_still_says_starting(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    c = sleeper("fc1", healthcheck=pb.HealthCheck(test=["CMD", "true"], interval_ms=LONG_INTERVAL_MS,
                                                  timeout_ms=5000, retries=3))
    node.run(c)
    await until("a HEALTHY report", lambda: pb.CONTAINER_STATE_HEALTHY in node.states(c.meta.id))

    healthy = next(r.status for r in node.reports if r.status.state == pb.CONTAINER_STATE_HEALTHY)
    assert healthy.healthy_by_agent_check
    assert "run by the agent" in healthy.message
    health = engine_health(docker_client, healthy.docker_id)
    assert health["Status"] == "starting"  # the engine has not judged it ...
    assert not health.get("Log")  # ... nor run its own check once
    assert node.states(c.meta.id)[0] in (pb.CONTAINER_STATE_PENDING, pb.CONTAINER_STATE_STARTING)


async def test_failing_early_runs_are_not_unhealthy_and_the_first_success_is_reported(
    node: Node, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    c = sleeper("fc2", healthcheck=pb.HealthCheck(test=["CMD-SHELL", "test -f /tmp/ready"],
                                                  interval_ms=LONG_INTERVAL_MS, timeout_ms=5000, retries=1))
    node.run(c)
    checks = node.executor.first_checks
    await until("3 failed runs of the agent's check", lambda: checks.failures.get(c.meta.id, 0) >= 3)

    assert pb.CONTAINER_STATE_UNHEALTHY not in node.states(c.meta.id)  # retries=1, yet not UNHEALTHY
    assert node.last(c.meta.id).state == pb.CONTAINER_STATE_STARTING
    docker_id = node.executor.docker_ids[c.meta.id]
    exec_id = docker_client.api.exec_create(docker_id, ["touch", "/tmp/ready"])["Id"]
    docker_client.api.exec_start(exec_id)

    await until("a HEALTHY report", lambda: pb.CONTAINER_STATE_HEALTHY in node.states(c.meta.id))
    assert node.last(c.meta.id).healthy_by_agent_check
    assert engine_health(docker_client, docker_id)["Status"] == "starting"
    assert pb.CONTAINER_STATE_UNHEALTHY not in node.states(c.meta.id)


@pytest.mark.parametrize("healthcheck", [None, pb.HealthCheck(disable=True), pb.HealthCheck(test=["NONE"])],
                         ids=["none", "disable", "NONE"])
async def test_a_container_without_a_health_check_is_running_as_before(
    node: Node, docker_client: docker.DockerClient, healthcheck: pb.HealthCheck | None,  # noqa: F811
) -> None:
    spec = {} if healthcheck is None else {"healthcheck": healthcheck}
    c = sleeper("fc3", **spec)
    node.run(c)
    await until("a RUNNING report", lambda: pb.CONTAINER_STATE_RUNNING in node.states(c.meta.id))
    await until("the executor idle", node.executor.idle)

    assert c.meta.id not in node.executor.first_checks.failures  # never checked by the agent
    assert not any(r.status.healthy_by_agent_check for r in node.reports)
    assert node.last(c.meta.id).state == pb.CONTAINER_STATE_RUNNING
    assert engine_health(docker_client, node.executor.docker_ids[c.meta.id]) == {}
