"""The application part of a cluster pass: status from its services, and final deletion.

Run after every service of the pass was planned, so the counts are this pass's
(``ClusterPass.status_by_service``) where a service was planned, the stored ones elsewhere.
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
    for name in sorted(set(apps)):
        app = p.state.apps.get(name)
        if app is None or name in p.held.apps:
            continue
        services = [k for k in p.state.services if k[0] == name]
        remaining = [k for k in services
                     if keys.service(p.cluster, *k) not in p.writes.deleted_keys()]
        has_containers = any(p.containers_of(name, s) for (_, s) in services) or any(
            k[0] == name and p.container(k) is not None for k in p.state.containers)
        if name in p.skip_app_status:
            continue
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            if not remaining and not has_containers:
                p.writes.delete(keys.app(p.cluster, name), app.meta.resource_version,
                                "application", name, with_prefixes=keys.owned_by_app(p.cluster, name))
                p.event("application", name, "Deleted", f"application {name} deleted")
            continue
        _write_app_status(p, app, services)


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
