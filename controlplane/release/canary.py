"""Canary: a few new containers beside the old, traffic moved in weighted steps under automatic
analysis, then the rest of the slots; or, for A/B, routed by a header/cookie instead of weight.

``status.step``: 0 canaries coming up; k (1..L) holding step k; L+1 completing (new containers in
every remaining slot, then weight 100, then the old side retired). A step of weight 100 (the
default last step) *is* the completion: sending all traffic to the few canaries would overload
them, so the rest of the slots come up first and only then does the weight reach 100.

A step's ``pause_ms`` is how long it is held and analysed; 0 holds until a manual ``promote``
(PAUSED). Every pass until SUCCEEDED analyses the new generation: more unhealthy or failed new
containers than ``max_unhealthy``, or a 5xx ratio above ``max_5xx_ratio`` once ``min_requests``
were served, aborts on its own: weight 0, services reverted, canaries retired once drained.
With A/B routing (``match_*`` set) the weight stays 0 (the router splits by the match) until the
completion sets 100, which also ends the match.
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import is_ready

from . import traffic
from .context import Context
from .errors import ReleaseError
from .model import is_ab
from .slots import Slot, created_at, is_unhealthy


def validate(release: pb.Release) -> None:
    spec = release.spec
    for i, step in enumerate(spec.steps):
        if step.weight > 100:
            raise ReleaseError(f"spec.steps[{i}].weight: {step.weight} is above 100 (a percentage)")
        if step.pause_ms < 0:
            raise ReleaseError(f"spec.steps[{i}].pause_ms: {step.pause_ms} is negative")
    if not 0.0 <= spec.analysis.max_5xx_ratio <= 1.0:
        raise ReleaseError(f"spec.analysis.max_5xx_ratio: {spec.analysis.max_5xx_ratio} is not between 0 and 1")


def _last_step(ctx: Context) -> int:
    """Steps walked before completion: up to (not including) the first step of weight 100."""
    for i, step in enumerate(ctx.release.spec.steps):
        if step.weight >= 100:
            return i
    return len(ctx.release.spec.steps)


def canary_slots(ctx: Context) -> list[Slot]:
    """The first ``canary_replicas`` slots (by slot number or node) of each changed service, plus any
    slot that already holds a new container."""
    n = max(ctx.release.spec.canary_replicas, 1)
    out: list[Slot] = []
    for svc in ctx.changed_services():
        slots = ctx.slots(svc)
        out.extend(s for i, s in enumerate(slots) if i < n or s.new)
    return out


def handle_request(ctx: Context, request: str) -> str | None:
    if request in ("abort", "rollback"):
        traffic.abort(ctx, f"{request} requested by the operator")
        return None
    if request in ("promote", "resume"):
        step = ctx.status.step
        if step == 0:
            return "the canaries are not ready yet"
        if step > _last_step(ctx):
            return "already completing the rollout"
        _advance(ctx, f"promoted by the operator at step {step}")
        return None
    return "not a canary request (promote, abort)"


def run(ctx: Context) -> None:
    slots = ctx.all_slots()
    ctx.status.updated = sum(1 for s in slots if s.new_ready)
    ctx.status.total = len(slots)
    problem = _analyse(ctx, slots)
    if problem:
        traffic.abort(ctx, f"analysis failed at step {ctx.status.step}: {problem}")
        return
    last = _last_step(ctx)
    step = ctx.status.step
    if step == 0:
        canaries = canary_slots(ctx)
        ready, _ = traffic.bring_up(ctx, canaries, "canary")
        if ready == len(canaries):
            _advance(ctx, f"{ready} canary container(s) ready")
    elif step <= last:
        pause = ctx.release.spec.steps[step - 1].pause_ms
        if pause == 0:
            if ctx.phase != pb.RELEASE_PHASE_PAUSED:
                ctx.transition(pb.RELEASE_PHASE_PAUSED, f"step {step}: holding until promote")
        elif ctx.elapsed() * 1000 >= pause:
            _advance(ctx, f"step {step} held {pause / 1000:g}s with healthy analysis")
        else:
            ctx.wait(pause / 1000 - ctx.elapsed())
    else:
        ready, _ = traffic.bring_up(ctx, slots, "canary rollout completes")
        if ready < len(slots):
            return
        if ctx.status.weight != 100:
            ctx.set_weight(100)
            ctx.note("every slot has a ready new container: all traffic to the new generation")
            ctx.wait(1.0)
        elif ctx.traffic_settled():
            traffic.retire_old(ctx, "canary promoted; traffic has left it")
            ctx.transition(pb.RELEASE_PHASE_SUCCEEDED, "promoted; the previous generation is retired")
        else:
            ctx.wait(1.0)


def _advance(ctx: Context, why: str) -> None:
    nxt = ctx.status.step + 1
    if nxt > _last_step(ctx):
        ctx.transition(pb.RELEASE_PHASE_PROGRESSING, f"{why}; completing the rollout", step=nxt)
        return
    weight = 0 if is_ab(ctx.release) else ctx.release.spec.steps[nxt - 1].weight
    ctx.transition(pb.RELEASE_PHASE_PROGRESSING, f"{why}; step {nxt}", step=nxt, weight=weight)


def _analyse(ctx: Context, slots: list[Slot]) -> str | None:
    """Why the new generation must be aborted, or None."""
    stats, analysis = ctx.stats, ctx.release.spec.analysis
    ctx.status.observed_requests = stats.new_requests
    ctx.status.observed_5xx_ratio = stats.new_error_ratio
    bad: list[str] = []
    for slot in slots:
        best = slot.best_new
        if best is None or is_ready(best, slot.spec):
            continue
        born = created_at(best) or ctx.now
        if is_unhealthy(best) or ctx.now >= born + traffic.START_DEADLINE:
            state = best.status.message or pb.ContainerState.Name(best.status.state)
            bad.append(f"{slot.label} ({best.meta.id}: {state})")
    if len(bad) > analysis.max_unhealthy:
        return f"{len(bad)} new container(s) unhealthy or failed, more than {analysis.max_unhealthy}: {', '.join(bad)}"
    limit = analysis.max_5xx_ratio
    if limit > 0 and stats.new_requests >= max(analysis.min_requests, 1) and stats.new_error_ratio > limit:
        return (
            f"5xx ratio {stats.new_error_ratio:.1%} over {stats.new_requests} requests exceeds {limit:.1%} "
            f"(previous generation: {stats.old_error_ratio:.1%})"
        )
    return None

