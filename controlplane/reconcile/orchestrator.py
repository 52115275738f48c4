"""The orchestrator: dirty tracking over the cache, one serial pass per cluster.

Changes mark services dirty (a container's change also dirties the other services of
its application, whose ``depends_on`` gates may have opened); a scheduling-relevant node
change dirties the whole cluster. The cluster key is queued; the pass then plans every
dirty service against one scheduler snapshot. Heartbeat-only node changes are ignored
here: node deadlines come back through ``requeue_after``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.api.app_update import TERMINAL
from controlplane.reconcile.cache import Change, Informer, SvcKey
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.queue import Result, WorkQueue
from controlplane.reconcile.release_pass import plan_releases
from controlplane.reconcile.writes import Writes
from controlplane.store import keys
from controlplane.store.etcd import Etcd

log = structlog.get_logger("ccs.orchestrator")

RESYNC_PERIOD = 30.0


def _node_relevant(old: pb.Node | None, new: pb.Node | None) -> bool:
    if old is None or new is None:
        return True
    a, b = pb.Node(), pb.Node()
    a.CopyFrom(old)
    b.CopyFrom(new)
    for n in (a, b):
        n.status.ClearField("last_heartbeat")
        n.meta.resource_version = 0
        n.meta.ClearField("updated_at")
    return a != b


class Orchestrator:
    def __init__(
        self,
        etcd: Etcd,
        informer: Informer,
        *,
        heartbeat_period: float = 5.0,
        down_grace: float = 30.0,
        workers: int = 2,
    ) -> None:
        self.etcd = etcd
        self.informer = informer
        self.heartbeat_period = timedelta(seconds=heartbeat_period)
        self.down_grace = timedelta(seconds=down_grace)
        self.queue = WorkQueue(self.reconcile, workers=workers, name="orchestrator")
        self._dirty: dict[str, set[SvcKey]] = defaultdict(set)
        self._all: set[str] = set()
        self._running = False
        self._next_full: dict[str, float] = {}
        self._not_before: dict[str, float] = {}
        # Services that asked to be planned again at a time (restart delays).
        self._due: dict[str, dict[SvcKey, float]] = defaultdict(dict)
        informer.subscribe(self._on_changes, self._on_resync)
        self.last_pass_seconds = 0.0

    def start(self) -> None:
        self._running = True
        self._on_resync()
        self.queue.start()

    async def stop(self) -> None:
        self._running = False
        await self.queue.stop()

    def _on_resync(self) -> None:
        for cluster in list(self.informer.clusters):
            self._all.add(cluster)
            if self._running:
                self.queue.add(cluster)

    def _on_changes(self, changes: list[Change]) -> None:
        if not self._running:
            return
        touched: set[str] = set()
        for ch in changes:
            if ch.kind == "node":
                if _node_relevant(ch.old, ch.new):
                    self._all.add(ch.cluster)
                    touched.add(ch.cluster)
                continue
            state = self.informer.clusters.get(ch.cluster)
            if ch.kind == "subnet":  # written by the passes themselves; plans nothing
                continue
            if ch.kind == "routerstats":
                # Only canary analysis reads router counters.
                if state is not None and any(r.spec.strategy == "canary" and r.status.phase not in TERMINAL
                                             for r in state.releases.values()):
                    touched.add(ch.cluster)
                continue
            app = ch.key[0]
            if ch.kind == "release":
                if state is not None:
                    self._dirty[ch.cluster].update(k for k in state.services if k[0] == app)
                touched.add(ch.cluster)
                continue
            if ch.kind == "application" or state is None:
                self._all.add(ch.cluster)
            else:
                self._dirty[ch.cluster].add((app, ch.key[1]))
            touched.add(ch.cluster)
        for cluster in touched:
            self.queue.add(cluster)

    async def reconcile(self, cluster: str) -> Result:
        state = self.informer.clusters.get(cluster)
        if state is None or not state.exists:
            self._dirty.pop(cluster, None)
            self._all.discard(cluster)
            return Result()
        now_mono = time.monotonic()
        wait = self._not_before.get(cluster, 0.0) - now_mono
        if wait > 0:
            # Leave the event loop to the dispatcher for as long as the last pass took: a
            # flood of status reports then costs a few big passes, not one pass per report.
            return Result(requeue_after=wait)
        t0 = time.perf_counter()
        if now_mono >= self._next_full.get(cluster, 0.0):
            self._all.add(cluster)  # the periodic safety net is a full pass
        full = cluster in self._all
        if full:
            self._next_full[cluster] = now_mono + RESYNC_PERIOD
        self._all.discard(cluster)
        dirty = self._dirty.pop(cluster, set())
        # Services whose depends_on gate reads a dirty service's counts.
        for key, service in state.services.items():
            if any((key[0], d.service) in dirty for d in service.spec.depends_on):
                dirty.add(key)
        due = self._due[cluster]
        for key in [k for k, at in due.items() if at <= now_mono + 0.01]:
            dirty.add(key)
            del due[key]
        if full:
            dirty |= set(state.services) | {k for k in state.by_service if state.by_service[k]}
        p = ClusterPass(state, datetime.now(UTC), heartbeat_period=self.heartbeat_period,
                        down_grace=self.down_grace)
        p.plan_nodes()
        release_writes = Writes()
        for app in plan_releases(p, release_writes):
            dirty.update(k for k in state.services if k[0] == app)
            if release_writes.has(keys.app(cluster, app)):
                p.skip_app_status.add(app)
        for app, svc in sorted(dirty):
            p.plan_service(app, svc)
            # A big pass is CPU work: let the dispatcher, heartbeats and the leader lease
            # keepalive run between services instead of stalling for the whole pass.
            await asyncio.sleep(0)
        p.finish_apps({a for a, _ in dirty} | (set(state.apps) if full else set()))
        p.subnets.release_unused(p.writes, p.overlay, full=full)
        try:
            written = await release_writes.commit(self.etcd)
            written += await p.writes.commit(self.etcd)
        except Exception:
            # What was dirty is still dirty.
            self._dirty[cluster] |= dirty
            if full:
                self._all.add(cluster)
            raise
        if p.writes.conflicts:
            # Some chunks met a newer write (an agent's status, a heartbeat): the others
            # landed. Replan what was dirty once the cache has caught up.
            self._dirty[cluster] |= dirty
            log.debug("pass had conflicts; replanning", cluster=cluster, chunks=p.writes.conflicts)
            return Result(requeue_after=0.05)
        for key, after in p.service_requeue.items():
            due[key] = min(due.get(key, float("inf")), time.monotonic() + after)
        self.last_pass_seconds = time.perf_counter() - t0
        self._not_before[cluster] = time.monotonic() + min(self.last_pass_seconds, 2.0)
        if written:
            log.debug("pass", cluster=cluster, services=len(dirty), writes=written,
                      seconds=round(self.last_pass_seconds, 3))
        requeue = min([*p.requeue, RESYNC_PERIOD])
        return Result(requeue_after=max(requeue, 0.05))
