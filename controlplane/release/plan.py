"""``plan_release``: one pure pass over one release. See the package docstring for the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import require_aware

from . import bluegreen, canary, rolling, traffic
from .context import Context
from .errors import ReleaseError
from .model import BLUE_GREEN, CANARY, ROLLING, STRATEGIES, TERMINAL, ReleasePlan, ReleaseStats


def plan_release(
    release: pb.Release,
    app: pb.Application,
    services: Mapping[str, pb.Service],
    containers: Mapping[str, Sequence[pb.Container]],
    stats: ReleaseStats,
    routing_applied: bool,
    now: datetime,
) -> ReleasePlan:
    """Plan one pass of ``release``.

    ``services``: the application's services by name, as stored now (after any earlier revert).
    ``containers``: every container record of those services by service name, all generations.
    ``stats``: from :func:`release_stats`. ``routing_applied``: every ready node's router reports
    the routing table built from the *stored* release status. ``now``: timezone-aware.
    The returned status has every operator request consumed. Raises ``ReleaseError`` for input
    that cannot be planned (unknown strategy, a canary step above 100%, ...).
    """
    require_aware(now)
    strategy = release.spec.strategy or ROLLING
    if strategy not in STRATEGIES:
        raise ReleaseError(f"spec.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == CANARY:
        canary.validate(release)
    ctx = Context(release, app, services, containers, stats, routing_applied, now)
    requests = list(release.status.requests)
    if ctx.phase in TERMINAL:
        for r in requests:
            ctx.note(f"request {r!r} ignored: the release is finished")
        return ReleasePlan((), ctx.status)
    if app.spec.desired_state in (pb.DESIRED_STATE_STOPPED, pb.DESIRED_STATE_REMOVED):
        ctx.status.requests.extend(requests)
        ctx.status.message = "the application is stopped; the release waits for it to start"
        return ReleasePlan((), ctx.status)
    if ctx.phase == pb.RELEASE_PHASE_UNSPECIFIED:
        ctx.transition(pb.RELEASE_PHASE_PROGRESSING, f"{strategy} release started")
    for r in requests:
        why = _handle(ctx, strategy, r)
        if why is not None:
            ctx.note(f"request {r!r} ignored: {why}")
        else:
            ctx.note(f"request {r!r} accepted")
    _run(ctx, strategy)
    done = ctx.phase in TERMINAL
    return ReleasePlan(
        actions=tuple(ctx.actions),
        status=ctx.status,
        revert=ctx.revert,
        requeue_after=None if done or not ctx.waits else min(ctx.waits),
    )


def _handle(ctx: Context, strategy: str, request: str) -> str | None:
    if ctx.phase in TERMINAL:
        return "the release is finished"
    if ctx.phase == pb.RELEASE_PHASE_ROLLING_BACK:
        return "the release is already rolling back"
    if strategy == BLUE_GREEN:
        return bluegreen.handle_request(ctx, request)
    if strategy == CANARY:
        return canary.handle_request(ctx, request)
    if request in ("rollback", "abort"):
        ctx.transition(pb.RELEASE_PHASE_ROLLING_BACK, f"{request} requested by the operator", step=0)
        ctx.revert = True
        return None
    if request in ("resume", "promote"):
        if ctx.phase != pb.RELEASE_PHASE_PAUSED:
            return "only valid while PAUSED"
        rolling.resume(ctx)
        ctx.transition(pb.RELEASE_PHASE_PROGRESSING, f"{request}d by the operator: retrying")
        return None
    return "not a rolling request (resume, rollback)"


def _run(ctx: Context, strategy: str) -> None:
    if ctx.phase in TERMINAL:
        return
    if ctx.phase == pb.RELEASE_PHASE_ROLLING_BACK:
        if not _reverted(ctx):
            ctx.revert = True
            ctx.wait(1.0)
            return
        if strategy == ROLLING:
            rolling.run(ctx, rollback=True)
        else:
            traffic.roll_back(ctx)
    elif strategy == ROLLING:
        rolling.run(ctx, rollback=False)
    elif strategy == BLUE_GREEN:
        bluegreen.run(ctx)
    else:
        canary.run(ctx)
    if strategy == ROLLING or ctx.phase == pb.RELEASE_PHASE_ROLLING_BACK:
        slots = ctx.all_slots()
        ctx.status.total = len(slots)
        ctx.status.updated = sum(1 for s in slots if s.new_ready and not s.live_old)


def _reverted(ctx: Context) -> bool:
    """Whether the applier has put every changed service back to its previous generation."""
    prev = ctx.release.spec.previous_generations
    return all(
        ctx.services[s].generation == prev[s]
        for s in ctx.release.spec.services
        if s in prev and s in ctx.services
    )
