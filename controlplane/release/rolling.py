"""Rolling updates (and the rolling rollback), in batches, resumable from the records alone.

The only state kept in the Release is ``status.step`` (batches started), ``status.failures`` and
``status.phase_since`` (when the current batch started: every batch start is a transition). Which
slots belong to the current batch is read back from the cluster: a slot is in the batch when its
new container was created at or after the batch start, or (stop-first) when its old container is
on its way out and no new one exists yet. So a control-plane restart resumes mid-batch.

A batch *resolves* when each of its slots is settled (new container ready — HEALTHY, or RUNNING
without a health check — and the old one retired) or failed (dead, or not ready by the progress
deadline). As in Swarm's updater, ``monitor`` does not hold the next batch: a new container that
dies within ``monitor`` of becoming ready fails the batch that is running when it dies, and the
release is declared done only once the last batch has been watched for ``monitor``. Failures are
counted once, at resolution, together with a transition, so re-planning never counts them twice.
Then:

* tolerated (``continue``, or failures/total <= ``max_failure_ratio``): the old container of a
  failed slot is retired and the slot is left to the restart policy (as Swarm continues);
* ``pause``: PAUSED. ``resume``/``promote`` replaces the new containers that are not ready, and
  batches start again;
* ``rollback``: ROLLING_BACK with ``revert``; once the services are reverted the same batches put
  the previous generation back (failures then always continue).

Changed services advance in lockstep: batch N takes up to ``parallelism`` slots of every changed
service, and the next batch waits for the largest ``delay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import describe_exit, is_live, is_ready, timestamp

from .config import RollingConfig, rolling_config
from .context import Context, deadline_for
from .slots import Slot, created_at, is_failed, ready_since


@dataclass
class _Batch:
    pending: list[Slot] = field(default_factory=list)
    failed: list[tuple[Slot, str]] = field(default_factory=list)
    settled_at: list[datetime] = field(default_factory=list)
    todo: list[Slot] = field(default_factory=list)


def configs(ctx: Context, rollback: bool) -> dict[str, RollingConfig]:
    return {
        str(s.meta.name): rolling_config(
            str(s.meta.name), s.spec, ctx.release.spec.rolling, rollback=rollback
        )
        for s in ctx.changed_services()
    }


def run(ctx: Context, *, rollback: bool) -> None:
    """One pass of a rolling release (PROGRESSING) or of any rolling rollback (ROLLING_BACK)."""
    cfgs = configs(ctx, rollback)
    slots = ctx.all_slots()
    ctx.status.batches = max(
        (-(-sum(1 for s in slots if s.service == name) // cfg.parallelism) for name, cfg in cfgs.items()),
        default=0,
    )
    if ctx.phase == pb.RELEASE_PHASE_PAUSED:
        return
    for slot in slots:
        _cutover(ctx, slot)
    batch = _read_batch(ctx, slots, cfgs)
    _monitor_failures(ctx, slots, cfgs, batch)
    if batch.pending:
        return
    if batch.failed and not _resolve_failures(ctx, batch, cfgs, rollback, len(slots)):
        return
    if not batch.todo:
        # As Swarm does, the last batch is watched for its whole monitor period before the
        # release is called done (earlier batches were watched while later ones ran).
        watched_until = _monitor_end(slots, cfgs)
        if watched_until is not None and ctx.now < watched_until:
            ctx.wait_until(watched_until)
            return
        if rollback:
            ctx.transition(pb.RELEASE_PHASE_ROLLED_BACK, "the previous generation is back in every slot")
        else:
            ctx.transition(pb.RELEASE_PHASE_SUCCEEDED, f"all {len(slots)} slot(s) updated")
        return
    delay = max((cfgs[s.service].delay for s in batch.todo), default=timedelta(0))
    batch_end = max(batch.settled_at, default=ctx.since)
    if ctx.status.step > 0 and ctx.now < batch_end + delay:
        ctx.wait_until(batch_end + delay)
        return
    _start_batch(ctx, batch.todo, cfgs, rollback)


def _cutover(ctx: Context, slot: Slot) -> None:
    """Start-first: once the slot's new container is ready, the old one leaves (drained first)."""
    best = slot.best_new
    if best is not None and is_ready(best, slot.spec):
        for old in slot.live_old:
            ctx.retire(old, f"{slot.label}: replaced by {best.meta.id}, which is ready")


def _read_batch(ctx: Context, slots: list[Slot], cfgs: dict[str, RollingConfig]) -> _Batch:
    batch = _Batch()
    start = ctx.since
    monitor = max((c.monitor for c in cfgs.values()), default=timedelta(0))
    deadline = start + deadline_for(monitor)
    for slot in slots:
        best = slot.best_new
        born = created_at(best) if best is not None else None
        in_batch = ctx.status.step > 0 and (
            (best is not None and born is not None and born >= start)
            or (best is None and bool(slot.leaving) and not slot.live_old)
        )
        if not in_batch:
            if slot.needs_update:
                batch.todo.append(slot)
            continue
        if best is None:
            if slot.old_stopped:
                ctx.create(slot, f"{slot.label}: old container stopped (stop-first)")
            _pending_or_late(ctx, batch, slot, deadline, "old container did not stop")
        elif is_failed(best):
            batch.failed.append((slot, f"{best.meta.id} {describe_exit(best)}"))
        elif not is_ready(best, slot.spec):
            _pending_or_late(ctx, batch, slot, deadline, f"{best.meta.id} not ready")
        elif slot.live_old:
            batch.pending.append(slot)  # cut over in this pass; settled at the next
        else:
            # Ready and cut over: the next batch may start. The monitor period runs on in
            # the background (see _monitor_failures), as in Swarm's updater.
            batch.settled_at.append(ready_since(best) or ctx.now)
    return batch


