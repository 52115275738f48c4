"""Agent-side probes (spec.probe: http/tcp/cmd) run periodically and turned into HEALTHY/UNHEALTHY.

Each check is :func:`nodeagent.probe_check.run_probe`; this module decides what the results mean.

`ProbeVerdict` is the pure counting rule (one success -> HEALTHY, `threshold` consecutive
failures -> UNHEALTHY; WAITING during the initial delay changes nothing). `ProbeMonitor` runs
one small task per live container with a probe and, when a verdict changes, only marks the
container dirty: the executor re-plans and reports, so the status path stays single.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ccs.v1 import resources_pb2
from nodeagent import probe_check
from nodeagent.container_tasks import ContainerTasks
from nodeagent.runtime.types import Runtime, RuntimeFailure, State

DEFAULT_PERIOD = 3.0
DEFAULT_THRESHOLD = 3

log = structlog.get_logger("ccs.agent.probe")


@dataclass(slots=True)
class ProbeVerdict:
    threshold: int = DEFAULT_THRESHOLD
    state: int | None = None  # None until the first conclusive result
    failures: int = 0
    message: str = ""

    def record(self, result: probe_check.ProbeResult) -> bool:
        """Count one result; True when the verdict changed."""
        before = self.state
        if result.status is probe_check.ProbeStatus.SUCCESS:
            self.failures = 0
            self.state = State.CONTAINER_STATE_HEALTHY
            self.message = ""
        elif result.status is probe_check.ProbeStatus.FAILURE:
            self.failures += 1
            if self.failures >= self.threshold:
                self.state = State.CONTAINER_STATE_UNHEALTHY
                self.message = f"probe failed {self.failures} times: {result.message}"
        return self.state != before


def has_probe(c: resources_pb2.Container) -> bool:
    return c.spec.HasField("probe") and bool(c.spec.probe.kind)


class ProbeMonitor:
    """Probe tasks by ccs container id; `on_change(cid)` is called when a verdict changes."""

    def __init__(
        self,
        runtime: Runtime,
        on_change: Callable[[str], None],
        *,
        period: float = DEFAULT_PERIOD,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self._runtime = runtime
        self._on_change = on_change
        self._period = period
        self._threshold = threshold
        self._tasks: ContainerTasks[str] = ContainerTasks("probe")  # keyed by docker id
        self._verdicts: dict[str, ProbeVerdict] = {}

    def verdict(self, cid: str) -> ProbeVerdict | None:
        return self._verdicts.get(cid)

    def ensure(self, cid: str, c: resources_pb2.Container, docker_id: str) -> None:
        """Probe `docker_id` for `cid` (no-op when already probing it)."""
        if self._tasks.running(cid, docker_id):
            return
        self.stop(cid)
        try:
            probe_check.validate(c.spec.probe)
        except probe_check.ProbeError as exc:
            self._verdicts[cid] = ProbeVerdict(
                self._threshold, State.CONTAINER_STATE_UNHEALTHY, 0, f"invalid probe: {exc}"
            )
            return
        self._verdicts[cid] = ProbeVerdict(self._threshold)
        self._tasks.start(cid, docker_id, self._run(cid, c.spec.probe, docker_id))

    def stop(self, cid: str) -> None:
        self._tasks.stop(cid)
        self._verdicts.pop(cid, None)

    async def close(self) -> None:
        await self._tasks.close()

    async def _run(self, cid: str, probe: resources_pb2.Probe, docker_id: str) -> None:
        while True:
            try:
                observed = await self._runtime.inspect(docker_id)
            except RuntimeFailure as exc:  # engine hiccup: try again next period
                log.warning("probe inspect failed", container_id=cid, error=str(exc))
                await asyncio.sleep(self._period)
                continue
            if observed is None or observed.state not in (
                State.CONTAINER_STATE_RUNNING, State.CONTAINER_STATE_HEALTHY,
                State.CONTAINER_STATE_UNHEALTHY, State.CONTAINER_STATE_STARTING,
            ):
                return  # the executor learns about the exit from the engine's events
            result = await probe_check.run_probe(probe, observed, self._runtime, now=time.time())
            verdict = self._verdicts.get(cid)
            if verdict is None:
                return
            if verdict.record(result):
                log.info("probe verdict", container_id=cid, state=verdict.state, message=result.message)
                self._on_change(cid)
            await asyncio.sleep(self._period)
