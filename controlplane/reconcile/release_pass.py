"""The release part of a cluster pass: plan each active release and write its effects.

A release's status, the containers it creates or retires and (on rollback) the reverted
services go into one etcd transaction, so a crash can never leave a release that believes
it moved traffic or retired containers that it did not. The planner is pure
(:mod:`controlplane.release`); this module maps its actions to records.

Each release is planned inside a savepoint (:meth:`ClusterPass.contained`): a release whose
planning raises is undone alone, its status carries the message, and it backs off on its
own while other applications' releases go on. An application with a record that does not
decode has its releases held.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import Action, CreateContainer, SetDesired
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.container_diff import apply_plan, write_diff
from controlplane.reconcile.containment import ObjKey, release_fingerprint
from controlplane.reconcile.writes import Writes
from controlplane.release import TERMINAL, Retire, plan_release, release_stats
from controlplane.routing import routing_table
from controlplane.store import keys


def current_routing(p: ClusterPass) -> pb.RoutingTable:
    state = p.state
    latest = {app: state.latest_release(app) for app in state.apps}
    return routing_table(state.name, state.services, state.containers.values(), latest)


def routing_applied(p: ClusterPass, table: pb.RoutingTable) -> bool:
    """Every ready node with a router reports the current table (nodes without one don't count)."""
    for name, node in p.state.nodes.items():
        if node.status.state != pb.NODE_STATE_READY:
            continue
        stats = p.state.router_stats.get(name)
        if stats is None or stats.routing_version == 0:
            continue
        if stats.routing_version != table.version:
            return False
    return True


def plan_releases(p: ClusterPass, writes: Writes) -> set[str]:
    """Plan every active release; return the applications touched."""
    state = p.state
    active = [r for app in sorted(state.apps) if (r := state.latest_release(app)) is not None
              and r.status.phase not in TERMINAL]
    if not active:
        return set()
    table = current_routing(p)
    applied = routing_applied(p, table)
    touched = set()
    for release in active:
        app_name = release.application
        if app_name in p.held.releases or app_name in p.held.apps:
            continue
        obj: ObjKey = ("release", app_name, release.meta.name)
        if p.failures.failing(obj) and p.failures.blocked(obj, release_fingerprint(release), p.mono_now):
            continue
        message = p.contained(obj, functools.partial(release_fingerprint, release),
                              functools.partial(_plan_one, p, writes, release, applied), writes)
        if message is not None:
            _report(p, writes, obj, release, message)
            continue
        touched.add(app_name)
    return touched


def _report(p: ClusterPass, writes: Writes, obj: ObjKey, release: pb.Release, message: str) -> None:
    p.report(obj, message, release.status.message)
    if release.status.message != message:
        updated = pb.Release()
        updated.CopyFrom(release)
        updated.status.message = message
        writes.put(keys.release(p.cluster, release.application, release.number), updated,
                   release.meta.resource_version, "release", release.meta.name)


def _plan_one(p: ClusterPass, writes: Writes, release: pb.Release, applied: bool) -> None:
    state = p.state
    app_name = release.application
    app = state.apps[app_name]
    services = {s: svc for (a, s), svc in state.services.items() if a == app_name}
    containers = {s: p.containers_of(app_name, s) for s in services}
    all_containers = [c for cs in containers.values() for c in cs]
    stats = release_stats(release, all_containers, state.router_stats.values())
    plan = plan_release(release, app, services, containers, stats, applied, p.now)
    _apply(p, writes, release, services, plan.actions)
    if plan.revert:
        _revert(p, writes, release, app, services)
    if plan.status != release.status:
        updated = pb.Release()
        updated.CopyFrom(release)
        updated.status.CopyFrom(plan.status)
        key = keys.release(p.cluster, app_name, release.number)
        writes.put(key, updated, release.meta.resource_version, "release", release.meta.name)
        if plan.status.phase != release.status.phase:
            p.event_with(writes, key, "release", f"{app_name}/{release.meta.name}", "Phase",
                         plan.status.history[-1] if plan.status.history else plan.status.message,
                         warning=plan.status.phase in (pb.RELEASE_PHASE_ROLLING_BACK, pb.RELEASE_PHASE_FAILED))
    if plan.requeue_after is not None:
        p.requeue.append(plan.requeue_after)


def _apply(
    p: ClusterPass, writes: Writes, release: pb.Release, services: dict[str, pb.Service],
    actions: tuple[object, ...],
) -> None:
    by_service: dict[str, list[object]] = {}
    for a in actions:
        if isinstance(a, CreateContainer):
            by_service.setdefault(a.service, []).append(a)
        elif isinstance(a, Retire):
            key = p.by_id.get(a.container)
            if key is not None:
                by_service.setdefault(key[1], []).append(a)
    for svc_name, acts in by_service.items():
        service = services.get(svc_name)
        if service is None:
            continue
        records = p.containers_of(release.application, svc_name)
        retire = {a.container: a for a in acts if isinstance(a, Retire)}
        planner_actions: list[Action] = [
            a if isinstance(a, CreateContainer)
            else SetDesired(a.container, pb.DESIRED_STATE_REMOVED, a.reason)  # type: ignore[attr-defined]
            for a in acts]
        after, why = apply_plan(p, records, planner_actions, service)
        for c in after:
            r = retire.get(c.meta.id)
            if r is not None and not c.HasField("stop_after"):
                c.stop_after.FromDatetime(p.now + timedelta(seconds=r.drain_seconds))
        write_diff(p, writes, release.application, svc_name, service, records, after, why)


def _revert(
    p: ClusterPass, writes: Writes, release: pb.Release, app: pb.Application, services: dict[str, pb.Service]
) -> None:
    spec = release.spec
    reverted = False
    for name in spec.services:
        service = services.get(name)
        if service is None:
            continue
        key = keys.service(p.cluster, release.application, name)
        if name not in spec.previous_specs:  # added by the release: remove it
            writes.delete(key, service.meta.resource_version, "service", name)
            reverted = True
            continue
        if service.generation == spec.previous_generations[name] and service.spec == spec.previous_specs[name]:
            continue
        updated = pb.Service()
        updated.CopyFrom(service)
        updated.spec.CopyFrom(spec.previous_specs[name])
        updated.generation = spec.previous_generations[name]
        updated.last_generation = max(service.last_generation, service.generation)
        updated.app_revision = spec.from_revision
        writes.put(key, updated, service.meta.resource_version, "service", name)
        reverted = True
    if reverted and spec.HasField("previous_app_spec"):
        restored = pb.Application()
        restored.CopyFrom(app)
        desired = restored.spec.desired_state
        restored.spec.CopyFrom(spec.previous_app_spec)
        restored.spec.desired_state = desired
        restored.revision += 1
        snap = pb.ApplicationRevision(revision=restored.revision, spec=restored.spec,
                                      note=f"automatic rollback of revision {spec.to_revision} "
                                           f"({release.meta.name})")
        snap.meta.name = str(restored.revision)
        writes.put(keys.app(p.cluster, app.meta.name), restored, app.meta.resource_version, "application",
                   app.meta.name)
        writes.event(keys.revision(p.cluster, app.meta.name, restored.revision), snap)
