"""Changing an application: new services, changed services with a release, removed services.

One etcd transaction writes the application, every service change, the revision
snapshot (for ``ccs app rollback``) and, when a running service's spec changed, a new
Release that the release reconciler then drives. A release still in progress is marked
superseded in the same transaction: its target becomes the starting point of the new one.

The transaction must fit etcd's limits (``--max-txn-ops``, ``--max-request-bytes``): it is
measured before anything is sent, also for a dry run, and refused with INVALID_ARGUMENT
naming the limit. Splitting it would expose half an application (the all-or-nothing
promise of the API), so a change too large for one transaction is refused, not chunked.
The template travels at most once per write (see :mod:`controlplane.api.app_specs`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ccs.v1 import resources_pb2 as pb
from controlplane.access.gate import current_principal
from controlplane.api.app_specs import for_revision, stored, stored_app
from controlplane.api.networks import NetworkGuard, guard_networks, refusal_for
from controlplane.compose import ParsedTemplate
from controlplane.grpc_errors import InvalidArgument
from controlplane.release import ReleaseError, ReleaseOptions, UpdatePlan, desired_replicas, plan_update
from controlplane.store import NotFound, TooLarge, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, now, touch
from controlplane.store.txn import Txn

__all__ = ["ReleaseOptions", "UpdateSeen", "apply_update", "check_fits", "new_service", "snapshot"]


@dataclass(frozen=True)
class UpdateSeen:
    """What an update decided, before it writes: the application's spec before it, the services
    stored now, the template's parsed services (in template order) and the plan."""

    previous_spec: pb.ApplicationSpec
    current: Sequence[pb.Service]
    parsed: Mapping[str, pb.ServiceSpec]
    plan: UpdatePlan


def new_service(cluster: str, app: str, name: str, spec: pb.ServiceSpec, revision: int) -> pb.Service:
    svc = pb.Service(
        meta=new_meta(name),
        cluster=cluster,
        application=app,
        spec=spec,
        generation=1,
        last_generation=1,
        app_revision=revision,
    )
    svc.status.desired = desired_replicas(spec)
    return svc


def snapshot(txn: Txn, app: pb.Application, note: str) -> None:
    """The revision record ``ccs app history`` and ``ccs app rollback`` read; it names the token
    that made it (the audit log has the whole call; this is the answer to "who" at a glance)."""
    caller = current_principal()
    rev = pb.ApplicationRevision(
        meta=new_meta(f"{app.revision}"),
        revision=app.revision,
        spec=for_revision(app.spec, app.revision),
        note=note,
        author=caller.name if caller is not None else "",
    )
    txn.put(keys.revision(app.cluster, app.meta.name, app.revision), rev)


def template_digest(template: str) -> str:
    """``sha256:<hex>`` of a template's text, as ``ccs app history`` shows it (the form of a
    secret's digest), so two revisions with the same template are seen to be the same."""
    return "sha256:" + hashlib.sha256(template.encode()).hexdigest()


def check_fits(etcd: Etcd, txn: Txn, services: int) -> None:
    """Refuse a write etcd would refuse for its size, naming the limit (nothing is written)."""
    try:
        txn.check_fits(etcd)
    except TooLarge as e:
        if e.what == "operations":
            raise InvalidArgument(
                "services",
                f"{services} services: {e}. Each service is one key of the application's single "
                "transaction; split the application, or raise etcd's --max-txn-ops and start "
                "ccs-server with the same --etcd-max-txn-ops",
            ) from e
        raise InvalidArgument(
            "template",
            f"the application (its template, files and env) with its parsed services is too large to store: {e}",
        ) from e


