"""The agent's probe verdicts (nodeagent.probe_monitor): the counting rule as a table, and the
monitor against FakeRuntime with a scripted exec, so each probe result is chosen by the test and
nothing waits on a clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.probe_check import ProbeResult, ProbeStatus
from nodeagent.probe_monitor import ProbeMonitor, ProbeVerdict, has_probe
from nodeagent.runtime import FakeRuntime
from nodeagent.runtime.types import ExecResult, Observed, RuntimeFailure, State

from .test_agent_helpers import WAIT, container

H, U = State.CONTAINER_STATE_HEALTHY, State.CONTAINER_STATE_UNHEALTHY
RESULTS = {
    "S": ProbeResult(ProbeStatus.SUCCESS, "ok"),
    "F": ProbeResult(ProbeStatus.FAILURE, "refused"),
    "W": ProbeResult(ProbeStatus.WAITING, "initial delay"),
}


@pytest.mark.parametrize(
    ("results", "threshold", "states", "changes", "message"),
    [
        # one success is enough
        ("S", 3, [H], [True], ""),
        # failures below the threshold conclude nothing
        ("FF", 3, [None, None], [False, False], ""),
        ("FFF", 3, [None, None, U], [False, False, True], "probe failed 3 times: refused"),
        # still failing: no new verdict, the message counts on
        ("FFFF", 3, [None, None, U, U], [False, False, True, False], "probe failed 4 times: refused"),
        ("F", 1, [U], [True], "probe failed 1 times: refused"),
        # healthy, then failing: only the threshold-th consecutive failure flips it
        ("SFFF", 3, [H, H, H, U], [True, False, False, True], "probe failed 3 times: refused"),
        # a success resets the count and the message
        ("FFFS", 3, [None, None, U, H], [False, False, True, True], ""),
        ("FFSFF", 3, [None, None, H, H, H], [False, False, True, False, False], ""),
        # WAITING (initial delay) changes nothing, not even the failure count
        ("W", 3, [None], [False], ""),
        ("SW", 3, [H, H], [True, False], ""),
        ("FWFF", 3, [None, None, None, U], [False, False, False, True], "probe failed 3 times: refused"),
    ],
)
def test_verdict_counts_results(
    results: str, threshold: int, states: list[int | None], changes: list[bool], message: str
) -> None:
    verdict = ProbeVerdict(threshold)
    got_states, got_changes = [], []
    for r in results:
        got_changes.append(verdict.record(RESULTS[r]))
        got_states.append(verdict.state)
    assert (got_states, got_changes, verdict.message) == (states, changes, message)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (None, False),
        (pb.Probe(), False),  # present but empty: no kind, nothing to run
        (pb.Probe(kind="tcp", port=80), True),
        (pb.Probe(kind="cmd", cmd=["true"]), True),
    ],
)
def test_has_probe(probe: pb.Probe | None, expected: bool) -> None:
    c = container("a")
    if probe is not None:
        c.spec.probe.CopyFrom(probe)
    assert has_probe(c) is expected


class ScriptedRuntime(FakeRuntime):
    """FakeRuntime whose exec (the cmd probe) answers what the test puts in ``answers``, in order,
    and whose inspect can be made to fail once. ``calls`` counts execs: when call n has started,
    the result of call n-1 has been recorded (the monitor records before it probes again)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: asyncio.Queue[int] = asyncio.Queue()
        self.calls = 0
        self.inspect_failures = 0
        self._changed = asyncio.Condition()

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        async with self._changed:
            self.calls += 1
            self._changed.notify_all()
        code = await self.answers.get()
        return ExecResult(code, b"" if code == 0 else b"not yet")

    async def inspect(self, docker_id: str) -> Observed | None:
        if self.inspect_failures:
            self.inspect_failures -= 1
            raise RuntimeFailure("engine restarting")
        return await super().inspect(docker_id)

    async def until_calls(self, n: int) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.calls >= n)

        await asyncio.wait_for(wait(), WAIT)


def probed(cid: str, probe: pb.Probe | None = None) -> pb.Container:
    c = container(cid)
    c.spec.probe.CopyFrom(probe or pb.Probe(kind="cmd", cmd=["test", "-f", "/ready"]))
    return c


