"""The service part of a cluster pass: plan one dirty service and write its effects.

:func:`~controlplane.planner.plan_service` decides (counts, restarts, the replacement of
UNHEALTHY containers, stop/start/remove, ``depends_on``), :mod:`.container_diff` writes the
containers it changed with their events, and this module feeds the planner from the pass (the
containers as the pass has changed them, the counts of the dependencies, the nodes a global
service may run on, whether an active release changes the service: the release then judges its
unhealthy containers) and writes the service's status, or deletes the service once it is
removed and has no container left.

A service that left the template is planned as a stand-in (:func:`_synthetic_service`) so its
containers are retired like any other. Planning runs contained (:meth:`ClusterPass.contained`):
a planning error is the service's alone, in its status message and one warning event.
"""

from __future__ import annotations

from ccs.labels import keeps_volumes
from ccs.v1 import resources_pb2 as pb
from controlplane.planner import Counts, PlanError, count
from controlplane.planner import plan_service as plan
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.container_diff import apply_plan, write_diff
from controlplane.reconcile.containment import PLAN_ERRORS, ObjKey, service_fingerprint
from controlplane.release import TERMINAL
from controlplane.store import keys


def plan_service(p: ClusterPass, app_name: str, svc_name: str) -> None:
    """Plan one service, contained: a planning error is this service's alone."""
    if p.service_blocked(app_name, svc_name):
        return
    obj: ObjKey = ("service", app_name, svc_name)
    message = p.contained(obj, lambda: service_fingerprint(p.state, app_name, svc_name),
                          lambda: _plan(p, app_name, svc_name))
    if message is None:
        return
    service = p.state.services.get((app_name, svc_name))
    p.report(obj, message, service.status.message if service is not None else None)
    if service is not None and service.status.message != message:
        status = pb.ServiceStatus()
        status.CopyFrom(service.status)
        status.message = message
        p.status_by_service[(app_name, svc_name)] = status
        _write_status(p, app_name, svc_name, service, status)


def _plan(p: ClusterPass, app_name: str, svc_name: str) -> None:
    app = p.state.apps.get(app_name)
    service = p.state.services.get((app_name, svc_name))
    records = p.containers_of(app_name, svc_name)
    deleted = service is None or app is None
    if service is None:
        if not records:
            return
        service = _synthetic_service(p.cluster, app_name, svc_name, records)
    if app is None:
        app = pb.Application(spec=pb.ApplicationSpec(desired_state=pb.DESIRED_STATE_REMOVED))
    spec = service.spec
    running = app.spec.desired_state in (pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_UNSPECIFIED)
    global_nodes = None
    if spec.mode == pb.SERVICE_MODE_GLOBAL and running and not deleted:
        global_nodes = [n.meta.name for n in p.view.eligible_nodes(spec)[0]]
    planned = plan(app, service, records, p.state.nodes, _deps(p, app_name, service), p.now,
                   global_nodes=global_nodes, service_deleted=deleted,
                   releasing=_releasing(p, app_name, svc_name))
    after, why = apply_plan(p, records, planned.actions, service)
    unplaced = write_diff(p, p.writes, app_name, svc_name, service, records, after, why,
                          keep_volumes=keeps_volumes(app.meta.labels))
    status = pb.ServiceStatus()
    status.CopyFrom(planned.status)
    if unplaced:
        status.message += f"; {len(unplaced)} unplaced: {sorted(set(unplaced.values()))[0]}"
    # Only now, when nothing can raise any more: a failed service leaves no trace.
    if planned.requeue_after is not None:
        p.requeue.append(planned.requeue_after)
        p.service_requeue[(app_name, svc_name)] = planned.requeue_after
    p.status_by_service[(app_name, svc_name)] = status
    if not deleted:
        _write_status(p, app_name, svc_name, service, status)
    elif planned.removable and (app_name, svc_name) in p.state.services:
        orig = p.state.services[(app_name, svc_name)]
        p.writes.delete(keys.service(p.cluster, app_name, svc_name),
                        orig.meta.resource_version, "service", svc_name)
    if planned.removable and not deleted and app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
        p.writes.delete(keys.service(p.cluster, app_name, svc_name),
                        service.meta.resource_version, "service", svc_name)


def _releasing(p: ClusterPass, app: str, svc: str) -> bool:
    """An active release of ``app`` changes ``svc``: its UNHEALTHY containers are the release's."""
    release = p.state.latest_release(app)
    return release is not None and release.status.phase not in TERMINAL and svc in release.spec.services


def _deps(p: ClusterPass, app: str, service: pb.Service) -> dict[str, Counts]:
    deps: dict[str, Counts] = {}
    for d in service.spec.depends_on:
        other = p.state.services.get((app, d.service))
        if other is None:
            continue
        try:
            desired = _desired(p, other)
        except PLAN_ERRORS as e:
            raise PlanError(f"depends_on {d.service}: {e}") from e
        deps[d.service] = count(p.containers_of(app, d.service), desired, other.spec)
    return deps


def _desired(p: ClusterPass, service: pb.Service) -> int:
    if service.spec.mode == pb.SERVICE_MODE_GLOBAL:
        return len(p.view.eligible_nodes(service.spec)[0])
    return service.spec.replicas


def _write_status(p: ClusterPass, app: str, svc: str, service: pb.Service, status: pb.ServiceStatus) -> None:
    if service.status == status:
        return
    updated = pb.Service()
    updated.CopyFrom(service)
    updated.status.CopyFrom(status)
    p.writes.put(keys.service(p.cluster, app, svc), updated, service.meta.resource_version, "service", svc)


def _synthetic_service(cluster: str, app: str, name: str, records: list[pb.Container]) -> pb.Service:
    """A stand-in for a service that left the template, so its containers can be retired."""
    newest = max(records, key=lambda c: (c.spec_generation, c.meta.created_at.seconds))
    svc = pb.Service(cluster=cluster, application=app, spec=newest.spec,
                     generation=newest.spec_generation, app_revision=newest.app_revision)
    svc.meta.name = name
    return svc
