"""Blue-green: the new generation ("green") comes up beside the old at full scale with no traffic,
then the operator moves traffic with ``shift:N`` and ends with ``confirm`` or ``rollback``.

``status.step``: 0 green coming up (PROGRESSING), 1 green up (AWAITING_SHIFT), 2 confirmed and
waiting for the routers before blue is retired (PROGRESSING).

Failure policy (a judgement call, documented for users):

* a green container that fails or misses the start deadline *while green comes up* rolls the
  release back on its own: no traffic has moved yet, blue is intact, and nobody is watching;
* once AWAITING_SHIFT the operator is in charge: a failing green only updates the message (the
  routers already stop sending it traffic because it is not ready), and ``confirm`` is refused
  until every green container is ready, so confirming never leaves a slot without a container.
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb

from . import traffic
from .context import Context

STEP_UP, STEP_AWAITING, STEP_CONFIRMED = 0, 1, 2


def handle_request(ctx: Context, request: str) -> str | None:
    """Act on one operator request; return why it was ignored, or None."""
    phase = ctx.phase
    if request == "rollback":
        traffic.abort(ctx, "rollback requested: all traffic back to the previous generation")
        return None
    if phase != pb.RELEASE_PHASE_AWAITING_SHIFT:
        return "only valid once the new generation is up (AWAITING_SHIFT)"
    if request.startswith("shift:"):
        weight = _parse_weight(request)
        if weight is None:
            return "the weight must be a whole number from 0 to 100"
        ctx.set_weight(weight)
        ctx.note(f"traffic shifted: {weight}% to the new generation")
        return None
    if request == "confirm":
        slots = ctx.all_slots()
        ready, problems = traffic.bring_up(ctx, slots, "green side")
        if ready < len(slots):
            return f"only {ready}/{len(slots)} new containers are ready" + (
                f" ({'; '.join(problems)})" if problems else "")
        ctx.transition(pb.RELEASE_PHASE_PROGRESSING, "confirmed: all traffic to the new generation",
                       step=STEP_CONFIRMED, weight=100)
        return None
    return "not a blue-green request (shift:N, confirm, rollback)"


def run(ctx: Context) -> None:
    slots = ctx.all_slots()
    if ctx.phase == pb.RELEASE_PHASE_PROGRESSING and ctx.status.step == STEP_CONFIRMED:
        if ctx.traffic_settled():
            traffic.retire_old(ctx, "blue-green confirmed; traffic has left it")
            ctx.transition(pb.RELEASE_PHASE_SUCCEEDED, "confirmed; the previous generation is retired")
        else:
            ctx.wait(1.0)
        return
    ready, problems = traffic.bring_up(ctx, slots, "green side of a blue-green release")
    ctx.status.updated, ctx.status.total = ready, len(slots)
    if ctx.phase == pb.RELEASE_PHASE_PROGRESSING:
        if problems:
            traffic.abort(ctx, "the new generation did not come up: " + "; ".join(problems))
        elif ready == len(slots):
            ctx.transition(
                pb.RELEASE_PHASE_AWAITING_SHIFT,
                f"{ready} new container(s) ready with no traffic: shift, confirm or rollback",
                step=STEP_AWAITING, weight=0,
            )
    elif ctx.phase == pb.RELEASE_PHASE_AWAITING_SHIFT:
        base = f"{ready}/{len(slots)} new container(s) ready; {ctx.status.weight}% of traffic on them"
        ctx.status.message = base + (f"; problems: {'; '.join(problems)}" if problems else "")


def _parse_weight(request: str) -> int | None:
    raw = request.removeprefix("shift:").strip().removesuffix("%")
    if not raw.isdigit():
        return None
    weight = int(raw)
    return weight if 0 <= weight <= 100 else None
