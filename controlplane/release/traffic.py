"""Pieces shared by the two strategies that move traffic by router weight (blue-green, canary).

The rule both must keep: **nothing is retired while traffic can still reach it**. A container is
retired only when its group's weight is already 0 in the *persisted* status (the one the routers
were given) and every router reports that table applied (``routing_applied``); its ``stop_after``
then gives in-flight requests the drain time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import is_ready, timestamp

from .config import DEFAULT_MONITOR
from .context import Context, deadline_for
from .slots import Slot, created_at, is_failed, ready_since

START_DEADLINE = deadline_for(DEFAULT_MONITOR)


def bring_up(ctx: Context, slots: list[Slot], why: str) -> tuple[int, list[str]]:
    """Create a new container beside the old one in each slot that has none.

    Returns how many of ``slots`` have a ready new container, and one problem line per slot whose
    new container failed or missed the start deadline.

    The deadline is a *progress* deadline, as Kubernetes' ``progressDeadlineSeconds``: a
    container not ready yet is late only when ``START_DEADLINE`` has passed since the latest of
    its creation, its start, and the last time another new container of these slots turned
    ready. Counting from creation alone failed a 30-replica blue-green release on two cores
    (issue 15's benchmark: "not ready after 60s" while the engine was still starting the last
    of 30 containers it had been handed at once, all healthy soon after): the side was making
    steady progress, and one engine starts containers one after another. A container that
    never turns ready while the others did still fails one deadline after the last of them.
    """
    ready = 0
    problems: list[str] = []
    progress = _last_progress(slots)
    for slot in slots:
        best = slot.best_new
        if best is None:
            ctx.create(slot, f"{slot.label}: {why}")
            ctx.wait(START_DEADLINE.total_seconds())
            continue
        if is_ready(best, slot.spec):
            ready += 1
        elif is_failed(best):
            problems.append(f"{slot.label}: {best.meta.id} failed ({best.status.message or best.status.state})")
        else:
            since = max(t for t in (created_at(best) or ctx.now, timestamp(best.status.started_at), progress)
                        if t is not None)
            if ctx.now >= since + START_DEADLINE:
                problems.append(f"{slot.label}: {best.meta.id} not ready {START_DEADLINE.seconds}s after "
                                "it was created or started, or another new container turned ready")
            else:
                ctx.wait_until(since + START_DEADLINE)
    return ready, problems


def _last_progress(slots: list[Slot]) -> datetime | None:
    """When the last new container of ``slots`` turned ready (None: none is ready yet)."""
    times = [t for slot in slots if (best := slot.best_new) is not None and is_ready(best, slot.spec)
             and (t := ready_since(best)) is not None]
    return max(times, default=None)


def retire_old(ctx: Context, reason: str) -> None:
    """Retire every container of another generation (the routers already moved traffic away)."""
    for slot in ctx.all_slots():
        for old in slot.old:
            ctx.retire(old, f"{slot.label}: {reason}")


def abort(ctx: Context, message: str) -> None:
    """Traffic back to the old side at once, services reverted; the new side goes once drained."""
    ctx.transition(pb.RELEASE_PHASE_ROLLING_BACK, message, weight=0)
    ctx.revert = True


def roll_back(ctx: Context) -> None:
    """ROLLING_BACK for blue-green and canary, after ``revert``: once weight 0 is applied
    everywhere, put a container of the (reverted) current generation in every slot that lacks one,
    and retire the abandoned generation's containers slot by slot as their replacements are ready.
    """
    if ctx.status.weight != 0:
        ctx.set_weight(0)
    if not ctx.traffic_settled():
        ctx.wait(1.0)
        return
    remaining = 0
    for slot in ctx.all_slots():
        if not slot.old:
            continue
        remaining += 1
        best = slot.best_new
        if best is None:
            ctx.create(slot, f"{slot.label}: rollback restores the previous generation")
        elif is_ready(best, slot.spec):
            for old in slot.old:
                ctx.retire(old, f"{slot.label}: rolled back")
    if remaining == 0:
        ctx.transition(pb.RELEASE_PHASE_ROLLED_BACK, ctx.status.message or "rolled back")
    else:
        ctx.wait(timedelta(seconds=5).total_seconds())
