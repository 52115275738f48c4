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

from collections.abc import Sequence
from dataclasses import dataclass, field

from ccs.v1 import resources_pb2 as pb
from controlplane.api.app_specs import for_revision, stored, stored_app
from controlplane.api.common import new_meta, now, record_event, touch
from controlplane.api.errors import InvalidArgument
from controlplane.compose import ParsedTemplate
from controlplane.store import TooLarge, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

TERMINAL = (
    pb.RELEASE_PHASE_SUCCEEDED,
    pb.RELEASE_PHASE_ROLLED_BACK,
    pb.RELEASE_PHASE_FAILED,
    pb.RELEASE_PHASE_SUPERSEDED,
)
DEFAULT_CANARY_STEPS = (
    pb.CanaryStep(weight=10, pause_ms=30_000),
    pb.CanaryStep(weight=50, pause_ms=30_000),
    pb.CanaryStep(weight=100),
)


@dataclass
class ReleaseOptions:
    strategy: str = ""
    canary_replicas: int = 0
    canary_steps: Sequence[pb.CanaryStep] = ()
    canary_analysis: pb.CanaryAnalysis | None = None
    match_header: str = ""
    match_cookie: str = ""
    match_value: str = ""
    is_rollback: bool = False
    rolling: pb.UpdateConfig | None = None
    extra: dict[str, str] = field(default_factory=dict)


def choose_strategy(requested: str, changed: Sequence[pb.Service]) -> str:
    """The flag wins; else what the template asks (x-ccs strategy, aliyun labels); else rolling."""
    if requested:
        return requested
    for svc in changed:
        if svc.spec.strategy:
            return svc.spec.strategy
    return "rolling"


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
    svc.status.desired = spec.replicas if spec.mode != pb.SERVICE_MODE_GLOBAL else 0
    return svc


def snapshot(txn: Txn, app: pb.Application, note: str) -> None:
    rev = pb.ApplicationRevision(
        meta=new_meta(f"{app.revision}"),
        revision=app.revision,
        spec=for_revision(app.spec, app.revision),
        note=note,
    )
    txn.put(keys.revision(app.cluster, app.meta.name, app.revision), rev)


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
            "template", f"the application with its parsed services is too large to store: {e}"
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
) -> pb.Application:
    """Write ``app`` (its spec whole, as the caller resolved it) and the service changes."""
    cluster, name = app.cluster, app.meta.name
    current, _ = await reads.list_all(etcd, keys.services(cluster, name), pb.Service)
    by_name = {s.meta.name: s for s in current}
    releases, _ = await reads.list_all(etcd, keys.releases(cluster, name), pb.Release)
    latest = max(releases, key=lambda r: r.number) if releases else None

    txn = Txn().update(keys.app(cluster, name), stored_app(app), "application", name, rv)
    summary: list[str] = []
    changed: list[pb.Service] = []
    from_revision = app.revision - 1 if app.spec != previous_spec else app.revision
    release_spec = pb.ReleaseSpec(
        from_revision=from_revision, to_revision=app.revision, is_rollback=options.is_rollback
    )
    release_spec.previous_app_spec.CopyFrom(stored(previous_spec))
    for sname, spec in parsed.services.items():
        key = keys.service(cluster, name, sname)
        old = by_name.pop(sname, None)
        if old is None:
            txn.create(key, new_service(cluster, name, sname, spec, app.revision), "service", sname)
            summary.append(f"+{sname}")
            continue
        if old.spec == spec:
            continue
        release_spec.previous_specs[sname].CopyFrom(old.spec)
        release_spec.previous_generations[sname] = old.generation
        release_spec.services.append(sname)
        generation = max(old.generation, old.last_generation) + 1
        old.spec.CopyFrom(spec)
        old.generation = old.last_generation = generation
        old.app_revision = app.revision
        old.status.desired = spec.replicas if spec.mode != pb.SERVICE_MODE_GLOBAL else 0
        touch(old.meta)
        txn.update(key, old, "service", sname, old.meta.resource_version)
        changed.append(old)
        summary.append(f"~{sname}")
    for sname, old in by_name.items():
        key = keys.service(cluster, name, sname)
        txn.require_revision(key, "service", sname, old.meta.resource_version).delete(key)
        summary.append(f"-{sname}")

    if app.spec != previous_spec:
        snapshot(txn, app, "rollback" if options.is_rollback else "update")
    release = None
    if changed:
        strategy = choose_strategy(options.strategy, changed)
        release_spec.strategy = strategy
        if strategy == "canary":
            release_spec.canary_replicas = options.canary_replicas or 1
            release_spec.steps.extend(options.canary_steps or DEFAULT_CANARY_STEPS)
            if options.canary_analysis is not None:
                release_spec.analysis.CopyFrom(options.canary_analysis)
            else:
                release_spec.analysis.CopyFrom(pb.CanaryAnalysis(max_5xx_ratio=0.05, min_requests=20))
            release_spec.match_header = options.match_header
            release_spec.match_cookie = options.match_cookie
            release_spec.match_value = options.match_value
        if options.rolling is not None:
            release_spec.rolling.CopyFrom(options.rolling)
        number = (latest.number if latest else 0) + 1
        release = pb.Release(
            meta=new_meta(keys.release_name(number)),
            cluster=cluster,
            application=name,
            number=number,
            spec=release_spec,
        )
        release.status.phase = pb.RELEASE_PHASE_PROGRESSING
        release.status.phase_since.CopyFrom(now())
        release.status.history.append(
            f"{strategy} release of revision {app.revision} ({', '.join(release_spec.services)}) started"
        )
        txn.create(keys.release(cluster, name, number), release, "release", release.meta.name)
        if latest is not None and latest.status.phase not in TERMINAL:
            latest.status.phase = pb.RELEASE_PHASE_SUPERSEDED
            latest.status.message = f"superseded by {release.meta.name}"
            latest.status.finished_at.CopyFrom(now())
            latest.status.history.append(f"superseded by {release.meta.name}")
            txn.update(
                keys.release(cluster, name, latest.number),
                latest,
                "release",
                latest.meta.name,
                latest.meta.resource_version,
            )
    record_event(
        txn,
        cluster,
        "application",
        name,
        "RolledBack" if options.is_rollback else "Updated",
        f"revision {app.revision}"
        + (f", version {app.spec.version}" if app.spec.version else "")
        + (f", services {' '.join(summary)}" if summary else ", services unchanged")
        + (f", {release.spec.strategy} release {release.meta.name}" if release else ""),
    )
    check_fits(etcd, txn, len(parsed.services))
    if dry_run:
        return app
    app.meta.resource_version = await txn.commit(etcd)
    return app
