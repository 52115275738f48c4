"""The orchestrator: dirty tracking over the cache, one serial pass per cluster.

Changes mark services dirty (a container's change also dirties the other services of
its application, whose ``depends_on`` gates may have opened); a scheduling-relevant node
change dirties the whole cluster. The cluster key is queued; the pass then plans every
dirty service against one scheduler snapshot. Heartbeat-only node changes are ignored
here: node deadlines come back through ``requeue_after``.

Liveness: heartbeats never reach etcd (:mod:`controlplane.dispatcher.liveness`); a node is alive
while an API replica holds an alive key for it. The orchestrator notes when it sees a node's last
key go (``absent_since``, its own wall clock) and queues the cluster; the node part of the pass
judges the node from that (:mod:`.node_pass`). Forgotten when a leadership begins (silence is
then counted from the leadership's start) and on a re-list (counted from then: later, never
sooner).

The work queue's backoff is for what fails a whole pass (etcd unreachable). A failure
while planning one service or release belongs to that object (:mod:`.containment`): the
pass goes on, the object backs off on its own, and the cluster is requeued for its retry.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import Change, ClusterState, Informer, SvcKey
from controlplane.reconcile.app_status import finish_apps
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.containment import ClusterFailures
from controlplane.reconcile.node_pass import plan_nodes
from controlplane.reconcile.queue import Result, WorkQueue
from controlplane.reconcile.release_pass import plan_releases
from controlplane.reconcile.service_pass import plan_service
from controlplane.reconcile.writes import Writes
from controlplane.release import CANARY, TERMINAL
from controlplane.store import keys
from controlplane.store.etcd import Etcd

log = structlog.get_logger("ccs.orchestrator")

RESYNC_PERIOD = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        down_grace: float = 5.0,
        workers: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utcnow,
        replicas: Callable[[], Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        # The clocks are parameters so that unit tests drive restart delays, backoff and the
        # periodic full pass deterministically (tests/unit/test_reconcile_orchestrator.py).
        self._monotonic = monotonic
        self._wall = wall
        # The live API replicas and the features each declared (controlplane.replicas): an
        # older one holds back further address blocks (controlplane.ipam.growth).
        self._replicas = replicas
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
        # The revision of each cluster's last committed pass: the next pass plans only from a
        # cache that has seen it (see reconcile).
        self._committed: dict[str, int] = {}
        # etcd's revision when this leadership term began (None: not read yet): what an earlier
        # term (this process's, cut short, or another replica's) committed must be in the cache
        # before the first pass of this one plans from it.
        self._term_floor: int | None = None
        # Services that asked to be planned again at a time (restart delays).
        self._due: dict[str, dict[SvcKey, float]] = defaultdict(dict)
        # Objects whose planning failed, per cluster: their own backoff (containment).
        self._failures: dict[str, ClusterFailures] = defaultdict(ClusterFailures)
        informer.subscribe(self._on_changes, self._on_resync)
        self.last_pass_seconds = 0.0
        # Told (seconds, outcome) after every pass that planned: done, conflict or error (the
        # server's metrics set it; see controlplane/metrics).
        self.on_pass: Callable[[float, str], None] | None = None
        # When this process last started leading: node silence before it is not counted,
        # since no heartbeat could reach etcd while no server ran (see planner.node).
        self.leading_since: datetime | None = None
        # cluster -> node -> when this process saw the node's last alive key go (see the module
        # docstring); kept while following, leader or not, and forgotten when a term begins.
        self.absent_since: dict[str, dict[str, datetime]] = defaultdict(dict)

    def start(self) -> None:
        self.leading_since = self._wall()
        self.absent_since.clear()
        self._term_floor = None
        self._running = True
        self._on_resync()
        self.queue.start()

    async def stop(self) -> None:
        self._running = False
        await self.queue.stop()

    def _on_resync(self) -> None:
        now = self._wall()
        for name, state in self.informer.clusters.items():
            gone = self.absent_since[name]
            for node in state.nodes:
                if state.alive.get(node):
                    gone.pop(node, None)
                else:
                    gone.setdefault(node, now)
        for cluster in list(self.informer.clusters):
            self._all.add(cluster)
            if self._running:
                self.queue.add(cluster)

    def _on_changes(self, changes: list[Change]) -> None:
        went = self._note_liveness(changes)
        if not self._running:
            return
        touched: set[str] = set(went)
        for ch in changes:
            if ch.kind == "undecodable":
                touched.add(ch.cluster)  # the pass reports it and holds its object
                continue
            if ch.kind == "node":
                if _node_relevant(ch.old, ch.new):
                    self._all.add(ch.cluster)
                    touched.add(ch.cluster)
                continue
            state = self.informer.clusters.get(ch.cluster)
            if ch.kind in ("subnet", "alive"):  # the passes' own writes; liveness: _note_liveness
                continue
            if ch.kind == "routerstats":
                # Only canary analysis reads router counters.
                if state is not None and any(r.spec.strategy == CANARY and r.status.phase not in TERMINAL
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

    def _note_liveness(self, changes: list[Change]) -> set[str]:
        """Note when nodes lost their last alive key (or got one); the clusters where one was lost."""
        went: set[str] = set()
        for ch in changes:
            if ch.kind != "alive":
                continue
            node = ch.key[0]
            if ch.new:
                self.absent_since[ch.cluster].pop(node, None)
            elif ch.old:
                self.absent_since[ch.cluster][node] = self._wall()
                went.add(ch.cluster)
        return went

    async def reconcile(self, cluster: str) -> Result:
        """One pass over ``cluster``: take its work, plan it, commit it, say when to come back."""
        state = self.informer.clusters.get(cluster)
        if state is None or not state.exists:
            self._forget(cluster)
            return Result()
        now_mono = self._monotonic()
        wait = self._not_before.get(cluster, 0.0) - now_mono
        if wait > 0:
            # Leave the event loop to the dispatcher for as long as the last pass took: a
            # flood of status reports then costs a few big passes, not one pass per report.
            return Result(requeue_after=wait)
        if self._term_floor is None:
            self._term_floor = (await self.etcd.range(keys.CLUSTERS, limit=1)).revision
        committed = max(self._committed.get(cluster, 0), self._term_floor)
        waited = time.perf_counter()
        if self.informer.revision < committed and not await self.informer.caught_up(committed, timeout=1.0):
            self._told(waited, "behind")
            # The cache has not seen this leader's own last writes yet. Planning from it would
            # find the slots just filled still empty and fill them again under new names: no
            # guard catches that, since a new container is a new key (issue 15's duplicates).
            # The work stays dirty until the watch delivers them.
            return Result(requeue_after=0.05)
        t0 = time.perf_counter()
        dirty, full = self._take_work(cluster, state, now_mono)
        try:
            p, release_writes = await plan_pass(
                state, dirty, full, failures=self._failures[cluster], now=self._wall(), mono_now=now_mono,
                heartbeat_period=self.heartbeat_period, down_grace=self.down_grace,
                leading_since=self.leading_since, replicas=self._replicas() if self._replicas is not None else None,
                absent_since=self.absent_since[cluster])
            written = await self._commit(cluster, p, release_writes, dirty, full)
        except asyncio.CancelledError:
            raise  # the leader stepping down: not a pass that failed
        except BaseException:
            self._told(t0, "error")
            raise
        self._told(t0, "conflict" if p.writes.conflicts else "done")
        if p.writes.conflicts:
            # Some chunks met a newer write (an agent's status, a heartbeat): the others
            # landed. Replan what was dirty once the cache has caught up.
            self._dirty[cluster] |= dirty
            log.debug("pass had conflicts; replanning", cluster=cluster, chunks=p.writes.conflicts)
            return Result(requeue_after=0.05)
        return self._after_pass(cluster, p, dirty, written, t0)

    def _told(self, t0: float, outcome: str) -> None:
        if self.on_pass is not None:
            self.on_pass(time.perf_counter() - t0, outcome)

    def _forget(self, cluster: str) -> None:
        """The cluster is gone: drop the work kept for it."""
        self._dirty.pop(cluster, None)
        self.absent_since.pop(cluster, None)
        self._all.discard(cluster)
        self._committed.pop(cluster, None)

    def _take_work(self, cluster: str, state: ClusterState, now_mono: float) -> tuple[set[SvcKey], bool]:
        """The services this pass plans, and whether it is a full pass.

        Dirty services, those whose ``depends_on`` gate reads one of them, those whose timer
        (a restart delay) is due; every service on a full pass (asked for, or the periodic
        safety net).
        """
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
        return dirty, full

    async def _commit(
        self, cluster: str, p: ClusterPass, release_writes: Writes, dirty: set[SvcKey], full: bool
    ) -> int:
        """Commit the releases' transaction, then the pass's; a failure keeps the work dirty."""
        try:
            written = await release_writes.commit(self.etcd)
            written += await p.writes.commit(self.etcd)
        except Exception:
            # What was dirty is still dirty.
            self._dirty[cluster] |= dirty
            if full:
                self._all.add(cluster)
            raise
        finally:
            # Also when the pass is cancelled (leadership lost) after some chunks landed.
            self._note_committed(cluster, release_writes, p.writes)
        return written

    def _note_committed(self, cluster: str, *writes: Writes) -> None:
        last = max(w.last_revision for w in writes)
        if last > self._committed.get(cluster, 0):
            self._committed[cluster] = last

    def _after_pass(self, cluster: str, p: ClusterPass, dirty: set[SvcKey], written: int, t0: float) -> Result:
        """Fold in a committed pass: failures, service timers, the throttle, and when to come back."""
        p.record_outcome()
        if p.deferred:  # planned by the next pass, once this one's fencing is in the cache
            self._dirty[cluster] |= p.deferred
            p.requeue.append(0.0)
        due = self._due[cluster]
        for key, after in p.service_requeue.items():
            due[key] = min(due.get(key, float("inf")), self._monotonic() + after)
        self.last_pass_seconds = time.perf_counter() - t0
        self._not_before[cluster] = self._monotonic() + min(self.last_pass_seconds, 2.0)
        if written:
            log.debug("pass", cluster=cluster, services=len(dirty), writes=written,
                      seconds=round(self.last_pass_seconds, 3))
        retry = self._failures[cluster].next_retry(self._monotonic())
        requeue = min([*p.requeue, RESYNC_PERIOD, *([retry] if retry is not None else [])])
        return Result(requeue_after=max(requeue, 0.05))


async def plan_pass(
    state: ClusterState,
    dirty: set[SvcKey],
    full: bool,
    *,
    failures: ClusterFailures,
    now: datetime,
    mono_now: float,
    heartbeat_period: timedelta,
    down_grace: timedelta,
    leading_since: datetime | None = None,
    replicas: Mapping[str, Sequence[str]] | None = None,
    absent_since: Mapping[str, datetime] | None = None,
) -> tuple[ClusterPass, Writes]:
    """Plan one pass over ``state`` (no I/O): nodes, releases, then the dirty services.

    ``dirty`` is extended in place with the services the pass planned (those of touched
    releases, and failed ones whose backoff is over). Returns the pass, whose ``writes``
    hold the service and node writes, and the releases' own writes.
    """
    cluster = state.name
    dirty |= failures.due("service", mono_now)
    p = ClusterPass(state, now, heartbeat_period=heartbeat_period, down_grace=down_grace,
                    failures=failures, mono_now=mono_now, leading_since=leading_since, replicas=replicas,
                    absent_since=absent_since)
    p.report_undecodable()
    plan_nodes(p)
    release_writes = Writes()
    for app in plan_releases(p, release_writes):
        dirty.update(k for k in state.services if k[0] == app)
        if release_writes.has(keys.app(cluster, app)):
            p.skip_app_status.add(app)
    for app, svc in sorted(dirty - p.deferred):
        plan_service(p, app, svc)
        # A big pass is CPU work: let the dispatcher, heartbeats and the leader lease
        # keepalive run between services instead of stalling for the whole pass.
        await asyncio.sleep(0)
    finish_apps(p, {a for a, _ in dirty} | (set(state.apps) if full else set()))
    p.subnets.release_unused(p.writes, p.overlay, full=full)
    return p, release_writes
