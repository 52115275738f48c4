"""The agent's first health check (nodeagent.first_check) on a scripted runtime: when it runs,
when it stops, and that its verdict belongs to one start of one container. The real engine's
side is tests/integration/test_first_health_check.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.assignments import AssignmentBook
from nodeagent.executor import Executor
from nodeagent.first_check import FirstHealthCheck, wants_check
from nodeagent.mounted_files import MountedFiles
from nodeagent.runtime.types import ContainerNotFound, ExecResult, Observed, Runtime, State
from nodeagent.status import same_report

from .test_agent_helpers import CLUSTER, container

STARTING = Observed(docker_id="d1", name="web-1", labels={}, image="i", state=State.CONTAINER_STATE_STARTING,
                    health="starting", started_at=100.0, health_cmd=("/bin/sh", "-c", "test -f /ready"))


class Scripted:
    """exec answers from `exit_codes` (then 0); inspect answers `observed` (None: gone)."""

    def __init__(self, exit_codes: Sequence[int | Exception], observed: Observed | None = STARTING) -> None:
        self.exit_codes = list(exit_codes)
        self.observed = observed
        self.runs: list[tuple[str, ...]] = []

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        self.runs.append(tuple(cmd))
        code = self.exit_codes.pop(0) if self.exit_codes else 0
        if isinstance(code, Exception):
            raise code
        return ExecResult(code, b"")

    async def inspect(self, docker_id: str) -> Observed | None:
        return self.observed


def checker(rt: Scripted) -> tuple[FirstHealthCheck, list[str]]:
    passed: list[str] = []
    return FirstHealthCheck(cast(Runtime, rt), passed.append, cadence=0.0, max_cadence=0.0), passed


async def settle(fc: FirstHealthCheck) -> None:
    for _ in range(1000):
        if all(t.done() for t in fc._tasks.tasks()):
            return
        await asyncio.sleep(0)
    raise AssertionError("the check did not end")


def test_only_a_started_container_the_engine_has_not_judged_is_checked() -> None:
    assert wants_check(STARTING)
    assert not wants_check(dataclasses.replace(STARTING, health_cmd=()))  # no health check
    assert not wants_check(dataclasses.replace(STARTING, started_at=None))  # created, not started
    assert not wants_check(dataclasses.replace(STARTING, state=State.CONTAINER_STATE_HEALTHY, health="healthy"))
    assert not wants_check(dataclasses.replace(STARTING, state=State.CONTAINER_STATE_RUNNING, health=""))


async def test_failures_then_a_success_pass_once_and_run_the_engines_command() -> None:
    rt = Scripted([1, 1, ContainerNotFound("gone for a moment"), 0])
    fc, passed = checker(rt)
    fc.ensure("c1", STARTING)
    await settle(fc)
    assert passed == ["c1"]
    assert fc.passed("c1", STARTING)
    assert fc.failures["c1"] == 3
    assert rt.runs == [STARTING.health_cmd] * 4
    fc.ensure("c1", STARTING)  # passed already: no new run
    await settle(fc)
    assert len(rt.runs) == 4


async def test_it_stops_without_a_verdict_once_the_engine_has_judged() -> None:
    rt = Scripted([1], observed=dataclasses.replace(STARTING, state=State.CONTAINER_STATE_UNHEALTHY,
                                                    health="unhealthy"))
    fc, passed = checker(rt)
    fc.ensure("c1", STARTING)
    await settle(fc)
    assert passed == []
    assert not fc.passed("c1", STARTING)
    assert len(rt.runs) == 1


async def test_a_pass_belongs_to_one_start_of_the_container() -> None:
    rt = Scripted([0])
    fc, _ = checker(rt)
    fc.ensure("c1", STARTING)
    await settle(fc)
    restarted = dataclasses.replace(STARTING, started_at=200.0)
    assert fc.passed("c1", STARTING)
    assert not fc.passed("c1", restarted)
    fc.stop("c1")
    assert not fc.passed("c1", STARTING)
    await fc.close()


async def test_the_report_stays_the_same_when_the_engine_agrees_and_turns_when_it_does_not(tmp_path: Path) -> None:
    """The executor's side: HEALTHY from the agent's pass while the engine says starting; the same
    report once the engine says healthy (so the time it turned ready does not move); UNHEALTHY from
    the engine wins and forgets the pass."""
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    rt = Scripted([0])
    ex = Executor(cast(Runtime, rt), AssignmentBook(), reports.append, cluster=CLUSTER, node="n1",
                  address="127.0.0.1", files=MountedFiles(tmp_path))
    c = container("c1")
    ex._emit(c, STARTING)  # starts the agent's check, which passes at its first run
    for _ in range(1000):
        if ex.first_checks.passed("c1", STARTING):
            break
        await asyncio.sleep(0)
    assert reports[-1].status.state == pb.CONTAINER_STATE_STARTING

    ex._emit(c, STARTING)
    by_agent = reports[-1].status
    assert (by_agent.state, by_agent.healthy_by_agent_check) == (pb.CONTAINER_STATE_HEALTHY, True)
    ex._emit(c, dataclasses.replace(STARTING, state=State.CONTAINER_STATE_HEALTHY, health="healthy"))
    assert same_report(reports[-1].status, by_agent)

    ex._emit(c, dataclasses.replace(STARTING, state=State.CONTAINER_STATE_UNHEALTHY, health="unhealthy"))
    assert (reports[-1].status.state, reports[-1].status.healthy_by_agent_check) == (
        pb.CONTAINER_STATE_UNHEALTHY, False)
    ex._emit(c, dataclasses.replace(STARTING, state=State.CONTAINER_STATE_HEALTHY, health="healthy"))
    assert (reports[-1].status.state, reports[-1].status.healthy_by_agent_check) == (
        pb.CONTAINER_STATE_HEALTHY, False)
    await ex.close()
