"""The agent's session returns to the reconnect loop when the control plane dies mid-session.

Regression test for agents that stopped reconnecting after ccs-server was SIGKILLed during a
release: the server side goes away while a drain timer is pending (a container waiting for its
`stop_after`) and the logs relay is open; a new server comes up on the same port. The agent must
open a new session, take the new COMPLETE set, keep the drain timer, and leave no task behind
that fails later (the logs relay's outgoing iterator used to be closed by the garbage collector
while suspended: "aclose(): asynchronous generator is already running").

The servicer is a test double of the control plane's transport seam only; the agent's code runs
unchanged against FakeRuntime.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import agent_pb2, agent_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.backoff import Backoff
from nodeagent.dispatcher_client import DispatcherClient
from nodeagent.logs_relay import OpenStream
from nodeagent.main import dump_tasks
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, WAIT, ObservedDispatcher, complete, container, incremental

UPD = agent_pb2.Assignment.ACTION_UPDATE


class Dispatcher(ObservedDispatcher):
    """Sends scripted session messages, keeps every Logs stream open, counts what arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: asyncio.Queue[asyncio.Queue[agent_pb2.SessionMessage]] = asyncio.Queue()
        self.logs_open = 0

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        script = await self.scripts.get()
        await self._notify(lambda: setattr(self, "opened", self.opened + 1))
        while True:
            msg = await script.get()
            msg.heartbeat_period_ms = 100
            yield msg

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
        return agent_pb2.HeartbeatResponse(period_ms=100)

    async def _log_request(self) -> None:
        await self._notify(lambda: setattr(self, "logs_open", self.logs_open + 1))



async def serve(servicer: Dispatcher, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    agent_pb2_grpc.add_DispatcherServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What reaches the loop's exception handler ("Task exception was never retrieved", ...)."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


async def until_true(predicate: Callable[[], bool]) -> None:
    """Poll agent-side state that has no notification (bounded by WAIT, not a timing assertion)."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def draining(c: pb.Container, seconds: float) -> pb.Container:
    """`c` to be removed, but only after `stop_after` (routers drain it first)."""
    out = pb.Container()
    out.CopyFrom(c)
    out.desired_state = pb.DESIRED_STATE_REMOVED
    out.stop_after.CopyFrom(Timestamp(seconds=int(time.time() + seconds)))
    return out


async def test_reconnects_after_the_server_dies_with_a_drain_pending_and_the_logs_relay_open(
    loop_errors: list[dict[str, Any]],
) -> None:
    first = Dispatcher()
    server, port = await serve(first)
    rt = FakeRuntime()
    agent = Agent(
        f"127.0.0.1:{port}", insecure=True, runtime=rt, name="node-1", credential="cred-1", cluster=CLUSTER,
        status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2),
    )
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await first.scripts.put(script)
    run = asyncio.create_task(agent.run())
    try:
        await script.put(complete(1, container("old"), container("keep")))
        await first.until(lambda: first.state("web-old") == first.state("web-keep") == pb.CONTAINER_STATE_RUNNING)
        await script.put(incremental(1, 2, (UPD, draining(container("old"), 3600))))
        assert agent.executor is not None
        executor = agent.executor
        await until_true(lambda: "old" in executor.waiting())  # the drain timer is pending
        await first.until(lambda: first.logs_open >= 1 and first.heartbeats >= 1)

        await server.stop(None)  # the control plane dies mid-session
        await until_true(lambda: not agent.connected.is_set())

        second = Dispatcher()
        again: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
        await second.scripts.put(again)
        server, _ = await serve(second, port)  # and comes back on the same port
        await second.until(lambda: second.opened == 1)
        await again.put(complete(7, container("keep"), draining(container("old"), 3600), container("new")))
        await second.until(lambda: second.state("web-new") == pb.CONTAINER_STATE_RUNNING)
        await second.until(lambda: second.logs_open >= 1 and second.heartbeats >= 1)

        assert agent.book.version == 7 and agent.connected.is_set()
        assert second.state("web-keep") == pb.CONTAINER_STATE_RUNNING  # every assignment reported again
        assert "old" in executor.waiting()  # still draining: neither stopped early nor forgotten
        live = {o.container_id: o.state for o in await rt.list_managed()}
        assert live == {c: pb.CONTAINER_STATE_RUNNING for c in ("old", "keep", "new")}
    finally:
        await agent.stop()
        await run
        await server.stop(None)
    gc.collect()  # a task or generator the agent left behind would fail here
    await asyncio.sleep(0.05)
    assert [ctx.get("message") for ctx in loop_errors] == []


async def test_stop_during_a_dead_session_returns(loop_errors: list[dict[str, Any]]) -> None:
    """stop() ends run() while the server is gone and the agent is between reconnects."""
    d = Dispatcher()
    server, port = await serve(d)
    agent = Agent(
        f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1", cluster=CLUSTER,
        status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2),
    )
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.scripts.put(script)
    run = asyncio.create_task(agent.run())
    await script.put(complete(1, container("a")))
    await d.until(lambda: d.logs_open >= 1 and d.state("web-a") == pb.CONTAINER_STATE_RUNNING)
    await server.stop(None)
    await until_true(lambda: not agent.connected.is_set())
    await asyncio.wait_for(agent.stop(), WAIT)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(run, WAIT)
    assert run.done() and not run.cancelled()
    gc.collect()
    await asyncio.sleep(0.05)
    assert [ctx.get("message") for ctx in loop_errors] == []


def cancel_eating_logs(self: DispatcherClient) -> OpenStream:
    """A logs transport that behaves like grpc.aio when a cancel meets an RPC that just failed:
    the waiting read ends with the RPC's error instead of CancelledError (the cancel is eaten)."""

    def open_stream(out: AsyncIterator[agent_pb2.LogChunk]) -> AsyncIterator[agent_pb2.LogRequest]:
        async def requests() -> AsyncIterator[agent_pb2.LogRequest]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise ConnectionError("UNAVAILABLE: Stream removed") from None
            yield agent_pb2.LogRequest()  # pragma: no cover - never reached

        return requests()

    return open_stream


async def test_a_logs_stream_that_eats_the_cancel_does_not_keep_the_session_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DispatcherClient, "logs_opener", cancel_eating_logs)
    first = Dispatcher()
    server, port = await serve(first)
    agent = Agent(
        f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1", cluster=CLUSTER,
        status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2),
    )
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await first.scripts.put(script)
    run = asyncio.create_task(agent.run())
    try:
        await script.put(complete(1, container("a")))
        await first.until(lambda: first.state("web-a") == pb.CONTAINER_STATE_RUNNING)
        await server.stop(None)

        second = Dispatcher()
        again: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
        await second.scripts.put(again)
        server, _ = await serve(second, port)
        await second.until(lambda: second.opened == 1)  # the old session returned to the reconnect loop
        await again.put(complete(2, container("a")))
        await second.until(lambda: second.state("web-a") == pb.CONTAINER_STATE_RUNNING)
        assert agent.book.version == 2
    finally:
        await asyncio.wait_for(agent.stop(), WAIT)
        await asyncio.wait_for(run, WAIT)
        await server.stop(None)


async def test_the_sigusr1_task_dump_shows_where_each_task_waits() -> None:
    async def parked() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(parked(), name="parked-task")
    await asyncio.sleep(0)
    try:
        dump = dump_tasks()
    finally:
        task.cancel()
    section = dump.split("--- task parked-task", 1)[1].split("--- task", 1)[0]
    assert "in parked" in section and "locks.py" in section  # down to the Event it waits on
