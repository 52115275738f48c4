"""A heartbeat that times out does not end the agent's session while the last answer is recent
(``nodeagent.heartbeat_patience``); any other failure, or a timeout past the patience, does.

The policy is pure (a table); the loop is checked against an in-process Dispatcher double that
answers chosen heartbeats with DEADLINE_EXCEEDED, the code a client sees when its heartbeat
waited in a busy server's queue past the deadline. The agent's code runs unchanged on
FakeRuntime. Waits are for conditions (``until``), bounded by WAIT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from ccs.v1 import agent_pb2, agent_pb2_grpc
from nodeagent.agent import Agent
from nodeagent.backoff import Backoff
from nodeagent.heartbeat_patience import PATIENCE_PERIODS, keep_session
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, ObservedDispatcher, complete, container

PERIOD_MS = 1000  # patience = 3 s: far more than a retry takes, even on a loaded box


@pytest.mark.parametrize(("code", "since_answer", "kept"), [
    (grpc.StatusCode.DEADLINE_EXCEEDED, 0.0, True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, PATIENCE_PERIODS * 5.0 - 0.1, True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, PATIENCE_PERIODS * 5.0, False),  # unheard past the server's deadline
    (grpc.StatusCode.UNAVAILABLE, 0.0, False),  # the replica cannot vouch: move on at once
    (grpc.StatusCode.UNAUTHENTICATED, 0.0, False),
    (grpc.StatusCode.NOT_FOUND, 0.0, False),  # the node was removed
    (None, 0.0, False),  # not an RPC error at all
])
def test_only_a_recent_timeout_keeps_the_session(code: grpc.StatusCode | None, since_answer: float, kept: bool) -> None:
    assert keep_session(code, last_answered=100.0, now=100.0 + since_answer, period=5.0) is kept


class Dispatcher(ObservedDispatcher):
    """One scripted session per open; heartbeats answered by ``verdict(n)`` (n counts from 1):
    None answers, a status code aborts with it."""

    def __init__(self, verdict: Callable[[int], grpc.StatusCode | None]) -> None:
        super().__init__()
        self.verdict = verdict
        self.sessions: asyncio.Queue[asyncio.Queue[agent_pb2.SessionMessage]] = asyncio.Queue()
        self.opens_at_heartbeat: list[int] = []  # the heartbeat count when each session opened

    async def Session(self, request: Any, context: Any) -> AsyncIterator[agent_pb2.SessionMessage]:
        script = await self.sessions.get()
        await self._notify(self._opened)
        while True:
            msg = await script.get()
            msg.heartbeat_period_ms = PERIOD_MS
            yield msg

    def _opened(self) -> None:
        self.opened += 1
        self.opens_at_heartbeat.append(self.heartbeats)

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        await self._notify(lambda: setattr(self, "heartbeats", self.heartbeats + 1))
        code = self.verdict(self.heartbeats)
        if code is not None:
            await context.abort(code, "scripted")
        return agent_pb2.HeartbeatResponse(period_ms=PERIOD_MS)



async def run_agent(d: Dispatcher, check: Callable[[], Any]) -> None:
    server = grpc.aio.server()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    agent = Agent(f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", credential="cred-1",
                  cluster=CLUSTER, status_linger=0.01, reconnect=Backoff(base=0.05, cap=0.2))
    for _ in range(3):  # a script for every session the agent may open
        script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
        await script.put(complete(1, container("a")))
        await d.sessions.put(script)
    run = asyncio.create_task(agent.run())
    try:
        await check()
    finally:
        await agent.stop()
        await run
        await server.stop(None)


async def test_a_timed_out_heartbeat_is_sent_again_on_the_same_session() -> None:
    d = Dispatcher(lambda n: grpc.StatusCode.DEADLINE_EXCEEDED if n == 2 else None)

    async def check() -> None:
        await d.until(lambda: d.heartbeats >= 4)
        assert d.opened == 1  # the timeout at heartbeat 2 did not end the session (it did before)

    await run_agent(d, check)


async def test_any_other_heartbeat_failure_ends_the_session() -> None:
    d = Dispatcher(lambda n: grpc.StatusCode.UNAVAILABLE if n == 2 else None)

    async def check() -> None:
        await d.until(lambda: d.opened >= 2 and d.heartbeats >= 3)
        assert d.opens_at_heartbeat[1] == 2  # reopened right after the refused heartbeat

    await run_agent(d, check)


async def test_timeouts_past_the_patience_end_the_session() -> None:
    d = Dispatcher(lambda n: grpc.StatusCode.DEADLINE_EXCEEDED if n >= 2 else None)

    async def check() -> None:
        await d.until(lambda: d.opened >= 2)
        # Several timed-out heartbeats went on the first session before it was given up.
        assert d.opens_at_heartbeat[1] > 2

    await run_agent(d, check)
