"""Rolling updates (and the rolling rollback): a sliding window of ``parallelism`` slots per service.

Swarm's updater runs ``parallelism`` workers, and each takes the next slot as soon as its own is
done. ccs does the same: a slot starts as soon as fewer than ``parallelism`` slots of its service
are in the window. An earlier version ran fixed batches, and each batch waited for its slowest
container. On a busy host the start-to-healthy times spread from 1 to 4 s, so batches cost about
half the update time (see the README's figures).

State kept in the Release, so that a control-plane restart resumes mid-update:

* ``status.updating`` holds the labels of the slots in the window: started, not settled or failed yet;
* ``status.failed_containers`` and ``status.failures`` hold the new containers whose failure was
  counted, so each failure is counted once, whichever pass sees it first;
* ``status.step`` / ``status.slots`` (slots no longer waiting / all slots) report progress only.

Everything else is read back from the containers. A slot is

* **waiting** when a live old container has no new one beside it;
* **in the window** from its start until it is *settled*: its new container is ready (HEALTHY, or
  RUNNING without a health check) and the old one is retired. Start-first creates the new container
  beside the old one and retires the old one once the new is ready. Stop-first retires the old
  container first and creates the new one once the old one is observed stopped;
* **failed** when, while in the window, its new container dies, or is not ready by the progress
  deadline (max(60 s, 10 x monitor) after it was created; for stop-first, the old container must also
  stop within it). A settled slot also fails when its new container dies within ``monitor`` of
  starting. As in Swarm, ``monitor`` does not hold the window, and the release is only declared done
  once the last slot has been watched for ``monitor``.

``delay`` keeps a worker busy for that long after its slot's container became ready (Swarm's
per-worker delay). The failures seen in one pass are acted on together:

* tolerated (``continue``, or failures/total <= ``max_failure_ratio``): the old container of a failed
  slot is retired, and the slot is left to the restart policy, as Swarm continues;
* ``pause``: PAUSED. ``resume``/``promote`` replaces the new containers that are not ready, and their
  slots wait for their turn again;
* ``rollback``: ROLLING_BACK with ``revert``. Once the services are reverted, the same window puts the
  previous generation back. Failures then always continue.

Each changed service has its own window. This matches Swarm, where every service updates
independently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from ccs.container_states import TERMINAL_STATES
from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import describe_exit, is_ready, timestamp

from .config import RollingConfig, rolling_config
from .context import Context, deadline_for
from .slots import Slot, created_at, is_failed, ready_since


@dataclass
class _View:
    """One pass's reading of the slots."""

    waiting: list[Slot] = field(default_factory=list)
    window: Counter[str] = field(default_factory=Counter)  # slots in the window, per service
    cooling: dict[str, list[datetime]] = field(default_factory=dict)  # settled, delay not over
    failed: list[tuple[Slot, str, str]] = field(default_factory=list)  # slot, key id, why


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
    ctx.status.slots = len(slots)
    if ctx.phase == pb.RELEASE_PHASE_PAUSED:
        return
    for slot in slots:
        _cutover(ctx, slot)
    view = _read(ctx, slots, cfgs)
    if view.failed and not _resolve_failures(ctx, view, cfgs, rollback, len(slots)):
        return
    _fill_windows(ctx, view, cfgs, rollback)
    ctx.status.step = len(slots) - len(view.waiting)
    if view.waiting or ctx.status.updating:
        return
    # As Swarm does, the last slots are watched for their whole monitor period before the
    # release is called done (earlier ones were watched while later ones ran).
    watched_until = _monitor_end(slots, cfgs)
    if watched_until is not None and ctx.now < watched_until:
        ctx.wait_until(watched_until)
        return
    if rollback:
        ctx.transition(pb.RELEASE_PHASE_ROLLED_BACK, "the previous generation is back in every slot")
    else:
        ctx.transition(pb.RELEASE_PHASE_SUCCEEDED, f"all {len(slots)} slot(s) updated")


def _cutover(ctx: Context, slot: Slot) -> None:
    """Start-first: once the slot's new container is ready, the old one leaves (drained first)."""
    best = slot.best_new
    if best is not None and is_ready(best, slot.spec):
        for old in slot.live_old:
            ctx.retire(old, f"{slot.label}: replaced by {best.meta.id}, which is ready")


