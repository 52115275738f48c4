"""Control plane availability (issue 12): an agent fails over between API replicas, and `ccs logs`
works through any replica. Real etcd, two real ``ccs-server`` processes on it (TLS, one CA: the
second is given the first's master key, as an operator gives every replica), and one real
``ccs-agent`` on the local Docker Engine.

- The join token names both replicas (``@A,B``); the agent is started with ``--server A`` and the
  token, registers at A and learns B's node port from A's answers.
- Mid-release: a rolling update's first new container waits, unhealthy, for a file the test
  creates (no race: the release cannot move on before the test lets it). A, whose session the
  agent is on (A's log says so, B's does not) and which leads (started first), is SIGKILLed.
  The agent's next session is on B (B's log says so), and once the test lets the new containers
  become healthy the release finishes through B, which took the leadership over. From the kill to
  the end, the engine started no container that ran before the kill (its event stream says so),
  only the release's second new one, and the held new one still runs, started once.
- Logs: with both replicas up and the agent's session on A, `ccs logs` through B returns the
  container's output. Before, B answered FAILED_PRECONDITION "the agent of node ... is not
  connected to this server".
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

import ccs
from ccs.join_token import parse
from ccs.v1 import resources_pb2 as pb
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.polling import wait_for

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

WAIT = 90.0
TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: ["sh", "-c", "echo hello-from-$$VERSION; trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment:
      VERSION: ${VERSION:-v1}
    healthcheck:
      test: ["CMD", "sh", "-c", "[ $$VERSION = v1 ] || test -f /tmp/go"]
      interval: 1s
      timeout: 1s
      retries: 1
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first}
"""


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[ServerProc, ServerProc]]:
    etcd: EtcdProc = start_etcd(tmp_path, "failover-etcd")
    flags = ["--heartbeat-period", "1", "--leader-ttl", "3"]
    one = two = None
    try:
        one = start_server(tmp_path / "a", etcd.url, tmp_path / "a.yaml", extra=flags)
        two = start_server(tmp_path / "b", etcd.url, tmp_path / "b.yaml", extra=flags, expect_token=False)
        two.token = one.token
        yield one, two
    finally:
        for s in (one, two):
            if s is not None:
                s.stop(signal.SIGKILL)
        etcd.stop()


def client(server: ServerProc) -> ccs.Client:
    return ccs.Client(server.address, server.token, tls=True, ca_pem=server.ca_pem)


def says(server: ServerProc, event: str, node: str) -> bool:
    """Whether the server's JSON log has ``event`` for ``node``."""
    return any(f'"event": "{event}"' in line and f'"node": "{node}"' in line
               for line in server.log_path.read_text().splitlines())


def started_at(engine: docker.DockerClient, cluster: str) -> dict[str, str]:
    """Docker id -> StartedAt of the cluster's running containers."""
    out: dict[str, str] = {}
    for c in engine.containers.list(filters={"label": f"ccs.cluster={cluster}"}):
        out[c.id] = c.attrs["State"]["StartedAt"]
    return out


@contextlib.contextmanager
def starts_seen(engine: docker.DockerClient, cluster: str) -> Iterator[set[str]]:
    """The ids of the cluster's containers the engine starts from entry to exit: a stream the
    daemon filters, read in a thread (complete, unlike a later read of the engine's in-memory
    event buffer, which health checks' exec events would overflow)."""
    since = int(time.time())
    stream = engine.events(since=since, decode=True,
                           filters={"type": "container", "event": "start", "label": f"ccs.cluster={cluster}"})
    seen: set[str] = set()

    def read() -> None:
        with contextlib.suppress(Exception):  # the stream is closed under it at exit
            for event in stream:
                seen.add(event["id"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        stream.close()
        reader.join(10)


def let_new_ones_pass(engine: docker.DockerClient, cluster: str) -> None:
    for c in engine.containers.list(filters={"label": f"ccs.cluster={cluster}"}):
        env = c.attrs["Config"]["Env"] or []
        if "VERSION=v2" in env:
            c.exec_run(["touch", "/tmp/go"])


def test_agent_fails_over_mid_release_and_logs_work_through_any_replica(
    replicas: tuple[ServerProc, ServerProc], tmp_path: Path, unique: str, test_image: TestImages,  # noqa: F811
) -> None:
    a, b = replicas
    cluster, node, app = unique, f"{unique}-n", "web"
    token = create_cluster(a, cluster)
    assert parse(token).servers == tuple(sorted([a.address, b.address]))
    engine = docker.from_env()
    ca, cb = client(a), client(b)
    try:
        with agent_process(a.address, token, node, tmp_path / "agent", tmp_path / "agent.log"):
            wait_for("the agent's session on A", lambda: says(a, "session opened", node), WAIT)
            assert not says(b, "session opened", node)
            ca.applications.create(cluster, app, TEMPLATE)

            def running(version: str, healthy: bool = True) -> list[pb.Container]:
                want = pb.CONTAINER_STATE_HEALTHY if healthy else pb.CONTAINER_STATE_UNHEALTHY
                return [c for c in cb.containers.list(cluster, application=app)
                        if c.spec.environment.get("VERSION") == version and c.status.state == want
                        and c.desired_state == pb.DESIRED_STATE_RUNNING]

            wait_for("2 healthy v1 containers", lambda: len(running("v1")) == 2, WAIT)

            # `ccs logs` through B while the agent's session is on A.
            def logs_via_b() -> bytes:
                return b"".join(chunk.data for chunk in cb.containers.logs(cluster, app, "web"))

            assert b"hello-from-v1" in wait_for("logs through replica B", logs_via_b, WAIT)

            ca.applications.update(cluster, app, env={"VERSION": "v2"})
            wait_for("the first v2 container, held unhealthy", lambda: running("v2", healthy=False), WAIT)
            before = started_at(engine, cluster)
            assert len(before) == 3  # two v1 and the held v2
            with starts_seen(engine, cluster) as started:
                a.stop(signal.SIGKILL)  # mid-release, the replica the agent uses and the leader

                wait_for("the agent's session on B", lambda: says(b, "session opened", node), WAIT)

                def finished() -> bool:
                    let_new_ones_pass(engine, cluster)
                    release = cb.releases.get(cluster, app)
                    return release.status.phase == pb.RELEASE_PHASE_SUCCEEDED

                wait_for("the release to finish through B", finished, WAIT)
                wait_for("2 healthy v2 containers", lambda: len(running("v2")) == 2 and not running("v1"), WAIT)
                second = {x.status.docker_id for x in running("v2")} - set(before)
                wait_for("the second v2 container's start read from the stream", lambda: second <= started, WAIT)
            # From the kill to the end of the release, through B's complete set and every pass
            # after it, no container that ran before the kill was started again; the held v2 one
            # still runs, started once.
            assert not started & set(before), started
            held = [k for k, v in started_at(engine, cluster).items() if k in before]
            assert len(held) == 1 and started_at(engine, cluster)[held[0]] == before[held[0]]
            assert len(started) == 1, started  # the second v2 container, and nothing else
            # Logs through B still work, now that the session is on B.
            assert b"hello-from-v2" in wait_for("v2 logs through B", logs_via_b, WAIT)
            log = (tmp_path / "agent.log").read_text()
            assert "failing over to another API server" in log
    finally:
        ca.close()
        cb.close()
        remove_from_engine(cluster)
        engine.close()
