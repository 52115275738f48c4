"""One reconcile pass over one cluster: plan dirty services, place, write.

The pure planners decide *what* (:func:`plan_service`; nodes in :mod:`.node_pass`), the scheduler
decides *where* (:class:`ClusterView`), :func:`apply_actions` gives the reference meaning
of every action, and this module only diffs the records before and after and turns the
difference into guarded writes. It reads nothing from etcd: the cache is the input.

A failure belongs to its object (:mod:`.containment`): planning one service runs inside a
savepoint, and one of :data:`PLAN_ERRORS` undoes that service's writes, puts the message
in its status, and leaves the rest of the pass alone. An object whose record does not
decode (or a service whose container record does not) is *held*: not planned at all,
since planning it from the last good copy would fight whatever is really stored, and
planning it as absent would retire its containers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey, SvcKey
from controlplane.planner import (
    Counts,
    CreateContainer,
    Note,
    PlanError,
    SetDesired,
    apply_actions,
    count,
    plan_service,
)
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
from controlplane.scheduler import ClusterView, ServiceRef
from controlplane.store import keys
from controlplane.store.events import new_event

log = structlog.get_logger("ccs.reconcile")

KEEP_VOLUMES = "ccs.keep-volumes"


def container_name(service: str, slot: int, node: str, cid: str) -> str:
    where = str(slot) if slot else node
    return f"{service}-{where}-{cid[:6]}"


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
    ) -> None:
        self.state = state
        self.cluster = state.name
        self.now = now
        self.heartbeat_period = heartbeat_period
        self.down_grace = down_grace
        self.leading_since = leading_since  # silence before it is not counted (plan_node)
        self.writes = Writes(tolerate_conflicts=True)
        self._target = self.writes  # where container writes go (releases use their own)
        self.skip_app_status: set[str] = set()
        self.requeue: list[float] = []
        self.service_requeue: dict[SvcKey, float] = {}
        # Containers as this pass has changed them so far (planning later services sees it).
        self.overlay: dict[CtrKey, pb.Container | None] = {}
        self.overlay_by_service: dict[SvcKey, set[CtrKey]] = {}
        self.view = ClusterView(state.nodes.values(), state.containers.values())
        self.by_id = {c.meta.id: k for k, c in state.containers.items()}
        self.status_by_service: dict[SvcKey, pb.ServiceStatus] = {}
        # Containment: what failed in this pass, what was planned, what is held.
        self.failures = failures if failures is not None else ClusterFailures()
        self.mono_now = mono_now
        self.failed: dict[ObjKey, Failed] = {}
        self.succeeded: set[ObjKey] = set()
        self.reported_undecodable: set[tuple[str, int]] = set()
        self._overlay_journal: list[tuple[CtrKey, bool, pb.Container | None, bool]] | None = None
        self.held = Held.of(state)
        self.subnets = PassSubnets(state, self.container, self._expected_per_node)
        # Container id -> the Event its write carries (set while one service's plan is written).
        self.notes: dict[str, Note] = {}

    # ------------------------------------------------------------------ helpers
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

    def put_container(self, key: CtrKey, c: pb.Container) -> None:
        """Write ``c`` at ``key``, guarded by the cached record; later planning in the pass sees it."""
        if keys.container(self.cluster, *key) in self.state.undecodable:
            return  # held: a write guarded by the last good copy could only conflict
        orig = self.state.containers.get(key)
        self._remember_overlay(key)
        self.overlay[key] = c
        self.overlay_by_service.setdefault((key[0], key[1]), set()).add(key)
        note = self.notes.pop(c.meta.id, None)
        events = () if note is None else (new_event(
            self.cluster, "container", f"{key[0]}/{key[1]}/{note.subject}", note.reason, note.message,
            warning=note.warning),)
        self._target.put(keys.container(self.cluster, *key), c,
                         orig.meta.resource_version if orig else 0, "container", key[2],
                         needs=self.subnets.needs_of(c), events=events)

    def _delete_container(self, key: CtrKey) -> None:
        if keys.container(self.cluster, *key) in self.state.undecodable:
            return
        orig = self.state.containers.get(key)
        self._remember_overlay(key)
        self.overlay[key] = None
        if orig is not None:
            self._target.delete(keys.container(self.cluster, *key), orig.meta.resource_version,
                                "container", key[2])

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

    def event(self, kind: str, obj: str, reason: str, message: str, warning: bool = False) -> None:
        self.writes.event(*new_event(self.cluster, kind, obj, reason, message, warning=warning))

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

    # ------------------------------------------------------------------ services
    def _deps(self, app: str, service: pb.Service) -> dict[str, Counts]:
        deps: dict[str, Counts] = {}
        for d in service.spec.depends_on:
            other = self.state.services.get((app, d.service))
            if other is None:
                continue
            try:
                desired = self._desired(other)
            except PLAN_ERRORS as e:
                raise PlanError(f"depends_on {d.service}: {e}") from e
            deps[d.service] = count(self.containers_of(app, d.service), desired, other.spec)
        return deps

    def _desired(self, service: pb.Service) -> int:
        if service.spec.mode == pb.SERVICE_MODE_GLOBAL:
            return len(self.view.eligible_nodes(service.spec)[0])
        return service.spec.replicas

    def plan_service(self, app_name: str, svc_name: str) -> None:
        """Plan one service, contained: a planning error is this service's alone."""
        if self.service_blocked(app_name, svc_name):
            return
        obj: ObjKey = ("service", app_name, svc_name)
        message = self.contained(obj, lambda: service_fingerprint(self.state, app_name, svc_name),
                                 lambda: self._plan_service(app_name, svc_name))
        if message is None:
            return
        service = self.state.services.get((app_name, svc_name))
        self.report(obj, message, service.status.message if service is not None else None)
        if service is not None and service.status.message != message:
            status = pb.ServiceStatus()
            status.CopyFrom(service.status)
            status.message = message
            self.status_by_service[(app_name, svc_name)] = status
            self._write_service_status(app_name, svc_name, service, status)

    def _plan_service(self, app_name: str, svc_name: str) -> None:
        app = self.state.apps.get(app_name)
        service = self.state.services.get((app_name, svc_name))
        records = self.containers_of(app_name, svc_name)
        deleted = service is None or app is None
        if service is None:
            if not records:
                return
            service = _synthetic_service(self.cluster, app_name, svc_name, records)
        if app is None:
            app = pb.Application(spec=pb.ApplicationSpec(desired_state=pb.DESIRED_STATE_REMOVED))
        spec = service.spec
        running = app.spec.desired_state in (pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_UNSPECIFIED)
        global_nodes = None
        if spec.mode == pb.SERVICE_MODE_GLOBAL and running and not deleted:
            global_nodes = [n.meta.name for n in self.view.eligible_nodes(spec)[0]]
        plan = plan_service(app, service, records, self.state.nodes, self._deps(app_name, service),
                            self.now, global_nodes=global_nodes, service_deleted=deleted,
                            releasing=self._releasing(app_name, svc_name))
        notes = {a.container: a.note for a in plan.actions if isinstance(a, SetDesired) and a.note}

        def new_id(action: CreateContainer) -> str:
            cid = uuid.uuid4().hex
            if action.note is not None:
                notes[cid] = action.note
            return cid

        after = apply_actions(records, plan.actions, service, self.now, new_id=new_id)
        self.notes = notes
        try:
            unplaced = self._diff(app_name, svc_name, service, records, after,
                                  keep_volumes=app.meta.labels.get(KEEP_VOLUMES) == "true")
        finally:
            self.notes = {}
        status = pb.ServiceStatus()
        status.CopyFrom(plan.status)
        if unplaced:
            status.message += f"; {len(unplaced)} unplaced: {sorted(set(unplaced.values()))[0]}"
        # Only now, when nothing can raise any more: a failed service leaves no trace.
        if plan.requeue_after is not None:
            self.requeue.append(plan.requeue_after)
            self.service_requeue[(app_name, svc_name)] = plan.requeue_after
        self.status_by_service[(app_name, svc_name)] = status
        if not deleted:
            self._write_service_status(app_name, svc_name, service, status)
        elif plan.removable and (app_name, svc_name) in self.state.services:
            orig = self.state.services[(app_name, svc_name)]
            self.writes.delete(keys.service(self.cluster, app_name, svc_name),
                               orig.meta.resource_version, "service", svc_name)
        if plan.removable and not deleted and app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            self.writes.delete(keys.service(self.cluster, app_name, svc_name),
                               service.meta.resource_version, "service", svc_name)

    def _releasing(self, app: str, svc: str) -> bool:
        """An active release of ``app`` changes ``svc``: its UNHEALTHY containers are the release's."""
        release = self.state.latest_release(app)
        return release is not None and release.status.phase not in TERMINAL and svc in release.spec.services

    def diff_into(
        self, writes: Writes, app: str, svc: str, service: pb.Service, before: list[pb.Container],
        after: list[pb.Container],
    ) -> dict[str, str]:
        """Like the service diff, but into ``writes`` (a release's own transaction)."""
        self._target = writes
        try:
            return self._diff(app, svc, service, before, after, keep_volumes=False)
        finally:
            self._target = self.writes

    def _diff(
        self, app: str, svc: str, service: pb.Service, before: list[pb.Container],
        after: list[pb.Container], *, keep_volumes: bool,
    ) -> dict[str, str]:
        """Write the difference; place new and still-pending containers. Returns unplaced reasons.

        Replicated containers without a node are placed in ONE scheduler call per service (in
        slot order), which is what keeps a 500-replica service from rebuilding the spread
        tree 500 times; containers pinned to a node (global mode) are checked one by one.
        """
        old = {c.meta.id: c for c in before}
        new = {c.meta.id: c for c in after}
        ref = ServiceRef(app, svc, service.spec)
        unplaced: dict[str, str] = {}
        for cid, c in old.items():
            if cid not in new:
                self._delete_container((app, svc, c.meta.name))
        to_place: list[pb.Container] = []
        to_write: list[pb.Container] = []
        for cid, c in new.items():
            prior = old.get(cid)
            if prior is None:
                self._add_new(ref, c, to_place, unplaced)
            else:
                self._sort_changed(c, prior, to_place, to_write, keep_volumes=keep_volumes)
        if to_place:
            to_write += self._place(ref, to_place, old, unplaced)
        for c in self.subnets.attach(app, to_write, self._target):  # the pod range is full
            unplaced[c.meta.name] = c.status.message
        for c in to_write:
            if c.meta.id in old:
                c.meta.updated_at.FromDatetime(self.now)
            self.put_container((app, svc, c.meta.name), c)
        return unplaced

    def _add_new(self, ref: ServiceRef, c: pb.Container, to_place: list[pb.Container],
                 unplaced: dict[str, str]) -> None:
        """Name and stamp a new container; write it now if pinned to a node, else queue it for placing."""
        app, svc = ref.application, ref.name
        c.meta.name = container_name(svc, c.slot, c.node, c.meta.id)
        c.meta.created_at.FromDatetime(self.now)
        c.meta.updated_at.FromDatetime(self.now)
        c.cluster = self.cluster
        if not c.node:
            to_place.append(c)
            return
        # Global: pinned; if its node cannot take it now, write nothing yet.
        result = self.view.place(ref, [c.meta.name], on=c.node)
        if c.meta.name not in result.assigned:
            unplaced[c.meta.name] = result.unplaced.get(c.meta.name, "cannot be placed")
            return
        c.status.state = pb.CONTAINER_STATE_ASSIGNED
        c.status.updated_at.FromDatetime(self.now)
        if self.subnets.attach(app, [c], self._target):  # the pod range is full
            unplaced[c.meta.name] = c.status.message
            return
        self.put_container((app, svc, c.meta.name), c)

    @staticmethod
    def _sort_changed(c: pb.Container, prior: pb.Container, to_place: list[pb.Container],
                      to_write: list[pb.Container], *, keep_volumes: bool) -> None:
        """An existing container: still to be placed, to be written, or unchanged."""
        changed = pb.Container()
        changed.CopyFrom(c)
        if keep_volumes and changed.desired_state == pb.DESIRED_STATE_REMOVED:
            changed.meta.labels[KEEP_VOLUMES] = "true"
        if not changed.node and changed.desired_state == pb.DESIRED_STATE_RUNNING:
            to_place.append(changed)
        elif changed != prior:
            to_write.append(changed)

    def _place(self, ref: ServiceRef, to_place: list[pb.Container], old: dict[str, pb.Container],
               unplaced: dict[str, str]) -> list[pb.Container]:
        """Place the containers without a node in one scheduler call; return those that changed."""
        to_place.sort(key=lambda c: (c.slot, c.meta.name))
        result = self.view.place(ref, [c.meta.name for c in to_place])
        changed = []
        for c in to_place:
            node = result.assigned.get(c.meta.name)
            if node is not None:
                c.node = node
                c.status.state = pb.CONTAINER_STATE_ASSIGNED
                c.status.message = ""
            else:
                c.status.state = pb.CONTAINER_STATE_PENDING
                c.status.message = result.unplaced.get(c.meta.name, "cannot be placed")
                unplaced[c.meta.name] = c.status.message
            prior = old.get(c.meta.id)
            if prior is None or c != prior:
                c.status.updated_at.FromDatetime(self.now)
                changed.append(c)
        return changed

    def _write_service_status(
        self, app: str, svc: str, service: pb.Service, status: pb.ServiceStatus
    ) -> None:
        if service.status == status:
            return
        updated = pb.Service()
        updated.CopyFrom(service)
        updated.status.CopyFrom(status)
        self.writes.put(keys.service(self.cluster, app, svc), updated, service.meta.resource_version,
                        "service", svc)

def _synthetic_service(cluster: str, app: str, name: str, records: list[pb.Container]) -> pb.Service:
    """A stand-in for a service that left the template, so its containers can be retired."""
    newest = max(records, key=lambda c: (c.spec_generation, c.meta.created_at.seconds))
    svc = pb.Service(cluster=cluster, application=app, spec=newest.spec,
                     generation=newest.spec_generation, app_revision=newest.app_revision)
    svc.meta.name = name
    return svc
