"""An agent fails over to an API replica it learned from the server (issue 12, "Control plane
availability"), against two in-process Dispatcher doubles and FakeRuntime: the agent is given
only A; A's heartbeat answers name A and B; the agent keeps a logs relay open to both; A dies
and the agent's next session is on B, with its container untouched. The same against real
servers and a real engine: tests/integration/test_agent_failover.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.backoff import Backoff
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, complete, container
from .test_agent_reconnect import Dispatcher, serve, until_true


class Naming(Dispatcher):
    """A Dispatcher whose heartbeat answers name the replicas (API addresses; insecure: no
    node port)."""

    def __init__(self) -> None:
        super().__init__()
        self.replicas: list[str] = []

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await super().Heartbeat(request, context)
        return agent_pb2.HeartbeatResponse(
            period_ms=100, replicas=[agent_pb2.Replica(api_address=a) for a in self.replicas])


async def test_the_agent_learns_a_replica_relays_logs_to_it_and_fails_over_to_it(tmp_path: Path) -> None:
    a, b = Naming(), Naming()
    server_a, port_a = await serve(a)
    server_b, port_b = await serve(b)
    addr_a, addr_b = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
    a.replicas = [addr_a, addr_b]
    rt = FakeRuntime()
    agent = Agent(addr_a, insecure=True, runtime=rt, name="node-1", credential="cred-1", cluster=CLUSTER,
                  state_dir=tmp_path, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    on_a, on_b = asyncio.Queue[agent_pb2.SessionMessage](), asyncio.Queue[agent_pb2.SessionMessage]()
    await a.scripts.put(on_a)
    await b.scripts.put(on_b)
    run = asyncio.create_task(agent.run())
    try:
        await on_a.put(complete(1, container("web")))
        await a.until(lambda: a.state("web-web") == pb.CONTAINER_STATE_RUNNING and a.heartbeats >= 1)
        await until_true(lambda: [e.api for e in agent.servers.entries()] == [addr_a, addr_b])
        assert '"api": "' + addr_b in (tmp_path / "servers.json").read_text()  # kept for a restart
        await a.until(lambda: a.logs_open >= 1)
        await b.until(lambda: b.logs_open >= 1)  # logs through B while the session is on A
        assert b.opened == 0
        before = {o.container_id: (o.docker_id, o.started_at) for o in await rt.list_managed()}

        await server_a.stop(None)  # A dies
        await b.until(lambda: b.opened == 1)
        await on_b.put(complete(5, container("web")))
        await b.until(lambda: b.state("web-web") == pb.CONTAINER_STATE_RUNNING)
        assert agent.servers.api() == addr_b
        after = {o.container_id: (o.docker_id, o.started_at) for o in await rt.list_managed()}
        assert after == before  # kept running, adopted as it was
    finally:
        await agent.stop()
        await run
        await server_b.stop(None)