def _read(ctx: Context, slots: list[Slot], cfgs: dict[str, RollingConfig]) -> _View:
    view = _View()
    updating = set(ctx.status.updating)
    counted = set(ctx.status.failed_containers)
    still: list[str] = []
    for slot in slots:
        cfg = cfgs[slot.service]
        if slot.label not in updating:
            if slot.needs_update:
                view.waiting.append(slot)
            else:
                _settled(ctx, view, slot, cfg, counted)
            continue
        best = slot.best_new
        if best is None:
            if slot.live_old and not slot.leaving:
                # Its new container was removed (resume) or the service was reverted under it.
                view.waiting.append(slot)
                continue
            if not slot.live_old and all(c.status.state in TERMINAL_STATES for c in slot.leaving):
                ctx.create(slot, f"{slot.label}: old container stopped")
            key = slot.leaving[0].meta.id if slot.leaving else slot.label
            stops = [t for c in slot.leaving if (t := timestamp(c.stop_after)) is not None]
            if _late(ctx, min(stops, default=ctx.now), cfg):
                view.failed.append((slot, key, "the old container did not stop within the progress deadline"))
                continue
        elif is_failed(best):
            view.failed.append((slot, best.meta.id, f"{best.meta.id} {describe_exit(best)}"))
            continue
        elif not is_ready(best, slot.spec):
            if _late(ctx, created_at(best) or ctx.now, cfg):
                view.failed.append((slot, best.meta.id, f"{best.meta.id} not ready within the progress deadline"))
                continue
        elif not slot.live_old:
            _settled(ctx, view, slot, cfg, counted)
            continue
        # else: ready, and its old container is retired in this pass; settled at the next.
        # (A failed slot is not kept in `still`: it leaves the window in the same write that
        # counts its failure, so it cannot be counted twice here.)
        view.window[slot.service] += 1
        still.append(slot.label)
    del ctx.status.updating[:]
    ctx.status.updating.extend(still)
    return view


def _late(ctx: Context, started: datetime, cfg: RollingConfig) -> bool:
    deadline = started + deadline_for(cfg.monitor)
    if ctx.now >= deadline:
        return True
    ctx.wait_until(deadline)
    return False


def _settled(ctx: Context, view: _View, slot: Slot, cfg: RollingConfig, counted: set[str]) -> None:
    """A slot out of the window: watch its new container for ``monitor``, and keep its worker
    busy for ``delay`` after the container became ready."""
    best = slot.best_new
    if best is None or best.meta.id in counted:
        return
    if is_failed(best):
        died = timestamp(best.status.updated_at)
        began = timestamp(best.status.started_at) or created_at(best)
        released = timestamp(ctx.release.meta.created_at)
        if died is None or began is None or (released is not None and died < released):
            return
        if died <= began + cfg.monitor:
            view.failed.append((slot, best.meta.id, f"{best.meta.id} {describe_exit(best)} within the monitor period"))
        return
    since = ready_since(best) if is_ready(best, slot.spec) else None
    if cfg.delay and since is not None and ctx.now < since + cfg.delay:
        view.cooling.setdefault(slot.service, []).append(since + cfg.delay)


def _monitor_end(slots: list[Slot], cfgs: dict[str, RollingConfig]) -> datetime | None:
    ends = []
    for slot in slots:
        best = slot.best_new
        if best is not None and is_ready(best, slot.spec):
            since = ready_since(best)
            if since is not None:
                ends.append(since + cfgs[slot.service].monitor)
    return max(ends, default=None)


def _resolve_failures(
    ctx: Context, view: _View, cfgs: dict[str, RollingConfig], rollback: bool, total: int
) -> bool:
    """Count the pass's failures and act on them. True: the window goes on."""
    ctx.status.failures += len(view.failed)
    ctx.status.failed_containers.extend(key for _, key, _ in view.failed)
    ratio = ctx.status.failures / max(total, 1)
    detail = "; ".join(f"{s.label}: {why}" for s, _, why in view.failed)
    strictest = [cfgs[s.service] for s, _, _ in view.failed]
    tolerated = rollback or all(
        c.failure_action == "continue" or ratio <= c.max_failure_ratio for c in strictest
    )
    head = f"{len(view.failed)} slot(s) failed ({detail})"
    if tolerated:
        for slot, _, _ in view.failed:
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


def _fill_windows(ctx: Context, view: _View, cfgs: dict[str, RollingConfig], rollback: bool) -> None:
    """Start waiting slots, in slot order, while their service's window has room."""
    what = "rollback" if rollback else "update"
    started: list[Slot] = []
    for service, cfg in cfgs.items():
        cooling = sorted(view.cooling.get(service, []))
        busy = view.window[service] + len(cooling)
        queue = [s for s in view.waiting if s.service == service]
        while queue and busy < cfg.parallelism:
            slot = queue.pop(0)
            busy += 1
            started.append(slot)
            if cfg.order == "start-first":
                ctx.create(slot, f"{slot.label}: {what} (start-first)")
            else:
                for old in slot.live_old:
                    ctx.retire(old, f"{slot.label}: {what} (stop-first)")
            ctx.status.updating.append(slot.label)
            view.window[service] += 1
        if queue and cooling:
            ctx.wait_until(cooling[0])
    if not started:
        return
    chosen = {id(s) for s in started}
    view.waiting = [s for s in view.waiting if id(s) not in chosen]
    if not ctx.status.history or " window: " not in ctx.status.history[-1]:  # once per stretch
        ctx.note(f"{what} window: {', '.join(f'{n} x{c.parallelism}' for n, c in cfgs.items())}")
    ctx.status.message = (
        f"{what}: started {', '.join(s.label for s in started)}; "
        f"{len(view.waiting)} slot(s) waiting, {sum(view.window.values())} in the window"
    )


def resume(ctx: Context) -> None:
    """Retry after a pause: new containers that are not ready leave, their slots wait again."""
    for slot in ctx.all_slots():
        if not slot.live_old:
            continue
        for c in slot.new:
            if not is_ready(c, slot.spec):
                why = "failed" if is_failed(c) else "not ready"
                ctx.retire(c, f"{slot.label}: {why}; retried after resume", drain=0.0)
