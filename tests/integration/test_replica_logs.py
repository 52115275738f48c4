"""`ccs logs` through any API replica (issue 12, "Control plane availability"), without Docker:
two real ``ccs-server`` processes on an etcd of their own, and the agent's real code in this
process (TLS, node certificate, join token) over FakeRuntime, whose containers log one line.

The agent is given only A; its session is on A. Logs asked through B are served: the agent keeps
a relay open to every replica it knows (it learned B from A's answers). Before, B answered
FAILED_PRECONDITION "the agent of node ... is not connected to this server". Then A is
SIGKILLed: the agent's session moves to B (B's log says so) and logs through B still work.
With a real engine and a release in flight: test_agent_failover.py."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.runtime import FakeRuntime
from tests.conftest import ServerProc, start_etcd, start_server
from tests.integration.grpc_helpers import stubs
from tests.integration.polling import until

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

WAIT = 60.0
TEMPLATE = "services:\n  web:\n    image: local/busybox:1\n"


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[ServerProc, ServerProc]]:
    etcd = start_etcd(tmp_path, "logs-etcd")
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


def says(server: ServerProc, event: str, node: str) -> bool:
    return any(f'"event": "{event}"' in line and f'"node": "{node}"' in line
               for line in server.log_path.read_text().splitlines())


async def test_logs_through_a_replica_the_agent_has_no_session_on(
    two: tuple[ServerProc, ServerProc], tmp_path: Path, unique: str
) -> None:
    a, b = two
    cluster, node = unique, f"{unique}-n"
    sa = stubs(a.address, a.token)
    await sa.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=cluster), metadata=sa.metadata)
    token = (await sa.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster),
                                            metadata=sa.metadata)).token
    await sa.channel.close()
    agent = Agent(a.address, runtime=FakeRuntime(), name=node, join_token=token, state_dir=tmp_path / "agent",
                  address="127.0.0.1", status_linger=0.01)
    run = asyncio.create_task(agent.run())
    cb = b.client()
    try:
        await cb.applications.create(cluster, "app", TEMPLATE)

        async def running() -> bool:
            cs = await cb.containers.list(cluster, application="app")
            return len(cs) == 1 and cs[0].status.state == pb.CONTAINER_STATE_RUNNING

        await until("the container running", running)
        assert says(a, "session opened", node) and not says(b, "session opened", node)

        async def logs_via_b() -> bool:
            chunks = [c.data async for c in cb.containers.logs(cluster, "app", "web")]
            return b"hollow container started" in b"".join(chunks)

        await until("logs through B", logs_via_b)

        a.stop(signal.SIGKILL)
        await until("the agent's session on B", lambda: asyncio.sleep(0, says(b, "session opened", node)))
        await until("logs through B after the failover", logs_via_b)
    finally:
        await cb.close()
        await agent.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await run
