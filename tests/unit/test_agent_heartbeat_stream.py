"""Heartbeats as messages on one stream (``Dispatcher.Heartbeats``) that outlives sessions, with
the unary call kept for servers without it.

Against in-process Dispatcher doubles on a real grpc.aio server: an agent's heartbeats go on one
stream, and go on through a reconnect while the next session is not up yet; an answer later than its heartbeat's deadline raises DEADLINE_EXCEEDED and is dropped
when it comes (never taken for the next heartbeat's); a server without the stream answers
UNIMPLEMENTED and the client uses the unary call from then on; an agent stopped while a
heartbeat's answer comes stops (the cancellation is not lost). The server's side runs on a real
server in ``tests/integration/test_heartbeat_stream.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from ccs.v1 import agent_pb2, agent_pb2_grpc, resources_pb2
from nodeagent.agent import Agent
from nodeagent.backoff import Backoff
from nodeagent.dispatcher_client import DispatcherClient
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, ObservedDispatcher, complete, container

PERIOD_MS = 200


class Dispatcher(ObservedDispatcher):
    """One scripted session per open; heartbeats on the stream, each answered with its number
    (``period_ms = 1000 + n``) after ``delay(n)`` seconds; unary heartbeats counted apart."""

    def __init__(self, delay: Any = lambda n: 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.streams = 0
        self.unary = 0

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        await self._notify(lambda: setattr(self, "opened", self.opened + 1))
        msg = complete(1, container("a"))
        msg.heartbeat_period_ms = PERIOD_MS
        yield msg
        await asyncio.Event().wait()

    async def Heartbeats(self, requests: Any, context: Any) -> AsyncIterator[agent_pb2.HeartbeatResponse]:
        await self._notify(lambda: setattr(self, "streams", self.streams + 1))
        async for _ in requests:
            await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
            n = self.heartbeats
            await asyncio.sleep(self.delay(n))
            yield agent_pb2.HeartbeatResponse(period_ms=1000 + n)

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._notify(lambda: setattr(self, "unary", self.unary + 1))
        return agent_pb2.HeartbeatResponse(period_ms=PERIOD_MS)


class UnaryOnly(ObservedDispatcher):
    """A server of before the stream: Heartbeats is UNIMPLEMENTED (the generated base's)."""

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
        return agent_pb2.HeartbeatResponse(period_ms=PERIOD_MS)


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[grpc.aio.Server] = []

    async def start(d: agent_pb2_grpc.DispatcherServicer) -> str:
        server = grpc.aio.server()
        agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        await s.stop(None)


async def test_an_agents_heartbeats_go_on_one_stream(serve: Any) -> None:
    d = Dispatcher()
    address = await serve(d)
    agent = Agent(address, insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    run = asyncio.create_task(agent.run())
    try:
        await d.until(lambda: d.heartbeats >= 4)
        assert (d.streams, d.unary, d.opened) == (1, 0, 1)
    finally:
        await agent.stop()
        await run


class EndsTheFirstSession(Dispatcher):
    """The first session ends (UNAVAILABLE) after two heartbeats; the next is taken in but sends
    nothing until ``release`` is set: a reconnect to a server too busy to start the session."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        await self._notify(lambda: setattr(self, "opened", self.opened + 1))
        msg = complete(1, container("a"))
        msg.heartbeat_period_ms = PERIOD_MS
        if self.opened == 1:
            yield msg
            await self.until(lambda: self.heartbeats >= 2)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the session's stream broke")
        await self.release.wait()
        yield msg
        await asyncio.Event().wait()


async def test_heartbeats_go_on_through_a_reconnect_on_the_same_stream(serve: Any) -> None:
    """A session that ended for another reason than its heartbeats does not stop them: the node
    stays heard while the agent waits for its next session (issue 15: under load that wait
    passed the server's liveness deadline, and nodes were declared down while reconnecting)."""
    d = EndsTheFirstSession()
    address = await serve(d)
    agent = Agent(address, insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    run = asyncio.create_task(agent.run())
    try:
        await d.until(lambda: d.opened == 2)
        at_reopen = d.heartbeats
        # The answers set a period of about 1 s: the next heartbeat is due within a second,
        # well inside the three periods heartbeats go on without a session.
        await d.until(lambda: d.heartbeats >= at_reopen + 1)
        assert not agent.connected.is_set()  # the second session has sent nothing yet
        d.release.set()
        async with asyncio.timeout(20):  # a hang guard
            await agent.connected.wait()
        await d.until(lambda: d.heartbeats >= at_reopen + 3)
        assert (d.streams, d.unary, d.opened) == (1, 0, 2)
    finally:
        await agent.stop()
        await run


async def test_a_late_answer_times_its_heartbeat_out_and_is_not_taken_for_the_next(serve: Any) -> None:
    d = Dispatcher(delay=lambda n: 1.0 if n == 1 else 0.0)
    client = DispatcherClient(grpc.aio.insecure_channel(await serve(d)))
    status = resources_pb2.NodeStatus()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await client.heartbeat(status, deadline_seconds=0.2)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # Sent while the first answer is still on its way: the answer taken is the second's.
        assert await client.heartbeat(status, deadline_seconds=5) == 1002
        assert await client.heartbeat(status, deadline_seconds=5) == 1003
        assert d.streams == 1 and d.unary == 0  # the timeout did not end the stream
    finally:
        client.close_heartbeats()
        await client.channel.close()


async def test_a_server_without_the_stream_gets_unary_heartbeats(serve: Any) -> None:
    d = UnaryOnly()
    client = DispatcherClient(grpc.aio.insecure_channel(await serve(d)))
    status = resources_pb2.NodeStatus()
    try:
        assert await client.heartbeat(status, deadline_seconds=5) == PERIOD_MS
        assert await client.heartbeat(status, deadline_seconds=5) == PERIOD_MS
        assert d.heartbeats == 2
    finally:
        client.close_heartbeats()
        await client.channel.close()


async def test_without_a_session_heartbeats_stop_after_the_patience(serve: Any) -> None:
    """A node whose next session never starts is not kept READY by heartbeats alone: after
    three periods without a session they stop (the node then goes DOWN as before), and they
    start again with the next session."""
    d = EndsTheFirstSession()
    address = await serve(d)
    agent = Agent(address, insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    run = asyncio.create_task(agent.run())
    try:
        await d.until(lambda: d.opened == 2)
        async with asyncio.timeout(20):  # a hang guard: 3 periods of about 1 s
            await agent._beats_failed.wait()  # the first session ended on its stream, not here
        assert not agent._beats_wanted.is_set()
        stopped_at = d.heartbeats
        assert not agent.connected.is_set()
        await asyncio.sleep(1.0)  # five periods: nothing may be sent until a session is up
        assert d.heartbeats == stopped_at
        d.release.set()
        await d.until(lambda: d.heartbeats >= stopped_at + 2)
        assert agent.connected.is_set()
    finally:
        await agent.stop()
        await run


class SlowUnary(ObservedDispatcher):
    """A server of before the stream whose first heartbeat is never answered."""

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
        if self.heartbeats == 1:
            await asyncio.Event().wait()
        return agent_pb2.HeartbeatResponse(period_ms=PERIOD_MS)


async def test_a_heartbeat_whose_channel_is_closed_under_it_goes_again_on_the_new_one(serve: Any) -> None:
    """A fail-over or a renewed certificate closes the old channel while a (unary) heartbeat
    waits on it: grpc.aio raises CancelledError in that heartbeat. The heartbeats go on, on
    the new channel, instead of the task ending silently."""
    d = SlowUnary()
    address = await serve(d)
    agent = Agent(address, insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER)
    agent.heartbeat_period = PERIOD_MS / 1000
    client = DispatcherClient(grpc.aio.insecure_channel(address))
    agent.connected.set()  # as if a session were up
    agent._beats_wanted.set()
    beats = asyncio.create_task(agent._heartbeats(client))
    try:
        await d.until(lambda: d.heartbeats == 1)  # the first waits on the old channel
        old = client.use(grpc.aio.insecure_channel(address))
        await old.close()
        await d.until(lambda: d.heartbeats >= 3)
        assert not beats.done()
        assert agent._beats_wanted.is_set() and not agent._beats_failed.is_set()
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await client.channel.close()


class StreamDiesWithTheSession(Dispatcher):
    """The first heartbeat stream ends right after its first answer (which sets a 3 s period,
    so no heartbeat waits on the stream when it dies), and the first session then ends too;
    later sessions and streams behave."""

    def __init__(self) -> None:
        super().__init__()
        self.first_stream_over = asyncio.Event()

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        await self._notify(lambda: setattr(self, "opened", self.opened + 1))
        msg = complete(1, container("a"))
        msg.heartbeat_period_ms = PERIOD_MS
        yield msg
        if self.opened == 1:
            await self.first_stream_over.wait()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the replica restarts")
        await asyncio.Event().wait()

    async def Heartbeats(self, requests: Any, context: Any) -> AsyncIterator[agent_pb2.HeartbeatResponse]:
        await self._notify(lambda: setattr(self, "streams", self.streams + 1))
        first = self.streams == 1
        async for _ in requests:
            await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
            yield agent_pb2.HeartbeatResponse(period_ms=3000 if first else PERIOD_MS)
            if first:
                self.first_stream_over.set()
                return


async def test_a_stream_that_died_before_the_next_session_does_not_end_it(serve: Any) -> None:
    """The heartbeat stream outlives sessions, so it may have died with the last one while
    no heartbeat waited on it; the next session starts on a new stream instead of ending at
    its first heartbeat with the old stream's error."""
    d = StreamDiesWithTheSession()
    address = await serve(d)
    agent = Agent(address, insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    run = asyncio.create_task(agent.run())
    try:
        await d.until(lambda: d.opened == 2 and d.heartbeats >= 3)
        assert (d.opened, d.streams) == (2, 2)
    finally:
        await agent.stop()
        await run
