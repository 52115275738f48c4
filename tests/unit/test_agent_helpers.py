"""Builders shared by the test_agent_* tests (no tests here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from ccs.v1 import agent_pb2, agent_pb2_grpc, resources_pb2
from nodeagent.runtime.types import Observed, State

CLUSTER = "c1"
WAIT = 20.0  # a guard against hanging, not a performance assertion


class ObservedDispatcher(agent_pb2_grpc.DispatcherServicer):
    """Base of the in-process Dispatcher doubles: counts what the agent sends and lets a test
    wait for a condition on it (:meth:`until`) instead of sleeping."""

    def __init__(self) -> None:
        self.opened = 0
        self.heartbeats = 0
        self.statuses: dict[str, agent_pb2.ContainerStatusUpdate] = {}
        self.changed = asyncio.Condition()

    async def _notify(self, change: Callable[[], object]) -> None:
        async with self.changed:
            change()
            self.changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        await asyncio.wait_for(wait(), WAIT)

    def state(self, name: str) -> int:
        u = self.statuses.get(name)
        return u.status.state if u is not None else -1

    async def _auth(self, context: Any) -> None:
        """Refuse a call without the node's credential (a double that checks them overrides this)."""

    async def UpdateStatus(self, request: Any, context: Any) -> agent_pb2.UpdateStatusResponse:
        await self._auth(context)
        await self._notify(lambda: self.statuses.update({u.container: u for u in request.updates}))
        return agent_pb2.UpdateStatusResponse()

    async def Logs(self, request_iterator: Any, context: Any) -> AsyncIterator[agent_pb2.LogRequest]:
        async for _ in request_iterator:  # the hello, then nothing: the relay stays open
            await self._log_request()
        if False:  # pragma: no cover - makes this an async generator that sends nothing
            yield agent_pb2.LogRequest()

    async def _log_request(self) -> None:
        """A message on the agent's log relay (counted by a double that needs it)."""


def container(
    cid: str,
    desired: int = resources_pb2.DESIRED_STATE_RUNNING,
    *,
    app: str = "shop",
    service: str = "web",
    cluster: str = CLUSTER,
    image: str = "local/busybox:1",
    meta_labels: dict[str, str] | None = None,
    grace_ms: int = 0,
    published: int = 0,
) -> resources_pb2.Container:
    c = resources_pb2.Container(
        meta=resources_pb2.Meta(id=cid, name=f"{service}-{cid}", labels=meta_labels or {}),
        cluster=cluster, application=app, service=service, slot=1, desired_state=desired,  # type: ignore[arg-type]
        spec=resources_pb2.ServiceSpec(image=image, stop_grace_period_ms=grace_ms),
    )
    if published:
        c.spec.ports.add(target=80, published=published, protocol="tcp")
    return c


def observed(
    cid: str,
    state: int = State.CONTAINER_STATE_RUNNING,
    *,
    cluster: str = CLUSTER,
    app: str = "shop",
    started: float | None = 100.0,
    exit_code: int = 0,
    labels: dict[str, str] | None = None,
) -> Observed:
    base = {"ccs.managed": "true", "ccs.cluster": cluster, "ccs.app": app, "ccs.container-id": cid}
    base.update(labels or {})
    return Observed(
        docker_id=f"d-{cid}", name=f"ccs-{cid}", labels=base, image="local/busybox:1", state=state,
        exit_code=exit_code, started_at=started,
    )


def complete(version: int, *containers: resources_pb2.Container) -> agent_pb2.SessionMessage:
    return agent_pb2.SessionMessage(
        type=agent_pb2.SessionMessage.TYPE_COMPLETE, version=version,
        assignments=[agent_pb2.Assignment(action=agent_pb2.Assignment.ACTION_UPDATE, container=c)
                     for c in containers],
    )


def incremental(
    base: int, version: int, *items: tuple[int, resources_pb2.Container]
) -> agent_pb2.SessionMessage:
    return agent_pb2.SessionMessage(
        type=agent_pb2.SessionMessage.TYPE_INCREMENTAL, version=version, base_version=base,
        assignments=[agent_pb2.Assignment(action=a, container=c) for a, c in items],  # type: ignore[arg-type]
    )
