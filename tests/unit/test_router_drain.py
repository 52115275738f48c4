"""Drain before stop: a retiring container is stopped no earlier than its `stop_after`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.assignments import AssignmentBook
from nodeagent.converge import Kind, LocalAction, drain_remaining, router_hold
from nodeagent.executor import Executor
from nodeagent.runtime import FakeRuntime
from nodeagent.runtime.types import State

from .test_agent_helpers import CLUSTER, complete, container, incremental, observed

WAIT = 20.0  # a guard against hanging, not a performance assertion


def with_stop_after(c: pb.Container, at: float) -> pb.Container:
    c.stop_after.FromNanoseconds(int(at * 1e9))
    return c


@pytest.mark.parametrize(
    ("kind", "stop_after", "state", "expected"),
    [
        (Kind.REMOVE, 105.0, State.CONTAINER_STATE_RUNNING, 5.0),
        (Kind.STOP, 105.0, State.CONTAINER_STATE_HEALTHY, 5.0),
        (Kind.REMOVE, 95.0, State.CONTAINER_STATE_RUNNING, 0.0),  # already past
        (Kind.REMOVE, None, State.CONTAINER_STATE_RUNNING, 0.0),  # no drain asked
        (Kind.REMOVE, 105.0, State.CONTAINER_STATE_EXITED, 0.0),  # nothing serving
        (Kind.REPORT, 105.0, State.CONTAINER_STATE_RUNNING, 0.0),  # not a stop
    ],
)
def test_drain_remaining(kind: Kind, stop_after: float | None, state: int, expected: float) -> None:
    c = container("a", pb.DESIRED_STATE_REMOVED)
    if stop_after is not None:
        with_stop_after(c, stop_after)
    action = LocalAction(kind, "a", c, observed("a", state))
    assert drain_remaining(action, now=100.0) == pytest.approx(expected)


async def test_executor_removes_only_after_stop_after() -> None:
    runtime = FakeRuntime()
    book = AssignmentBook()
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    executor = Executor(runtime, book, reports.append, cluster=CLUSTER, node="n1", address="127.0.0.1")
    c = container("a")
    book.apply(complete(1, c))
    executor.enqueue("a")
    await until(executor.idle)
    docker_id = executor.docker_ids["a"]

    stop_after = time.time() + 0.5
    retiring = with_stop_after(container("a", pb.DESIRED_STATE_REMOVED), stop_after)
    book.apply(incremental(1, 2, (agent_pb2.Assignment.ACTION_UPDATE, retiring)))
    sent = len(reports)
    executor.enqueue("a")
    await until(executor.idle)  # the pass ran and left the container alone
    alive = await runtime.inspect(docker_id)
    assert alive is not None and alive.state == State.CONTAINER_STATE_RUNNING
    assert len(reports) == sent  # nothing unusual reported while draining

    await until(lambda: any(r.status.state == State.CONTAINER_STATE_REMOVED for r in reports))
    assert time.time() >= stop_after
    assert await runtime.inspect(docker_id) is None
    await executor.close()


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {WAIT}s: {predicate}")


@pytest.mark.parametrize(
    ("stop_after", "unrouted_for", "expected"),
    [
        (105.0, None, 0.0),  # still draining by time: drain_remaining says how long, not this
        (95.0, None, 0.25),  # past stop_after, the router still routes to it: check again soon
        (95.0, 0.2, 0.3),  # dropped 0.2 s ago: let its last requests finish (0.5 s in all)
        (95.0, 3.0, 0.0),  # dropped long ago
        (95.0, float("inf"), 0.0),  # never routed here
        (80.0, None, 0.0),  # 20 s past stop_after: the router lags too much, stop anyway
    ],
)
def test_router_hold(stop_after: float, unrouted_for: float | None, expected: float) -> None:
    c = with_stop_after(container("a", pb.DESIRED_STATE_REMOVED), stop_after)
    action = LocalAction(Kind.REMOVE, "a", c, observed("a", State.CONTAINER_STATE_RUNNING))
    assert router_hold(action, now=100.0, unrouted_for=unrouted_for) == pytest.approx(expected)


def test_router_hold_only_for_a_draining_live_container() -> None:
    plain = LocalAction(Kind.REMOVE, "a", container("a", pb.DESIRED_STATE_REMOVED),
                        observed("a", State.CONTAINER_STATE_RUNNING))
    assert router_hold(plain, now=100.0, unrouted_for=None) == 0.0  # no drain asked
    dead = LocalAction(Kind.REMOVE, "a", with_stop_after(container("a", pb.DESIRED_STATE_REMOVED), 95.0),
                       observed("a", State.CONTAINER_STATE_EXITED))
    assert router_hold(dead, now=100.0, unrouted_for=None) == 0.0  # nothing serving


async def test_executor_stops_only_once_the_router_dropped_the_container() -> None:
    runtime = FakeRuntime()
    book = AssignmentBook()
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    routed = {"a": True}
    dropped_at: list[float] = []

    def unrouted_for(cid: str) -> float | None:
        if routed.get(cid):
            return None
        return time.monotonic() - dropped_at[0]

    executor = Executor(runtime, book, reports.append, cluster=CLUSTER, node="n1", address="127.0.0.1",
                        unrouted_for=unrouted_for)
    book.apply(complete(1, container("a")))
    executor.enqueue("a")
    await until(executor.idle)
    docker_id = executor.docker_ids["a"]

    retiring = with_stop_after(container("a", pb.DESIRED_STATE_REMOVED), time.time() - 1.0)  # drain over
    book.apply(incremental(1, 2, (agent_pb2.Assignment.ACTION_UPDATE, retiring)))
    executor.enqueue("a")
    await asyncio.sleep(1.0)  # four re-checks at 0.25 s: the router still routes to it
    alive = await runtime.inspect(docker_id)
    assert alive is not None and alive.state == State.CONTAINER_STATE_RUNNING

    routed["a"] = False
    dropped_at.append(time.monotonic())
    await until(lambda: any(r.status.state == State.CONTAINER_STATE_REMOVED for r in reports))
    assert time.monotonic() - dropped_at[0] >= 0.5  # ROUTER_SETTLE after the router dropped it
    assert await runtime.inspect(docker_id) is None
    await executor.close()