async def apply_update(
    etcd: Etcd,
    app: pb.Application,
    previous_spec: pb.ApplicationSpec,
    parsed: ParsedTemplate,
    rv: int,
    options: ReleaseOptions,
    *,
    dry_run: bool = False,
    policy_rv: int = 0,
    networks: Sequence[NetworkGuard] = (),
    riders: Callable[[Txn], object] | None = None,
    observe: Callable[[UpdateSeen], object] | None = None,
) -> pb.Application:
    """Write ``app`` (its spec whole, as the caller resolved it) and the service changes.

    ``policy_rv``, when not 0, is the cluster record's revision the template's privileged keys
    were checked against (:mod:`controlplane.api.app_policy`); the write requires it unchanged.
    ``networks``: the cluster networks the template joins, as checked
    (:func:`controlplane.api.networks.check_external`); the write requires them unchanged.

    ``observe(UpdateSeen(...))`` is called with what was decided before anything is
    written (``ccs app diff`` reads it; :mod:`controlplane.api.app_diff`). A ``dry_run`` runs
    every check the write runs, its guards included (:meth:`Txn.check`), and writes nothing.

    Reads what the update starts from, lets :func:`~controlplane.release.plan_update` decide
    (services, generations, the release and what it supersedes), and writes that in one
    transaction guarded by the revisions it read.
    """
    cluster, name = app.cluster, app.meta.name
    current, _ = await reads.list_all(etcd, keys.services(cluster, name), pb.Service)
    releases, _ = await reads.list_all(etcd, keys.releases(cluster, name), pb.Release)
    latest = max(releases, key=lambda r: r.number) if releases else None
    revised = app.spec != previous_spec
    try:
        plan = plan_update(app, stored(previous_spec), parsed.services, current, latest, options,
                           revised=revised, now=now(), release_name=keys.release_name)
    except ReleaseError as e:
        field, _, problem = str(e).partition(": ")
        raise InvalidArgument(field, problem) from e
    txn = Txn().update(keys.app(cluster, name), stored_app(app), "application", name, rv)
    if policy_rv:
        txn.require_revision(keys.cluster(cluster), "cluster", cluster, policy_rv)
    guard_networks(txn, networks)
    if riders is not None:
        riders(txn)  # the application's own secret and config values (api.secret_refs)
    _write_plan(txn, app, plan)
    if revised:
        snapshot(txn, app, "rollback" if options.is_rollback else "update")
    record_event(txn, cluster, "application", name, "RolledBack" if options.is_rollback else "Updated",
                 _describe(app, plan))
    check_fits(etcd, txn, len(parsed.services))
    if observe is not None:
        observe(UpdateSeen(previous_spec, current, parsed.services, plan))
    try:
        if dry_run:
            await txn.check(etcd)  # every guard the real write has, evaluated; nothing written
            return app
        app.meta.resource_version = await txn.commit(etcd)
    except NotFound as exc:
        raise refusal_for(cluster, parsed, exc) or exc from None
    return app


def _write_plan(txn: Txn, app: pb.Application, plan: UpdatePlan) -> None:
    """The plan's records into ``txn``, each guarded by the revision it was read at."""
    cluster, name = app.cluster, app.meta.name
    for sname, spec in plan.created.items():
        txn.create(keys.service(cluster, name, sname), new_service(cluster, name, sname, spec, app.revision),
                   "service", sname)
    for svc in (*plan.changed, *plan.recertified):
        touch(svc.meta)
        txn.update(keys.service(cluster, name, svc.meta.name), svc, "service", svc.meta.name,
                   svc.meta.resource_version)
    for svc in plan.removed:
        key = keys.service(cluster, name, svc.meta.name)
        txn.require_revision(key, "service", svc.meta.name, svc.meta.resource_version).delete(key)
    if plan.release is not None:
        release = plan.release
        release.meta.CopyFrom(new_meta(release.meta.name))
        txn.create(keys.release(cluster, name, release.number), release, "release", release.meta.name)
    if plan.superseded is not None:
        old = plan.superseded
        txn.update(keys.release(cluster, name, old.number), old, "release", old.meta.name,
                   old.meta.resource_version)


def _describe(app: pb.Application, plan: UpdatePlan) -> str:
    """The event's message: revision, version, services changed, release started."""
    return (
        f"revision {app.revision}"
        + (f", version {app.spec.version}" if app.spec.version else "")
        + (f", services {' '.join(plan.summary)}" if plan.summary else ", services unchanged")
        + (f", {plan.release.spec.strategy} release {plan.release.meta.name}" if plan.release else "")
    )
