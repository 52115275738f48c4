"""``plan_update``: what an application update does to its services, and the release it starts.

The pure half of ``UpdateApplication`` and ``RollbackApplication``: given the application as
resolved (its new revision), the services stored now, the template's parsed services and the
latest release, decide which services are created, changed (with their next generation) or
removed, and, when a running service's spec changed, the new Release: its strategy, canary
defaults, number, and the in-progress release it supersedes. The API servicer
(:mod:`controlplane.api.app_update`) reads the inputs and writes the result in one guarded
etcd transaction; nothing here reads a clock, an id generator or the store, so it is tested
with tables of cases (``tests/unit/test_release_update.py``).

Why here and not in the API: the release planner depends on what this decides. A release bumps
every changed service to ``max(generation, last_generation) + 1``, and :func:`.model.is_new`
reads exactly that to tell the release's containers from the old ones; the strategy rule
(:func:`.model.strategy_for`) is the one the planner's ``spec.strategy`` must satisfy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import resources_pb2 as pb

from .model import CANARY, TERMINAL, strategy_for

DEFAULT_CANARY_REPLICAS = 1
DEFAULT_CANARY_STEPS = (
    pb.CanaryStep(weight=10, pause_ms=30_000),
    pb.CanaryStep(weight=50, pause_ms=30_000),
    pb.CanaryStep(weight=100),
)
"""What ``ccs app update --strategy canary`` does without ``--steps`` (see the README)."""
DEFAULT_CANARY_ANALYSIS = pb.CanaryAnalysis(max_5xx_ratio=0.05, min_requests=20)


@dataclass
class ReleaseOptions:
    """What the request asks of the release (flags of ``ccs app update`` / ``app rollback``).

    The API checks them first (``api.release_options``: canary options need the canary
    strategy, steps end at 100%, ...); an empty value means "the default".
    """

    strategy: str = ""
    canary_replicas: int = 0
    canary_steps: Sequence[pb.CanaryStep] = ()
    canary_analysis: pb.CanaryAnalysis | None = None
    match_header: str = ""
    match_cookie: str = ""
    match_value: str = ""
    is_rollback: bool = False
    rolling: pb.UpdateConfig | None = None


@dataclass
class UpdatePlan:
    """The effect of an update, for the API to write in one transaction.

    ``created``: the specs of services new in the template (the API makes their records);
    ``changed``: updated copies of the stored services, to be written guarded by their
    ``meta.resource_version``; ``removed``: stored services gone from the template;
    ``recertified``: updated copies of stored services whose spec changed only in its routes'
    certificates (``routes[].tls``), at the same generation and with no release: the routers
    replace a certificate without touching a container, so rolling the containers for it would
    be work (and risk) for nothing; ``release``: the new Release (``meta`` holds only its name),
    or None when no running service changed otherwise; ``superseded``: the release it
    replaces, updated; ``summary``: one ``+name``/``~name``/``-name`` per service, for the event.
    """

    created: dict[str, pb.ServiceSpec] = field(default_factory=dict)
    changed: list[pb.Service] = field(default_factory=list)
    recertified: list[pb.Service] = field(default_factory=list)
    removed: list[pb.Service] = field(default_factory=list)
    release: pb.Release | None = None
    superseded: pb.Release | None = None
    summary: list[str] = field(default_factory=list)


def desired_replicas(spec: pb.ServiceSpec) -> int:
    """A service's desired count before its first pass (a global service's is the scheduler's)."""
    return spec.replicas if spec.mode != pb.SERVICE_MODE_GLOBAL else 0


def plan_update(
    app: pb.Application,
    previous_spec: pb.ApplicationSpec,
    parsed: Mapping[str, pb.ServiceSpec],
    current: Sequence[pb.Service],
    latest: pb.Release | None,
    options: ReleaseOptions,
    *,
    revised: bool,
    now: Timestamp,
    release_name: Callable[[int], str],
) -> UpdatePlan:
    """Plan an update of ``app`` (already at its new revision) from ``previous_spec``.

    ``previous_spec`` is recorded in the release as given (the API passes it as records store
    it); ``revised`` says whether this update made a new revision (the spec changed), so the
    release starts from the one before. ``parsed``: the template's services in template
    order; ``current``: the stored services (not modified); ``latest``: the application's
    newest release, if any; ``now`` stamps the release's phase changes; ``release_name``
    names release number N (the store's key layout). Raises
    :class:`~.errors.ReleaseError` naming the field when no strategy can be chosen (an
    unknown one, or changed services asking for different ones).
    """
    plan = UpdatePlan()
    release_spec = _release_spec(app, previous_spec, revised, options)
    by_name = {s.meta.name: s for s in current}
    for name, spec in parsed.items():
        old = by_name.pop(name, None)
        if old is None:
            plan.created[name] = spec
            plan.summary.append(f"+{name}")
        elif old.spec != spec and only_certificates_differ(old.spec, spec):
            new = pb.Service()
            new.CopyFrom(old)
            new.spec.CopyFrom(spec)
            plan.recertified.append(new)
            plan.summary.append(f"~{name}(certificates)")
        elif old.spec != spec:
            plan.changed.append(_changed(old, spec, app.revision, release_spec))
            plan.summary.append(f"~{name}")
    for name, old in by_name.items():
        plan.removed.append(old)
        plan.summary.append(f"-{name}")
    if plan.changed:
        release_spec.strategy = strategy_for(options.strategy, plan.changed)
        _apply_options(release_spec, options)
        plan.release = _new_release(app, release_spec, latest, now, release_name)
        plan.superseded = _supersede(latest, plan.release, now)
    return plan


