"""One reconcile pass over one cluster: plan nodes and dirty services, place, write.

The pure planners decide *what* (:func:`plan_node`, :func:`plan_service`), the scheduler
decides *where* (:class:`ClusterView`), :func:`apply_actions` gives the reference meaning
of every action, and this module only diffs the records before and after and turns the
difference into guarded writes. It reads nothing from etcd: the cache is the input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.api.common import new_event
from controlplane.planner import (
    Counts,
    SetDesired,
    SetNodeState,
    apply_actions,
    count,
    plan_node,
    plan_service,
)
from controlplane.reconcile.cache import ClusterState, CtrKey, SvcKey
from controlplane.reconcile.subnets import PassSubnets
from controlplane.reconcile.writes import Writes
from controlplane.scheduler import ClusterView, ServiceRef
from controlplane.store import keys

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
    ) -> None:
        self.state = state
        self.cluster = state.name
        self.now = now
        self.heartbeat_period = heartbeat_period
        self.down_grace = down_grace
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
        self.subnets = PassSubnets(state, self.container, self._expected_per_node)

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

    def _put_container(self, key: CtrKey, c: pb.Container) -> None:
        orig = self.state.containers.get(key)
        self.overlay[key] = c
        self.overlay_by_service.setdefault((key[0], key[1]), set()).add(key)
        self._target.put(keys.container(self.cluster, *key), c,
                         orig.meta.resource_version if orig else 0, "container", key[2],
                         needs=self.subnets.needs_of(c))

    def _delete_container(self, key: CtrKey) -> None:
        orig = self.state.containers.get(key)
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

    # ------------------------------------------------------------------ nodes
    def plan_nodes(self) -> None:
        for name, node in sorted(self.state.nodes.items()):
            as_planned = pb.Node()
            as_planned.CopyFrom(node)
            as_planned.meta.id = name  # containers name their node by name
            on_node = [c for c in self.state.containers_on(name)]
            plan = plan_node(as_planned, on_node, self.now, self.heartbeat_period, self.down_grace)
            if plan.requeue_after is not None:
                self.requeue.append(plan.requeue_after)
            for action in plan.actions:
                if isinstance(action, SetNodeState) and node.status.state != action.state:
                    updated = pb.Node()
                    updated.CopyFrom(node)
                    updated.status.state = action.state
                    updated.status.message = action.message
                    self.writes.put(keys.node(self.cluster, name), updated,
                                    node.meta.resource_version, "node", name)
                    self.event("node", name, "NodeDown", action.message, warning=True)
                elif isinstance(action, SetDesired):
                    key = self.by_id.get(action.container)
                    c = self.container(key) if key else None
                    if key is not None and c is not None and c.desired_state != action.desired_state:
                        moved = pb.Container()
                        moved.CopyFrom(c)
                        moved.desired_state = action.desired_state
                        self._put_container(key, moved)

    # ------------------------------------------------------------------ services
    def _deps(self, app: str, service: pb.Service) -> dict[str, Counts]:
        deps: dict[str, Counts] = {}
        for d in service.spec.depends_on:
            other = self.state.services.get((app, d.service))
            if other is None:
                continue
            desired = self._desired(other)
            deps[d.service] = count(self.containers_of(app, d.service), desired, other.spec)
        return deps

    def _desired(self, service: pb.Service) -> int:
        if service.spec.mode == pb.SERVICE_MODE_GLOBAL:
            return len(self.view.eligible_nodes(service.spec)[0])
        return service.spec.replicas

    def plan_service(self, app_name: str, svc_name: str) -> None:
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
                            self.now, global_nodes=global_nodes, service_deleted=deleted)
        if plan.requeue_after is not None:
            self.requeue.append(plan.requeue_after)
            self.service_requeue[(app_name, svc_name)] = plan.requeue_after
        after = apply_actions(records, plan.actions, service, self.now, new_id=lambda _: uuid.uuid4().hex)
        unplaced = self._diff(app_name, svc_name, service, records, after,
                              keep_volumes=app.meta.labels.get(KEEP_VOLUMES) == "true")
        status = pb.ServiceStatus()
        status.CopyFrom(plan.status)
        if unplaced:
            status.message += f"; {len(unplaced)} unplaced: {sorted(set(unplaced.values()))[0]}"
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
                c.meta.name = container_name(svc, c.slot, c.node, cid)
                c.meta.created_at.FromDatetime(self.now)
                c.meta.updated_at.FromDatetime(self.now)
                c.cluster = self.cluster
                if c.node:  # global: pinned; if its node cannot take it now, write nothing yet
                    result = self.view.place(ref, [c.meta.name], on=c.node)
                    if c.meta.name not in result.assigned:
                        unplaced[c.meta.name] = result.unplaced.get(c.meta.name, "cannot be placed")
                        continue
                    c.status.state = pb.CONTAINER_STATE_ASSIGNED
                    c.status.updated_at.FromDatetime(self.now)
                    if self.subnets.attach(app, [c], self._target):  # the pod range is full
                        unplaced[c.meta.name] = c.status.message
                        continue
                    self._put_container((app, svc, c.meta.name), c)
                else:
                    to_place.append(c)
                continue
            changed = pb.Container()
            changed.CopyFrom(c)
            if keep_volumes and changed.desired_state == pb.DESIRED_STATE_REMOVED:
                changed.meta.labels[KEEP_VOLUMES] = "true"
            if not changed.node and changed.desired_state == pb.DESIRED_STATE_RUNNING:
                to_place.append(changed)
            elif changed != prior:
                to_write.append(changed)
        if to_place:
            to_place.sort(key=lambda c: (c.slot, c.meta.name))
            result = self.view.place(ref, [c.meta.name for c in to_place])
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
                    to_write.append(c)
        for c in self.subnets.attach(app, to_write, self._target):  # the pod range is full
            unplaced[c.meta.name] = c.status.message
        for c in to_write:
            if c.meta.id in old:
                c.meta.updated_at.FromDatetime(self.now)
            self._put_container((app, svc, c.meta.name), c)
        return unplaced

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

    # ------------------------------------------------------------------ applications
    def finish_apps(self, apps: Iterable[str]) -> None:
        for name in sorted(set(apps)):
            app = self.state.apps.get(name)
            if app is None:
                continue
            services = [k for k in self.state.services if k[0] == name]
            remaining = [k for k in services
                         if keys.service(self.cluster, *k) not in self.writes.deleted_keys()]
            has_containers = any(self.containers_of(name, s) for (_, s) in services) or any(
                k[0] == name and self.container(k) is not None for k in self.state.containers)
            if name in self.skip_app_status:
                continue
            if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
                if not remaining and not has_containers:
                    self.writes.delete(keys.app(self.cluster, name), app.meta.resource_version,
                                       "application", name)
                    self.event("application", name, "Deleted", f"application {name} deleted")
                continue
            self._write_app_status(app, services)

    def _write_app_status(self, app: pb.Application, services: list[SvcKey]) -> None:
        status = pb.ApplicationStatus()
        status.CopyFrom(app.status)
        desired = running = healthy = 0
        for k in services:
            st = self.status_by_service.get(k) or self.state.services[k].status
            desired += st.desired
            running += st.running
            healthy += st.healthy
        status.services = len(services)
        status.containers_desired, status.containers_running = desired, running
        status.containers_healthy = healthy
        if app.spec.desired_state == pb.DESIRED_STATE_STOPPED:
            status.phase = "Stopped"
        elif healthy >= desired and running >= desired:
            status.phase = "Running"
        else:
            status.phase = "Deploying"
        if status != app.status:
            updated = pb.Application()
            updated.CopyFrom(app)
            updated.status.CopyFrom(status)
            self.writes.put(keys.app(self.cluster, app.meta.name), updated, app.meta.resource_version,
                            "application", app.meta.name)


def _synthetic_service(cluster: str, app: str, name: str, records: list[pb.Container]) -> pb.Service:
    """A stand-in for a service that left the template, so its containers can be retired."""
    newest = max(records, key=lambda c: (c.spec_generation, c.meta.created_at.seconds))
    svc = pb.Service(cluster=cluster, application=app, spec=newest.spec,
                     generation=newest.spec_generation, app_revision=newest.app_revision)
    svc.meta.name = name
    return svc
