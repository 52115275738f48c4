"""The Agent end to end against FakeRuntime and a tiny in-process grpc.aio Dispatcher.

The servicer is a test double of the control plane's transport seam only: the agent's real
code (register, session, executor, reporter, heartbeats) runs unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from ccs.v1 import agent_pb2, agent_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, ObservedDispatcher, complete, container, incremental

REM = agent_pb2.Assignment.ACTION_REMOVE


class Dispatcher(ObservedDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: asyncio.Queue[asyncio.Queue[agent_pb2.SessionMessage]] = asyncio.Queue()
        self.session_requests: list[agent_pb2.SessionRequest] = []

    async def Register(self, request: Any, context: Any) -> agent_pb2.RegisterResponse:
        if request.join_token != "join-me":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad join token")
        node = pb.Node(meta=pb.Meta(id="n-1", name=request.name), cluster=CLUSTER)
        return agent_pb2.RegisterResponse(cluster=CLUSTER, node=node, credential="cred-1")

    async def _auth(self, context: Any) -> None:
        if ("authorization", "Bearer cred-1") not in tuple(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credential")

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        await self._auth(context)
        self.session_requests.append(request)
        script = await self.sessions.get()
        await self._notify(lambda: setattr(self, "opened", self.opened + 1))
        while True:
            msg = await script.get()
            msg.heartbeat_period_ms = 200
            yield msg

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._auth(context)
        await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
        return agent_pb2.HeartbeatResponse(period_ms=200)




@pytest.fixture
async def dispatcher() -> AsyncIterator[tuple[Dispatcher, str]]:
    server = grpc.aio.server()
    servicer = Dispatcher()
    agent_pb2_grpc.add_DispatcherServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        await agent.stop()
        await task


async def local(rt: FakeRuntime) -> dict[str, Any]:
    return {o.container_id: o for o in await rt.list_managed()}


async def test_register_complete_create_report_remove(
    dispatcher: tuple[Dispatcher, str], tmp_path: Path
) -> None:
    d, address = dispatcher
    rt = FakeRuntime()
    agent = Agent(address, insecure=True, runtime=rt, name="node-1", join_token="join-me", address="10.0.0.5",
                  state_dir=tmp_path, status_linger=0.01)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    async with running(agent):
        await script.put(complete(1, container("a"), container("b", published=8080)))
        await d.until(lambda: d.state("web-a") == d.state("web-b") == pb.CONTAINER_STATE_RUNNING)

        ident = tmp_path / "identity.json"
        assert stat.S_IMODE(ident.stat().st_mode) == 0o600 and "cred-1" in ident.read_text()
        (ep,) = d.statuses["web-b"].status.endpoints
        assert (ep.address, ep.published, ep.target, ep.node) == ("10.0.0.5", 8080, 80, "node-1")
        assert set(await local(rt)) == {"a", "b"}

        await script.put(incremental(1, 2, (REM, container("a"))))
        await d.until(lambda: d.state("web-a") == pb.CONTAINER_STATE_REMOVED)
        assert set(await local(rt)) == {"b"}
        await d.until(lambda: d.heartbeats >= 1)
    # stopping the agent leaves containers running
    assert (await local(rt))["b"].state == pb.CONTAINER_STATE_RUNNING


async def test_restart_adopts_removes_orphans_and_resyncs_on_broken_chain(
    dispatcher: tuple[Dispatcher, str], tmp_path: Path
) -> None:
    d, address = dispatcher
    rt = FakeRuntime()
    # Left by a previous agent process: b (still assigned), o (orphan), x (another cluster).
    for c in (container("b"), container("o"), container("x", cluster="other")):
        await rt.prepare(c)
        await rt.start(await rt.create(c))
    before = await local(rt)
    (tmp_path / "identity.json").write_text('{"cluster": "c1", "node": "node-1", "credential": "cred-1"}')

    agent = Agent(address, insecure=True, runtime=rt, name="node-1", state_dir=tmp_path, status_linger=0.01)
    first: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    second: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(first)
    await d.sessions.put(second)
    async with running(agent):
        await first.put(complete(4, container("b")))
        await d.until(lambda: d.state("web-b") == pb.CONTAINER_STATE_RUNNING)
        after = await local(rt)
        assert after["b"].docker_id == before["b"].docker_id  # adopted, not recreated
        assert after["b"].started_at == before["b"].started_at  # and not restarted

        await first.put(incremental(3, 5, (REM, container("b"))))  # wrong base: chain broken
        await d.until(lambda: d.opened == 2)
        await second.put(complete(6, container("b"), container("c")))
        await d.until(lambda: d.state("web-c") == pb.CONTAINER_STATE_RUNNING)
        remaining = await local(rt)
        assert "o" not in remaining  # the orphan of this cluster went
        assert "x" in remaining  # another cluster's container is left alone
        assert remaining["b"].docker_id == before["b"].docker_id  # the broken increment was not applied


async def test_image_not_found_is_reported_failed(dispatcher: tuple[Dispatcher, str], tmp_path: Path) -> None:
    d, address = dispatcher
    rt = FakeRuntime(missing_images={"local/nope:1"})
    agent = Agent(
        address, insecure=True, runtime=rt, name="node-2", credential="cred-1", cluster=CLUSTER, status_linger=0.01
    )
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    async with running(agent):
        await script.put(complete(1, container("n", image="local/nope:1")))
        await d.until(lambda: d.state("web-n") == pb.CONTAINER_STATE_FAILED)
        assert "image not found: local/nope:1" in d.statuses["web-n"].status.message


async def test_a_containers_compose_dns_servers_are_its_resolver_upstreams(
    dispatcher: tuple[Dispatcher, str], tmp_path: Path
) -> None:
    """The node resolver forwards a container's other names to its service's Compose `dns`
    servers: the agent answers "which servers" by the container's reported address, and
    forgets them with the container."""
    d, address = dispatcher
    rt = FakeRuntime()
    agent = Agent(address, insecure=True, runtime=rt, name="node-1", join_token="join-me", address="10.0.0.5",
                  state_dir=tmp_path, status_linger=0.01)
    with_dns, plain = container("a"), container("b")
    with_dns.spec.dns.extend(["192.0.2.53", "192.0.2.54"])
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    async with running(agent):
        await script.put(complete(1, with_dns, plain))
        await d.until(lambda: d.state("web-a") == d.state("web-b") == pb.CONTAINER_STATE_RUNNING
                      and bool(d.statuses["web-a"].status.addresses) and bool(d.statuses["web-b"].status.addresses))
        a_ip = d.statuses["web-a"].status.addresses["default"]
        b_ip = d.statuses["web-b"].status.addresses["default"]
        assert tuple(agent.service_dns(a_ip)) == ("192.0.2.53", "192.0.2.54")
        assert tuple(agent.service_dns(b_ip)) == ()  # no `dns`: the host's nameservers
        assert tuple(agent.service_dns("10.9.9.9")) == ()  # nobody here
        await script.put(incremental(1, 2, (REM, with_dns)))
        await d.until(lambda: d.state("web-a") == pb.CONTAINER_STATE_REMOVED)
        assert tuple(agent.service_dns(a_ip)) == ()