def only_certificates_differ(old: pb.ServiceSpec, new: pb.ServiceSpec) -> bool:
    """True when ``old`` and ``new`` differ at most in their routes' ``tls`` (which certificate
    a domain is served with, or whether it is HTTPS): a change for the routers alone."""
    a, b = pb.ServiceSpec(), pb.ServiceSpec()
    a.CopyFrom(old)
    b.CopyFrom(new)
    for route in (*a.routes, *b.routes):
        route.ClearField("tls")
    return a == b


def _release_spec(
    app: pb.Application, previous_spec: pb.ApplicationSpec, revised: bool, options: ReleaseOptions
) -> pb.ReleaseSpec:
    """The parts of the release spec known before the services are compared."""
    from_revision = app.revision - 1 if revised else app.revision
    spec = pb.ReleaseSpec(from_revision=from_revision, to_revision=app.revision, is_rollback=options.is_rollback)
    spec.previous_app_spec.CopyFrom(previous_spec)
    return spec


def _changed(old: pb.Service, spec: pb.ServiceSpec, revision: int, release_spec: pb.ReleaseSpec) -> pb.Service:
    """The service at its next generation; the release records what it was, for a rollback."""
    name = old.meta.name
    release_spec.previous_specs[name].CopyFrom(old.spec)
    release_spec.previous_generations[name] = old.generation
    release_spec.services.append(name)
    new = pb.Service()
    new.CopyFrom(old)
    new.spec.CopyFrom(spec)
    new.generation = new.last_generation = max(old.generation, old.last_generation) + 1
    new.app_revision = revision
    new.status.desired = desired_replicas(spec)
    return new


def _apply_options(spec: pb.ReleaseSpec, options: ReleaseOptions) -> None:
    """Canary defaults and the request's overrides (the API refused canary options otherwise)."""
    if spec.strategy == CANARY:
        spec.canary_replicas = options.canary_replicas or DEFAULT_CANARY_REPLICAS
        spec.steps.extend(options.canary_steps or DEFAULT_CANARY_STEPS)
        spec.analysis.CopyFrom(options.canary_analysis if options.canary_analysis is not None
                               else DEFAULT_CANARY_ANALYSIS)
        spec.match_header = options.match_header
        spec.match_cookie = options.match_cookie
        spec.match_value = options.match_value
    if options.rolling is not None:
        spec.rolling.CopyFrom(options.rolling)


def _new_release(
    app: pb.Application, spec: pb.ReleaseSpec, latest: pb.Release | None, now: Timestamp,
    release_name: Callable[[int], str],
) -> pb.Release:
    """Release number latest + 1 (numbers are never reused), PROGRESSING from ``now``."""
    number = (latest.number if latest else 0) + 1
    release = pb.Release(cluster=app.cluster, application=app.meta.name, number=number, spec=spec)
    release.meta.name = release_name(number)
    release.status.phase = pb.RELEASE_PHASE_PROGRESSING
    release.status.phase_since.CopyFrom(now)
    release.status.history.append(
        f"{spec.strategy} release of revision {app.revision} ({', '.join(spec.services)}) started")
    return release


def _supersede(latest: pb.Release | None, release: pb.Release, now: Timestamp) -> pb.Release | None:
    """A release still in progress ends SUPERSEDED: the new one starts from its target."""
    if latest is None or latest.status.phase in TERMINAL:
        return None
    old = pb.Release()
    old.CopyFrom(latest)
    old.status.phase = pb.RELEASE_PHASE_SUPERSEDED
    old.status.message = f"superseded by {release.meta.name}"
    old.status.finished_at.CopyFrom(now)
    old.status.history.append(f"superseded by {release.meta.name}")
    return old
