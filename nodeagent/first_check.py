"""Readiness from the agent's own first run of a container's health check, as the kubelet does.

Why: the engine runs a Compose health check first one `interval` after the start, and until then
a started container is STARTING. A rolling update waits for HEALTHY before it starts the next
slot, so every round pays that interval (1 s in the benchmark, 30 s by Compose's default) on top
of the engine's start. The kubelet does not wait for anyone's interval: it probes right away.

So, right after a container with a health check starts (the engine says health "starting"), the
agent execs the same command the engine would (`Observed.health_cmd`: CMD argv, or the shell and
the CMD-SHELL string; the engine's effective config, so an image's own HEALTHCHECK counts too),
at a short cadence that grows (0.25 s, x1.5, at most 2 s; one run at a time, each bounded by the
check's `timeout`), until the first success, which the executor reports at once as HEALTHY
(`ContainerStatus.healthy_by_agent_check`). It stops at the first success, or as soon as the
engine's own status is no longer "starting" (the engine has run its checks and is the source from
then on: a later UNHEALTHY comes from the engine, as before), or when the container stops.

What it never does: report a failure. A failing early run means "not ready yet", like a failure
inside the engine's `start_period`: it counts towards no UNHEALTHY verdict (only the engine's
`retries` do), so a slow starter is not replaced for the agent's impatience. A container without
a health check (none, `NONE`, `disable: true`) is not probed: it is ready when it runs, as before.

The verdict is keyed by (docker id, start time): a restart of the same container starts over.
While the engine agrees (HEALTHY) the report stays the same, so the time the container turned
ready does not move when the engine's first check comes; once the engine calls it UNHEALTHY the
agent's pass is forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from nodeagent.container_tasks import ContainerTasks
from nodeagent.runtime.types import ContainerNotFound, Observed, Runtime, RuntimeFailure, State

FIRST_CADENCE = 0.25  # seconds between the end of one run and the next, at first
GROWTH = 1.5
MAX_CADENCE = 2.0
DEFAULT_TIMEOUT = 30.0  # the engine's, when the health check sets none

log = structlog.get_logger("ccs.agent.first_check")

Key = tuple[str, float | None]  # (docker id, started_at): one start of one container


def wants_check(o: Observed) -> bool:
    """A started container with a health check the engine has not judged yet."""
    return (
        o.state == State.CONTAINER_STATE_STARTING
        and o.started_at is not None
        and o.health == "starting"
        and bool(o.health_cmd)
    )


def key_of(o: Observed) -> Key:
    return o.docker_id, o.started_at


class FirstHealthCheck:
    """One bounded check task per started container; `on_pass(cid)` when its first run passes."""

    def __init__(
        self,
        runtime: Runtime,
        on_pass: Callable[[str], None],
        *,
        cadence: float = FIRST_CADENCE,
        max_cadence: float = MAX_CADENCE,
    ) -> None:
        self._runtime = runtime
        self._on_pass = on_pass
        self._cadence = cadence
        self._max_cadence = max_cadence
        self._tasks: ContainerTasks[Key] = ContainerTasks("first-check")
        self._passed: dict[str, Key] = {}
        self.failures: dict[str, int] = {}  # failed runs of the current start (logs and tests)

    def passed(self, cid: str, o: Observed) -> bool:
        """The agent's check passed for this very start of the container."""
        return self._passed.get(cid) == key_of(o)

    def ensure(self, cid: str, o: Observed) -> None:
        """Start checking `o` unless it needs none, passed already, or is being checked."""
        if not wants_check(o) or self.passed(cid, o):
            return
        key = key_of(o)
        if self._tasks.running(cid, key):
            return
        self.stop(cid)
        self.failures[cid] = 0
        timeout = o.health_timeout or DEFAULT_TIMEOUT
        self._tasks.start(cid, key, self._run(cid, key, tuple(o.health_cmd), timeout))

    def engine_judged(self, cid: str) -> None:
        """The engine called the container unhealthy: the agent's pass no longer says anything."""
        self._passed.pop(cid, None)

    def stop(self, cid: str) -> None:
        self._tasks.stop(cid)
        self._passed.pop(cid, None)
        self.failures.pop(cid, None)

    async def close(self) -> None:
        await self._tasks.close()

    async def _run(self, cid: str, key: Key, cmd: tuple[str, ...], timeout: float) -> None:
        docker_id = key[0]
        delay = self._cadence
        while True:
            if await self._once(cid, docker_id, cmd, timeout):
                self._passed[cid] = key
                log.info("first health check passed", container_id=cid, failed_runs=self.failures.get(cid, 0))
                self._on_pass(cid)
                return
            self.failures[cid] = self.failures.get(cid, 0) + 1
            await asyncio.sleep(delay)
            delay = min(delay * GROWTH, self._max_cadence)
            try:
                o = await self._runtime.inspect(docker_id)
            except RuntimeFailure:
                continue  # an engine hiccup: the next run tells
            if o is None or key_of(o) != key or not wants_check(o):
                return  # gone, restarted, or the engine has judged it: the engine is the source

    async def _once(self, cid: str, docker_id: str, cmd: tuple[str, ...], timeout: float) -> bool:
        try:
            result = await self._runtime.exec(docker_id, cmd, timeout_seconds=timeout)
        except TimeoutError:
            return False
        except ContainerNotFound:
            return False  # the inspect that follows ends the task
        except RuntimeFailure as exc:  # not running (any more), an engine error: not ready yet
            log.debug("first health check run failed", container_id=cid, error=exc.reason)
            return False
        return result.exit_code == 0
