"""Waiting until an application is deployed: ``client.applications.wait``.

The verdict (done, failed, still going) is the pure ``ccs.deploy_verdict.assess``; this module
is the I/O around it, and re-exports the verdict's names for callers of ``ccs.wait``. It
imports only the transport, the events and the verdict (its lists are plain paged calls), so
``ccs.applications`` can import it without a circle.

- **List, then watch.** The waiter lists the application (whose list carries a revision),
  its services, containers and the nodes, then watches from that first revision + 1. Every
  later read is at a higher revision, so the watch replays what they already saw; a change is
  applied only when it is newer than what is held (by revision), so replays are harmless.
  ``events.watch`` reconnects by itself; a compacted revision (``OutOfRange``) or the slow
  ``resync_interval`` safety net re-lists from scratch. There is no polling loop.
- After every batch of changes the snapshot is judged again; ``on_progress`` hears only
  progress that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math

from ccs._transport import Listing, Transport, collect
from ccs.deploy_verdict import (
    DEFAULT_MIN_READY,
    DEFAULT_UNSCHEDULABLE_GRACE,
    Assessment,
    Progress,
    ProgressCallback,
    ServiceProgress,
    Snapshot,
    apply_watch,
    assess,
    format_duration,
    revision_key,
    timeout_error,
    track_ready,
    track_unplaced,
)
from ccs.errors import NotFound, OutOfRange
from ccs.events import Events
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb

__all__ = [
    "DEFAULT_MIN_READY",
    "DEFAULT_UNSCHEDULABLE_GRACE",
    "Assessment",
    "Progress",
    "ProgressCallback",
    "ServiceProgress",
    "Snapshot",
    "Waiter",
    "assess",
    "format_duration",
    "track_ready",
    "track_unplaced",
]

DEFAULT_RESYNC_INTERVAL = 30.0

# ------------------------------------------------------------------ I/O: list, then watch


class Waiter:
    """One wait: keeps a ``Snapshot`` current from a list and a watch, and asks ``assess``."""

    def __init__(
        self, transport: Transport, cluster: str, name: str, *, timeout: float,
        on_progress: ProgressCallback | None = None,
        unschedulable_grace: float = DEFAULT_UNSCHEDULABLE_GRACE,
        resync_interval: float = DEFAULT_RESYNC_INTERVAL,
        min_ready: float = DEFAULT_MIN_READY,
    ) -> None:
        for field_name, value in (("timeout", timeout), ("unschedulable_grace", unschedulable_grace),
                                  ("resync_interval", resync_interval), ("min_ready", min_ready)):
            if not math.isfinite(value) or value < 0 or (value == 0 and field_name not in ("unschedulable_grace",
                                                                                            "min_ready")):
                raise ValueError(f"{field_name}: must be a positive number of seconds, got {value!r}")
        self._events = Events(transport)
        self._t = transport
        self.cluster, self.name, self.timeout = cluster, name, timeout
        self.on_progress, self.grace, self.resync = on_progress, unschedulable_grace, resync_interval
        self.min_ready = min_ready
        self._since: dict[str, float] = {}
        self._ready_since: dict[str, float] = {}
        self._last: Progress | None = None

    async def run(self) -> Progress:
        """Wait; return the final progress, or raise ``DeployFailed``/``WaitTimeout``/``NotFound``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:  # one iteration per (re-)list
            result = await self._follow(deadline)
            if result is not None:
                return result

    async def _list(self) -> tuple[Snapshot, int, dict[tuple[str, ...], int]]:
        t, cluster = self._t, self.cluster
        apps: Listing[pb.Application] = await collect(
            lambda tok: t.unary(t.applications.ListApplications,
                                api_pb2.ListApplicationsRequest(cluster=cluster, page_token=tok),
                                api_pb2.ListApplicationsResponse),
            lambda r: r.applications)
        app = next((a for a in apps if a.meta.name == self.name), None)
        if app is None:
            raise NotFound(f"application {self.name!r} not found in cluster {self.cluster!r}")
        snap = Snapshot(app)
        services: Listing[pb.Service] = await collect(
            lambda tok: t.unary(t.services.ListServices,
                                api_pb2.ListServicesRequest(cluster=cluster, application=self.name,
                                                            page_token=tok),
                                api_pb2.ListServicesResponse),
            lambda r: r.services)
        containers: Listing[pb.Container] = await collect(
            lambda tok: t.unary(t.containers.ListContainers,
                                api_pb2.ListContainersRequest(cluster=cluster, application=self.name,
                                                              page_token=tok),
                                api_pb2.ListContainersResponse),
            lambda r: r.containers)
        nodes: Listing[pb.Node] = await collect(
            lambda tok: t.unary(t.nodes.ListNodes, api_pb2.ListNodesRequest(cluster=cluster, page_token=tok),
                                api_pb2.ListNodesResponse),
            lambda r: r.nodes)
        snap.services = {s.meta.name: s for s in services}
        snap.containers = {(c.service, c.meta.name): c for c in containers}
        snap.nodes = {n.meta.name: n for n in nodes}
        versions = {revision_key(k, o): o.meta.resource_version
                    for k, objs in (("service", services), ("container", containers), ("node", nodes))
                    for o in objs}
        versions[("application", self.name)] = app.meta.resource_version
        return snap, apps.revision, versions

    async def _follow(self, deadline: float) -> Progress | None:
        """List and watch until done (the progress), failure (raised) or a re-list (None)."""
        loop = asyncio.get_running_loop()
        snap, revision, versions = await self._list()
        queue: asyncio.Queue[api_pb2.WatchResponse | Exception] = asyncio.Queue()
        watch = self._events.watch(self.cluster, revision + 1,
                                   ("application", "service", "container", "node"))

        async def pump() -> None:
            try:
                async for resp in watch:
                    queue.put_nowait(resp)
            except Exception as exc:  # handed to the waiting loop, which raises or re-lists
                queue.put_nowait(exc)

        task = asyncio.create_task(pump())
        resync_at = loop.time() + self.resync
        try:
            while True:
                now = loop.time()
                verdict = await self._assess(snap, now)
                if verdict.failure is not None:
                    raise verdict.failure
                if verdict.progress.done:
                    return verdict.progress
                if now >= deadline:
                    raise timeout_error(verdict.progress, self.timeout)
                wake = min(deadline, resync_at, verdict.recheck_at or math.inf)
                try:
                    async with asyncio.timeout(max(0.0, wake - now)):
                        item = await queue.get()
                except TimeoutError:
                    if loop.time() >= resync_at:
                        return None
                    continue
                while True:  # apply every queued revision before judging again
                    if isinstance(item, OutOfRange):
                        return None
                    if isinstance(item, Exception):
                        raise item
                    if not apply_watch(snap, item, versions):
                        raise NotFound(f"application {self.name!r} was deleted while waiting")
                    if queue.empty():
                        break
                    item = queue.get_nowait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await watch.aclose()

    async def _assess(self, snap: Snapshot, now: float) -> Assessment:
        self._since = track_unplaced(snap.containers.values(), now, self._since)
        self._ready_since = track_ready(snap, now, self._ready_since)
        verdict = assess(snap, now, self._since, self.grace, self._ready_since, self.min_ready)
        if self.on_progress is not None and verdict.progress != self._last:
            self._last = verdict.progress
            result = self.on_progress(verdict.progress)
            if inspect.isawaitable(result):
                await result
        return verdict