def _monitor_failures(ctx: Context, slots: list[Slot], cfgs: dict[str, RollingConfig], batch: _Batch) -> None:
    """Slots of earlier batches whose new container died within ``monitor`` of becoming ready,
    during the current batch, fail with it. Each death is counted by the batch it happened in."""
    if ctx.status.step <= 1:
        return
    current = {id(s) for s in batch.pending} | {id(s) for s, _ in batch.failed}
    for slot in slots:
        if id(slot) in current or slot.live_old or not slot.new:
            continue
        best = slot.best_new
        if best is None or not is_failed(best):
            continue
        died = timestamp(best.status.updated_at)
        born = created_at(best)
        if died is None or born is None or born >= ctx.since or died <= ctx.since:
            continue
        became_ready = timestamp(best.status.started_at) or born
        if died <= became_ready + cfgs[slot.service].monitor:
            batch.failed.append((slot, f"{best.meta.id} {describe_exit(best)} within the monitor period"))


def _monitor_end(slots: list[Slot], cfgs: dict[str, RollingConfig]) -> datetime | None:
    ends = []
    for slot in slots:
        best = slot.best_new
        if best is not None and is_ready(best, slot.spec):
            since = ready_since(best)
            if since is not None:
                ends.append(since + cfgs[slot.service].monitor)
    return max(ends, default=None)


def _pending_or_late(ctx: Context, batch: _Batch, slot: Slot, deadline: datetime, why: str) -> None:
    if ctx.now >= deadline:
        batch.failed.append((slot, f"{why} within the progress deadline"))
    else:
        ctx.wait_until(deadline)
        batch.pending.append(slot)


def _resolve_failures(
    ctx: Context, batch: _Batch, cfgs: dict[str, RollingConfig], rollback: bool, total: int
) -> bool:
    """Count the batch's failures and act on them. True: go on with the next batch."""
    ctx.status.failures += len(batch.failed)
    ratio = ctx.status.failures / max(total, 1)
    detail = "; ".join(f"{s.label}: {why}" for s, why in batch.failed)
    strictest = [cfgs[s.service] for s, _ in batch.failed]
    tolerated = rollback or all(
        c.failure_action == "continue" or ratio <= c.max_failure_ratio for c in strictest
    )
    head = f"batch {ctx.status.step}: {len(batch.failed)} failed ({detail})"
    if tolerated:
        for slot, _ in batch.failed:
            for old in slot.live_old:
                ctx.retire(old, f"{slot.label}: update failed, continuing; the restart policy takes over")
        ctx.transition(ctx.phase, f"{head}; continuing")
        return True
    if any(c.failure_action == "rollback" for c in strictest):
        ctx.transition(pb.RELEASE_PHASE_ROLLING_BACK, f"{head}; rolling back", step=0)
        ctx.revert = True
        return False
    ctx.transition(pb.RELEASE_PHASE_PAUSED, f"{head}; paused: resume to retry, rollback to revert")
    return False


def _start_batch(ctx: Context, todo: list[Slot], cfgs: dict[str, RollingConfig], rollback: bool) -> None:
    chosen: list[Slot] = []
    taken: dict[str, int] = {}
    for slot in todo:
        if taken.get(slot.service, 0) < cfgs[slot.service].parallelism:
            taken[slot.service] = taken.get(slot.service, 0) + 1
            chosen.append(slot)
    step = ctx.status.step + 1
    what = "rollback batch" if rollback else "batch"
    ctx.transition(
        ctx.phase,
        f"{what} {step}/{max(ctx.status.batches, step)}: {', '.join(s.label for s in chosen)}",
        step=step,
    )
    for slot in chosen:
        if cfgs[slot.service].order == "start-first":
            ctx.create(slot, f"{slot.label}: {what} {step} (start-first)")
        else:
            for old in slot.live_old:
                ctx.retire(old, f"{slot.label}: {what} {step} (stop-first)")
    ctx.wait(deadline_for(max(c.monitor for c in cfgs.values())).total_seconds())


def resume(ctx: Context) -> None:
    """Retry after a pause: new containers that are not ready leave, their slots go back in line."""
    for slot in ctx.all_slots():
        if not slot.live_old:
            continue
        for c in slot.new:
            if not is_ready(c, slot.spec):
                why = "failed" if not is_live(c) else "not ready"
                ctx.retire(c, f"{slot.label}: {why}; retried after resume", drain=0.0)
