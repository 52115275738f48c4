"""Fencing on return (issue 12, "Partitions"): an agent that reconnects stops every container
the control plane fenced while it was away (desired REMOVED with a fence epoch: its slot was
rescheduled elsewhere) before it starts anything new. The agent's real code runs against
FakeRuntime and the in-process Dispatcher double of test_agent_e2e.

No race decides these tests: the fenced container's stop blocks until the test lets it go, and
the test waits until the new container was either created (the bug: the slot's new copy and
the stale one would run at once) or held back by the agent, then checks which happened.
The partition itself, on real hosts, is tests/integration/e2e/test_partition_fencing.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.fence import FenceGate, is_fenced
from nodeagent.runtime import FakeRuntime

from .test_agent_e2e import Dispatcher, dispatcher, local, running  # noqa: F401
from .test_agent_helpers import WAIT, complete, container, incremental

UPD = agent_pb2.Assignment.ACTION_UPDATE


class GatedStops(FakeRuntime):
    """FakeRuntime whose stops wait for ``let_stop``, and which records the order of calls."""

    def __init__(self) -> None:
        super().__init__()
        self.let_stop = asyncio.Event()
        self.calls: list[str] = []
        self.changed = asyncio.Event()

    def _note(self, call: str) -> None:
        self.calls.append(call)
        self.changed.set()

    async def stop(self, docker_id: str, grace_seconds: float) -> None:
        name = next((o.container_id for o in await self.list_managed() if o.docker_id == docker_id), docker_id)
        self._note(f"stop-begin {name}")
        await self.let_stop.wait()
        await super().stop(docker_id, grace_seconds)
        self._note(f"stop-end {name}")

    async def create(self, c: pb.Container) -> str:
        self._note(f"create {c.meta.id}")
        return await super().create(c)


def fenced(cid: str, epoch: int = 1) -> pb.Container:
    c = container(cid, pb.DESIRED_STATE_REMOVED, published=8080)
    c.fence_epoch = epoch
    return c


async def until(rt: GatedStops, predicate: object) -> None:
    async def wait() -> None:
        while not predicate():  # type: ignore[operator]
            rt.changed.clear()
            await rt.changed.wait()
    await asyncio.wait_for(wait(), WAIT)


@pytest.mark.parametrize("how", ["complete", "incremental"])
async def test_fenced_containers_stop_before_anything_starts(
    dispatcher: tuple[Dispatcher, str], tmp_path: Path, how: str  # noqa: F811
) -> None:
    d, address = dispatcher
    rt = GatedStops()
    rt.let_stop.set()
    agent = Agent(address, insecure=True, runtime=rt, name="node-1", join_token="join-me", address="10.0.0.5",
                  state_dir=tmp_path, status_linger=0.01)
    before, after = asyncio.Queue[agent_pb2.SessionMessage](), asyncio.Queue[agent_pb2.SessionMessage]()
    await d.sessions.put(before)
    await d.sessions.put(after)
    async with running(agent):
        # Before the partition: "old" runs here, publishing 8080.
        await before.put(complete(1, container("old", published=8080)))
        await d.until(lambda: d.state("web-old") == pb.CONTAINER_STATE_RUNNING)
        rt.let_stop.clear()
        # The link breaks (here: the session ends with a broken chain) and comes back; meanwhile
        # the control plane fenced "old" and gave this node "new", which wants the same port.
        await before.put(incremental(7, 8))
        await d.until(lambda: d.opened == 2)
        if how == "complete":
            await after.put(complete(9, fenced("old"), container("new", published=8080)))
        else:
            await after.put(complete(9, container("old", published=8080)))
            await after.put(incremental(9, 10, (UPD, fenced("old")), (UPD, container("new", published=8080))))
        await until(rt, lambda: "stop-begin old" in rt.calls
                    and ("create new" in rt.calls or "new" in agent.executor.fence.deferred))  # type: ignore[union-attr]
        assert "create new" not in rt.calls  # the stale copy still runs: nothing may start
        rt.let_stop.set()
        await d.until(lambda: d.state("web-new") == pb.CONTAINER_STATE_RUNNING
                      and d.state("web-old") == pb.CONTAINER_STATE_REMOVED)
        assert rt.calls.index("stop-end old") < rt.calls.index("create new")
        assert set(await local(rt)) == {"new"}


async def test_an_ordinary_removal_does_not_hold_starts(
    dispatcher: tuple[Dispatcher, str], tmp_path: Path  # noqa: F811
) -> None:
    """Only fenced containers (and orphans found on a complete set) gate starts: a scale-down or
    a release's retirement runs beside new containers as before."""
    d, address = dispatcher
    rt = GatedStops()
    rt.let_stop.set()
    agent = Agent(address, insecure=True, runtime=rt, name="node-1", join_token="join-me", address="10.0.0.5",
                  state_dir=tmp_path, status_linger=0.01)
    script = asyncio.Queue[agent_pb2.SessionMessage]()
    await d.sessions.put(script)
    async with running(agent):
        await script.put(complete(1, container("old")))
        await d.until(lambda: d.state("web-old") == pb.CONTAINER_STATE_RUNNING)
        rt.let_stop.clear()
        await script.put(incremental(1, 2, (UPD, container("old", pb.DESIRED_STATE_REMOVED)),
                                     (UPD, container("new"))))
        await d.until(lambda: d.state("web-new") == pb.CONTAINER_STATE_RUNNING)
        assert "stop-end old" not in rt.calls  # still stopping: the start did not wait for it
        rt.let_stop.set()
        await d.until(lambda: d.state("web-old") == pb.CONTAINER_STATE_REMOVED)


def test_the_gate_defers_only_starts_and_releases_them_after_the_last_stale_one() -> None:
    from nodeagent.converge import Kind, LocalAction

    gate = FenceGate()
    create, report = [LocalAction(Kind.CREATE, "n")], [LocalAction(Kind.REPORT, "r")]
    assert not gate.blocks("n", create)  # nothing stale: go
    assert gate.hold(["a", "b"]) == {"a", "b"} and gate.hold(["b"]) == set()
    assert gate.blocks("n", create) and not gate.blocks("r", report)
    assert not gate.blocks("a", [LocalAction(Kind.CREATE, "a")])  # a stale id itself is never held
    assert gate.handled("a") == set()
    assert gate.handled("b") == {"n"}
    assert not gate.blocks("n", create)


def test_fenced_means_removed_with_an_epoch() -> None:
    assert is_fenced(fenced("x"))
    assert not is_fenced(container("x", pb.DESIRED_STATE_REMOVED))
    running_with_epoch = container("x")
    running_with_epoch.fence_epoch = 3
    assert not is_fenced(running_with_epoch) and not is_fenced(None)
