"""The application part of a cluster pass: status from its services, and final deletion.

Run after every service of the pass was planned, so the counts are this pass's
(``ClusterPass.status_by_service``) where a service was planned, the stored ones elsewhere.

The cost is per application of the pass and its services, never the cluster's containers or the
pass's writes: a pass that touches one application of 200 must not scan 100,000 containers
(issue 15 found the set of deleted keys rebuilt per service, quadratic in the writes).
"""

from __future__ import annotations

from collections.abc import Iterable

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import SvcKey
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.store import keys


def finish_apps(p: ClusterPass, apps: Iterable[str]) -> None:
    """Write each application's status, or delete a removed one whose services are gone.

    Skips held applications (a record that does not decode) and those a release wrote.
    """
    wanted = set(apps)
    services_of: dict[str, list[SvcKey]] = {name: [] for name in wanted}
    for k in p.state.services:
        if k[0] in wanted:
            services_of[k[0]].append(k)
    for name in sorted(wanted):
        app = p.state.apps.get(name)
        if app is None or name in p.held.apps or name in p.skip_app_status:
            continue
        services = services_of[name]
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            remaining = [k for k in services if not p.writes.deletes(keys.service(p.cluster, *k))]
            if not remaining and not _has_containers(p, name):
                p.writes.delete(keys.app(p.cluster, name), app.meta.resource_version,
                                "application", name, with_prefixes=keys.owned_by_app(p.cluster, name))
                p.event("application", name, "Deleted", f"application {name} deleted")
            continue
        _write_app_status(p, app, services)


def _has_containers(p: ClusterPass, app: str) -> bool:
    """A container record of ``app`` is left, as the pass has changed them (services that left
    the template included: their records are indexed by the key's service)."""
    svcs = {k for k in p.state.by_service if k[0] == app} | {k for k in p.overlay_by_service if k[0] == app}
    return any(p.container(k) is not None for s in svcs
               for k in p.state.by_service.get(s, set()) | p.overlay_by_service.get(s, set()))


def _write_app_status(p: ClusterPass, app: pb.Application, services: list[SvcKey]) -> None:
    status = pb.ApplicationStatus()
    status.CopyFrom(app.status)
    desired = running = healthy = 0
    for k in services:
        st = p.status_by_service.get(k) or p.state.services[k].status
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
        p.writes.put(keys.app(p.cluster, app.meta.name), updated, app.meta.resource_version,
                     "application", app.meta.name)
