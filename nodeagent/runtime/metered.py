"""`MeteredRuntime`: any Runtime, with its container operations counted and timed.

A wrapper at the narrow interface rather than timing inside ``DockerRuntime``: the executor's
calls are what an operator waits on (``prepare`` includes a pull), the same wrapper measures
the fake engine of hollow nodes, and the Docker code stays about Docker. Reads (``inspect``,
``list_managed``, ``app_networks``, ``info``) and streams (``events``, ``logs``) are passed through uncounted:
they are not operations on a container.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from ccs.v1 import agent_pb2, resources_pb2

from ..metrics import AgentMetrics
from .types import Bridge, ExecResult, ExecSession, HostInfo, Observed, PullCallback, Runtime, RuntimeEvent

T = TypeVar("T")


class MeteredRuntime:
    """Delegates every call to ``inner``; see the module docstring for what is measured."""

    def __init__(self, inner: Runtime, metrics: AgentMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def _measured(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        t0 = time.perf_counter()
        try:
            result = await call()
        except asyncio.CancelledError:
            raise  # the agent stopping or a newer plan: not an outcome of the engine
        except BaseException:
            self.metrics.operation(op, "error", time.perf_counter() - t0)
            raise
        self.metrics.operation(op, "ok", time.perf_counter() - t0)
        return result

    async def prepare(self, c: resources_pb2.Container, *, on_pull: PullCallback | None = None,
                      auth: agent_pb2.PullAuth | None = None) -> None:
        await self._measured("prepare", lambda: self.inner.prepare(c, on_pull=on_pull, auth=auth))

    async def create(self, c: resources_pb2.Container) -> str:
        return await self._measured("create", lambda: self.inner.create(c))

    async def start(self, docker_id: str) -> None:
        await self._measured("start", lambda: self.inner.start(docker_id))

    async def stop(self, docker_id: str, grace_seconds: float) -> None:
        await self._measured("stop", lambda: self.inner.stop(docker_id, grace_seconds))

    async def remove(self, docker_id: str, *, volumes: bool) -> None:
        await self._measured("remove", lambda: self.inner.remove(docker_id, volumes=volumes))

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        return await self._measured("exec", lambda: self.inner.exec(docker_id, cmd, timeout_seconds=timeout_seconds))

    async def open_exec(
        self, docker_id: str, command: Sequence[str], *, tty: bool, stdin: bool, rows: int, cols: int
    ) -> ExecSession:
        """Measured to the session's start (`ccs exec`); the session itself is the user's time."""
        return await self._measured("open_exec", lambda: self.inner.open_exec(
            docker_id, command, tty=tty, stdin=stdin, rows=rows, cols=cols))

    async def remove_app_resources(self, cluster: str, app: str, *, volumes: bool) -> None:
        await self._measured("remove_app_resources",
                             lambda: self.inner.remove_app_resources(cluster, app, volumes=volumes))

    async def remove_unused_network(self, name: str) -> bool:
        return await self._measured("remove_unused_network", lambda: self.inner.remove_unused_network(name))
    async def remove_image(self, image: str) -> bool:
        return await self._measured("remove_image", lambda: self.inner.remove_image(image))

    async def image_disk_usage(self) -> int:
        return await self.inner.image_disk_usage()

    async def inspect(self, docker_id: str) -> Observed | None:
        return await self.inner.inspect(docker_id)

    async def app_networks(self, cluster: str) -> list[Bridge]:
        return await self.inner.app_networks(cluster)

    async def list_managed(self) -> list[Observed]:
        return await self.inner.list_managed()

    def events(self, *, since: float | None = None) -> AsyncIterator[RuntimeEvent]:
        return self.inner.events(since=since)

    def logs(self, docker_id: str, *, follow: bool, tail: int | None, since: float | None) -> AsyncIterator[bytes]:
        return self.inner.logs(docker_id, follow=follow, tail=tail, since=since)

    async def info(self) -> HostInfo:
        return await self.inner.info()

    async def aclose(self) -> None:
        await self.inner.aclose()