async def started(rt: FakeRuntime, c: pb.Container) -> str:
    await rt.prepare(c)
    docker_id = await rt.create(c)
    await rt.start(docker_id)
    return docker_id


def state_of(m: ProbeMonitor, cid: str) -> int | None:
    verdict = m.verdict(cid)
    assert verdict is not None
    return verdict.state


class Changes:
    """The monitor's ``on_change`` callback, awaitable."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._event = asyncio.Event()

    def __call__(self, cid: str) -> None:
        self.seen.append(cid)
        self._event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self._event.wait(), WAIT)
        self._event.clear()


@pytest.fixture
async def monitor() -> AsyncIterator[tuple[ProbeMonitor, ScriptedRuntime, Changes]]:
    rt, changes = ScriptedRuntime(), Changes()
    m = ProbeMonitor(rt, changes, period=0, threshold=2)
    yield m, rt, changes
    await m.close()


async def test_monitor_reports_each_verdict_change_once(
    monitor: tuple[ProbeMonitor, ScriptedRuntime, Changes],
) -> None:
    m, rt, changes = monitor
    c = probed("a")
    m.ensure("a", c, await started(rt, c))
    assert state_of(m, "a") is None  # nothing concluded before a result
    await rt.answers.put(1)
    await rt.until_calls(2)  # the first failure is recorded: below the threshold, no change
    assert (state_of(m, "a"), changes.seen) == (None, [])
    await rt.answers.put(0)
    await changes.next()
    assert (state_of(m, "a"), changes.seen) == (H, ["a"])
    await rt.answers.put(0)
    await rt.answers.put(1)
    await rt.until_calls(5)  # success again, then one failure: still HEALTHY, no change
    assert (state_of(m, "a"), changes.seen) == (H, ["a"])
    await rt.answers.put(1)
    await changes.next()
    verdict = m.verdict("a")
    assert verdict is not None
    assert (verdict.state, verdict.message, changes.seen) == (
        U, "probe failed 2 times: command exited 1: not yet", ["a", "a"]
    )


async def test_an_invalid_probe_is_unhealthy_at_once_and_never_run(
    monitor: tuple[ProbeMonitor, ScriptedRuntime, Changes],
) -> None:
    m, rt, _ = monitor
    c = probed("a", pb.Probe(kind="http", port=0))
    m.ensure("a", c, await started(rt, c))
    verdict = m.verdict("a")
    assert verdict is not None and verdict.state == U
    assert verdict.message.startswith("invalid probe: probe.port: must be a port in 1-65535")
    assert rt.calls == 0


async def test_ensure_keeps_a_running_probe_and_restarts_for_a_new_container(
    monitor: tuple[ProbeMonitor, ScriptedRuntime, Changes],
) -> None:
    m, rt, changes = monitor
    c = probed("a")
    first = await started(rt, c)
    m.ensure("a", c, first)
    await rt.answers.put(0)
    await changes.next()
    verdict = m.verdict("a")
    m.ensure("a", c, first)  # same container: same task, same verdict
    assert m.verdict("a") is verdict and verdict is not None and verdict.state == H
    await rt.until_calls(2)
    # The container was replaced (same ccs id, new docker id): the verdict starts over.
    await rt.remove(first, volumes=True)
    second = await started(rt, c)
    assert second != first
    m.ensure("a", c, second)
    fresh = m.verdict("a")
    assert fresh is not None and fresh is not verdict and fresh.state is None


async def test_stop_forgets_the_verdict_and_an_exited_container_is_not_probed(
    monitor: tuple[ProbeMonitor, ScriptedRuntime, Changes],
) -> None:
    m, rt, _ = monitor
    c = probed("a")
    docker_id = await started(rt, c)
    m.ensure("a", c, docker_id)
    await rt.until_calls(1)
    m.stop("a")
    assert m.verdict("a") is None
    # An exited container: the task ends without a probe (the executor learns of the exit from
    # the engine's events); a failed inspect is retried next period, not taken for an exit.
    rt.crash(docker_id)
    rt.inspect_failures = 1
    m.ensure("a", c, docker_id)
    task = m._tasks.task("a")
    assert task is not None
    await asyncio.wait_for(task, WAIT)
    assert (rt.inspect_failures, rt.calls) == (0, 1)
    verdict = m.verdict("a")
    assert verdict is not None and verdict.state is None
