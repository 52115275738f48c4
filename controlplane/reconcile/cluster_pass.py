"""One reconcile pass over one cluster: what the pass has seen, written and failed so far.

The pure planners decide *what* (services in :mod:`.service_pass`, nodes in :mod:`.node_pass`,
releases in :mod:`.release_pass`), the scheduler decides *where* (:class:`ClusterView`), and
:mod:`.container_diff` turns the difference between records before and after a plan into
guarded writes. This module holds what they share: the cache (the pass reads nothing from
etcd), the overlay of containers as the pass has changed them so far (so planning a later
service sees the earlier ones' writes), the writes themselves, and the events.

A failure belongs to its object (:mod:`.containment`): planning one service or release runs
inside a savepoint (:meth:`ClusterPass.contained`), and one of :data:`PLAN_ERRORS` undoes that
object's writes and overlay, puts the message in its status, and leaves the rest of the pass
alone. An object whose record does not decode (or a service whose container record does not)
is *held*: not planned at all, since planning it from the last good copy would fight whatever
is really stored, and planning it as absent would retire its containers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey, SvcKey
from controlplane.planner import ActionEvent
from controlplane.reconcile.containment import (
    PLAN_ERRORS,
    ClusterFailures,
    Failed,
    Held,
    ObjKey,
    service_fingerprint,
    undecodable_message,
)
from controlplane.reconcile.subnets import PassSubnets
from controlplane.reconcile.writes import Writes
from controlplane.release import TERMINAL
from controlplane.scheduler import ClusterView
from controlplane.store import keys
from controlplane.store.events import new_event

log = structlog.get_logger("ccs.reconcile")


class ClusterPass:
    def __init__(
        self,
        state: ClusterState,
        now: datetime,
        *,
        heartbeat_period: timedelta,
        down_grace: timedelta,
        failures: ClusterFailures | None = None,
        mono_now: float = 0.0,
        leading_since: datetime | None = None,
        replicas: Mapping[str, Sequence[str]] | None = None,
        absent_since: Mapping[str, datetime] | None = None,
    ) -> None:
        self.state = state
        self.cluster = state.name
        self.now = now
        # ``now`` as a Timestamp once: every record the pass stamps copies it (FromDatetime per
        # record showed in issue 15's profile).
        self.now_ts = Timestamp()
        self.now_ts.FromDatetime(now)
        self.heartbeat_period = heartbeat_period
        self.down_grace = down_grace
        self.leading_since = leading_since  # silence before it is not counted (plan_node)
        # Liveness from the nodes' alive keys (node_pass): node -> when this leader saw its last
        # key go. None: judge nodes from their records' last_heartbeat (unit tests of the timeline).
        self.absent_since = absent_since
        self.writes = Writes(tolerate_conflicts=True)
        self.skip_app_status: set[str] = set()
        self.requeue: list[float] = []
        self.service_requeue: dict[SvcKey, float] = {}
        # Services not planned in this pass: the node part gave some of their containers up, and
        # their replacements wait until that fencing has committed (see node_pass).
        self.deferred: set[SvcKey] = set()
        # Containers as this pass has changed them so far (planning later services sees it).
        self.overlay: dict[CtrKey, pb.Container | None] = {}
        self.overlay_by_service: dict[SvcKey, set[CtrKey]] = {}
        self._view: ClusterView | None = None
        self.by_id = state.by_id  # read only: the informer keeps it per change
        self.status_by_service: dict[SvcKey, pb.ServiceStatus] = {}
        # Containment: what failed in this pass, what was planned, what is held.
        self.failures = failures if failures is not None else ClusterFailures()
        self.mono_now = mono_now
        self.failed: dict[ObjKey, Failed] = {}
        self.succeeded: set[ObjKey] = set()
        self.reported_undecodable: set[tuple[str, int]] = set()
        self._overlay_journal: list[tuple[CtrKey, bool, pb.Container | None, bool]] | None = None
        self.held = Held.of(state)
        self.subnets = PassSubnets(state, self.container, self._expected_per_node, replicas)

    @property
    def view(self) -> ClusterView:
        """The scheduler's snapshot, built on first use: from the informer's per-change sums,
        O(nodes), not O(containers) (scheduler.usage); a pass that places nothing and reads no
        eligibility does not build it at all."""
        if self._view is None:
            self._view = ClusterView(self.state.nodes.values(), usage=self.state.usage)
        return self._view

    # ------------------------------------------------------------------ containers
    def container(self, key: CtrKey) -> pb.Container | None:
        if key in self.overlay:
            return self.overlay[key]
        return self.state.containers.get(key)

    def containers_of(self, app: str, svc: str) -> list[pb.Container]:
        keys_ = set(self.state.by_service.get((app, svc), ()))
        keys_ |= self.overlay_by_service.get((app, svc), set())
        out = []
        for k in sorted(keys_):
            c = self.container(k)
            if c is not None:
                out.append(c)
        return out

    def _remember_overlay(self, key: CtrKey) -> None:
        if self._overlay_journal is not None:
            svc = self.overlay_by_service.get((key[0], key[1]), set())
            self._overlay_journal.append((key, key in self.overlay, self.overlay.get(key), key in svc))

    def put_container(self, key: CtrKey, c: pb.Container, writes: Writes) -> None:
        """Write ``c`` at ``key`` into ``writes`` (the pass's own, or a release's), guarded by the
        cached record; later planning in the pass sees it."""
        if keys.container(self.cluster, *key) in self.state.undecodable:
            return  # held: a write guarded by the last good copy could only conflict
        orig = self.state.containers.get(key)
        self._remember_overlay(key)
        self.overlay[key] = c
        self.overlay_by_service.setdefault((key[0], key[1]), set()).add(key)
        writes.put(keys.container(self.cluster, *key), c, orig.meta.resource_version if orig else 0,
                   "container", key[2], needs=self.subnets.needs_of(c))

    def delete_container(self, key: CtrKey, writes: Writes) -> None:
        if keys.container(self.cluster, *key) in self.state.undecodable:
            return
        orig = self.state.containers.get(key)
        self._remember_overlay(key)
        self.overlay[key] = None
        if orig is not None:
            writes.delete(keys.container(self.cluster, *key), orig.meta.resource_version, "container", key[2])

    def _expected_per_node(self, app: str) -> int:
        """Containers of ``app`` one node holds when its services spread evenly (subnet sizing)."""
        total = 0
        for (a, _), service in self.state.services.items():
            if a != app:
                continue
            if service.spec.mode == pb.SERVICE_MODE_GLOBAL:
                total += 1
            else:
                nodes = max(1, len(self.view.eligible_nodes(service.spec)[0]))
                total += -(-service.spec.replicas // nodes)
        return total

    # ------------------------------------------------------------------ events
    def event(self, kind: str, obj: str, reason: str, message: str, warning: bool = False) -> None:
        """An event of the pass as a whole (it commits with the pass's first transaction)."""
        self.writes.event(*new_event(self.cluster, kind, obj, reason, message, warning=warning))

    def event_with(self, writes: Writes, write_key: str, kind: str, obj: str, reason: str, message: str,
                   warning: bool = False) -> None:
        """An event that tells of the pending write of ``write_key`` in ``writes``: it commits in
        that write's transaction or not at all (no write pending: nothing happened, nothing told)."""
        writes.event_with(write_key, *new_event(self.cluster, kind, obj, reason, message, warning=warning))

    def container_event(self, key: CtrKey, ev: ActionEvent, writes: Writes) -> None:
        """Record what a planner's action did to the container at ``key``, with its reason. An
        event ``about`` another container of the service (the unhealthy one a start-first
        replacement is created for) is that one's, names the new one, and still commits with
        the write at ``key``."""
        obj, message = key, ev.message
        if ev.about and ev.about != key[2]:
            obj, message = (key[0], key[1], ev.about), f"{ev.message} (new container {key[2]})"
        self.event_with(writes, keys.container(self.cluster, *key), "container", "/".join(obj),
                        ev.reason, message, ev.warning)

    # ------------------------------------------------------------------ containment
    def contained(self, obj: ObjKey, fingerprint: Callable[[], bytes], plan: Callable[[], None],
                  *extra: Writes) -> str | None:
        """Run ``plan`` for one object; on a planning error undo its writes and return why.

        ``extra`` are other write sets the object's planning may add to (a release's own
        transaction). The scheduler view needs no undo: it raises before it places anything.
        """
        marks = [(w, w.savepoint()) for w in (self.writes, *extra)]
        self._overlay_journal = []
        try:
            plan()
        except PLAN_ERRORS as e:
            for w, mark in marks:
                w.rollback(mark)
            for key, had, value, in_svc in reversed(self._overlay_journal):
                if had:
                    self.overlay[key] = value
                else:
                    self.overlay.pop(key, None)
                if not in_svc:
                    self.overlay_by_service.get((key[0], key[1]), set()).discard(key)
            message = f"cannot plan: {e}"
            self.failed[obj] = Failed(message, fingerprint())
            log.warning("planning failed; backing off", cluster=self.cluster, kind=obj[0],
                        object=f"{obj[1]}/{obj[2]}", error=message,
                        attempt=self.failures.attempts(obj) + 1)
            return message
        finally:
            self._overlay_journal = None
        self.succeeded.add(obj)
        return None

    def report(self, obj: ObjKey, message: str, stored_message: str | None) -> bool:
        """Write a warning event for a failure unless it was already reported; True if written."""
        if stored_message == message or self.failures.was_reported(obj, message):
            return False
        self.event(obj[0], f"{obj[1]}/{obj[2]}", "PlanFailed", message, warning=True)
        return True

    def report_undecodable(self) -> None:
        """One warning event per record that does not decode (per stored version of it)."""
        for key, bad in sorted(self.state.undecodable.items()):
            if not self.failures.undecodable_reported(key, bad.mod_revision):
                self.event(bad.kind, "/".join(bad.path), "Undecodable", undecodable_message(bad),
                           warning=True)
                self.reported_undecodable.add((key, bad.mod_revision))

    def record_outcome(self) -> None:
        """Once the pass has committed: failures back off, successes and reports are remembered."""
        self.failures.record(
            self.mono_now, failed=self.failed, succeeded=self.succeeded,
            undecodable=self.reported_undecodable,
            live_undecodable={(k, bad.mod_revision) for k, bad in self.state.undecodable.items()},
            active_releases={("release", app, r.meta.name) for app in self.state.apps
                             if (r := self.state.latest_release(app)) is not None
                             and r.status.phase not in TERMINAL},
        )

    def service_blocked(self, app: str, svc: str) -> bool:
        """Held (a record does not decode) or waiting out its backoff."""
        if app in self.held.apps or (app, svc) in self.held.services:
            return True
        obj: ObjKey = ("service", app, svc)
        return self.failures.failing(obj) and self.failures.blocked(
            obj, service_fingerprint(self.state, app, svc), self.mono_now)
