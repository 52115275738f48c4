"""Rolling updates in the simulated world: order, the sliding window, monitor, failures and their actions."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import CreateContainer
from controlplane.release import ReleaseError, Retire
from controlplane.release.config import rolling_config

from .test_release_world import World, spec


def uc(**kw: object) -> pb.UpdateConfig:
    return pb.UpdateConfig(**kw)  # type: ignore[arg-type]


def creates(world: World) -> list[tuple[int, int]]:
    """(step, slot) of every container the release planner created."""
    out = []
    for t, plan in zip(world.trace, world.plans, strict=True):
        out += [(t.step, a.slot) for a in plan.actions if isinstance(a, CreateContainer)]
    return out


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
@pytest.mark.parametrize("parallelism", [1, 2, 3])
def test_rolling_replaces_every_slot_and_succeeds(order: str, parallelism: int) -> None:
    cfg = uc(order=order, parallelism=parallelism, monitor_ms=5000)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg)).run()
    assert world.phase == "SUCCEEDED", world.dump()
    assert world.serving(2) == 3 and world.serving(1) == 0
    slots = [s for _, s in creates(world)]
    assert sorted(slots) == [1, 2, 3], "exactly one new container per slot"
    assert world.release.status.slots == world.release.status.step == 3
    assert not world.release.status.updating
    assert world.release.status.updated == world.release.status.total == 3


def test_start_first_never_drops_below_the_desired_ready_count() -> None:
    cfg = uc(order="start-first", parallelism=2)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg), ready_after=3)
    while world.phase not in ("SUCCEEDED",):
        world.step()
        assert world.serving(1) + world.serving(2) >= 3, world.dump()
        assert len(world.trace) < 100


def test_stop_first_creates_only_after_the_old_container_stopped() -> None:
    cfg = uc(order="stop-first")
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg)).run()
    retired_at = {}
    for t, plan in zip(world.trace, world.plans, strict=True):
        for a in plan.actions:
            if isinstance(a, Retire):
                retired_at[int(a.container.rsplit("-", 1)[1])] = t.step
    for step, slot in creates(world):
        assert step > retired_at[slot], world.dump()


def in_window(world: World) -> int:
    """Slots of generation 2 started and not settled: a new container not ready yet, or ready
    beside an old one that still runs."""
    out = 0
    for slot in range(1, 1 + world.services["web"].spec.replicas):
        here = [c for c in world.containers.values() if c.slot == slot
                and c.desired_state == pb.DESIRED_STATE_RUNNING]
        new = [c for c in here if c.spec_generation == 2]
        old = [c for c in here if c.spec_generation == 1]
        if new and (old or not any(c.status.state == pb.CONTAINER_STATE_RUNNING for c in new)):
            out += 1
    return out


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_a_slow_slot_does_not_hold_the_others(order: str) -> None:
    """The window slides: slot 1 takes 8 steps to get ready, the other five one step each. With
    parallelism 2, slots 2..5 at least go through the second place of the window meanwhile (in
    batches, slots 3..6 would all wait for slot 1)."""
    cfg = uc(order=order, parallelism=2, monitor_ms=1000)
    world = World.deploy("rolling", spec("v1", replicas=6), spec("v2", replicas=6, update_config=cfg),
                         ready_after=lambda c: 8 if c.slot == 1 and c.spec_generation == 2 else 1)
    world.run(until=lambda w: w.serving(2) >= 1 and all(
        c.status.state == pb.CONTAINER_STATE_RUNNING for c in w.containers.values()
        if c.spec_generation == 2 and c.slot == 1))
    assert {1, 2, 3, 4, 5} <= {s for _, s in creates(world)}, world.dump()
    world.run()
    assert world.phase == "SUCCEEDED", world.dump()
    assert world.serving(2) == 6 and world.serving(1) == 0


@pytest.mark.parametrize("parallelism", [1, 2, 4])
def test_the_window_never_holds_more_than_parallelism_slots(parallelism: int) -> None:
    cfg = uc(order="start-first", parallelism=parallelism)
    world = World.deploy("rolling", spec("v1", replicas=7), spec("v2", replicas=7, update_config=cfg),
                         ready_after=lambda c: 1 + c.slot % 3)
    seen = 0
    while world.phase != "SUCCEEDED":
        world.step()
        seen = max(seen, in_window(world))
        assert in_window(world) <= parallelism, world.dump()
        assert len(world.release.status.updating) <= parallelism, world.dump()
        assert len(world.trace) < 100
    assert seen == parallelism, "the window was filled"
    assert world.serving(2) == 7


def test_the_plan_is_the_same_when_replanned_from_the_stored_status() -> None:
    """Replanning the same records gives the same plan at every step: the window lives in the
    stored status, not in the planner (the restart itself is tested end to end, with a SIGKILL
    mid-release, in tests/integration/e2e/test_releases.py)."""
    cfg = uc(order="start-first", parallelism=2)
    world = World.deploy("rolling", spec("v1", replicas=5), spec("v2", replicas=5, update_config=cfg),
                         ready_after=lambda c: 1 + c.slot % 3)
    while world.phase != "SUCCEEDED":
        first, again = world.plan(), world.plan()
        assert first.actions == again.actions and first.status == again.status, world.dump()
        world.step()
        assert len(world.trace) < 100


def test_slots_wait_for_health_and_delay_and_the_monitor_runs_on() -> None:
    cfg = uc(order="start-first", parallelism=1, monitor_ms=20_000, delay_ms=10_000)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg)).run()
    steps = [step for step, _ in creates(world)]
    # As in Swarm's updater: the next slot starts once this one is ready (one step) and the
    # delay (2 steps) passed; the 20 s monitor runs on in the background ...
    assert all(b - a >= 1 + 2 for a, b in itertools.pairwise(steps)), world.dump()
    assert any(b - a < 1 + 4 + 2 for a, b in itertools.pairwise(steps)), world.dump()
    # ... except after the last slot: the release ends only once it was watched for 20 s.
    done = next(t.step for t in world.trace if t.phase == "SUCCEEDED")
    assert done - steps[-1] >= 1 + 4, world.dump()


def test_a_container_that_dies_within_the_monitor_period_fails_the_release() -> None:
    cfg = uc(order="start-first", parallelism=1, monitor_ms=60_000, failure_action="rollback")
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg))
    world.run(until=lambda w: w.release.status.step >= 2)
    first = next(c for c in world.containers.values() if c.spec_generation == 2 and c.slot == 1)
    assert first.status.state == pb.CONTAINER_STATE_RUNNING
    first.status.state = pb.CONTAINER_STATE_FAILED  # dies 10 s after the window moved on
    first.status.message = "exited with code 1"
    first.status.updated_at.FromDatetime(world.now + timedelta(seconds=1))
    world.run()
    assert world.phase == "ROLLED_BACK", world.dump()
    assert "within the monitor period" in "\n".join(world.release.status.history)


def test_release_rolling_overrides_the_service_update_config() -> None:
    rel = pb.ReleaseSpec(rolling=uc(parallelism=3))
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=uc(parallelism=1)),
                         release_spec=rel).run()
    assert len({step for step, _ in creates(world)}) == 1


def failing_new(c: pb.Container) -> bool:
    return c.spec_generation == 2


def test_failure_with_rollback_reverts_and_restores_the_previous_generation() -> None:
    cfg = uc(order="start-first", failure_action="rollback")
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg), fails=failing_new).run()
    assert world.phases() == ["PROGRESSING", "ROLLING_BACK", "ROLLED_BACK"], world.dump()
    assert world.services["web"].generation == 1
    assert world.serving(1) == 3 and world.serving(2) == 0
    assert world.release.status.failures == 1
    assert any("rolling back" in line for line in world.release.status.history)


def test_stop_first_failure_with_rollback_brings_the_slot_back() -> None:
    """The failed slot holds only a dead container of the abandoned generation: the service planner
    restarts it from the (reverted) current spec, as it does any dead container."""
    cfg = uc(order="stop-first", failure_action="rollback")
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg), fails=failing_new,
                         service_planner=True).run()
    assert world.phase == "ROLLED_BACK", world.dump()
    world.settle(lambda w: w.serving(1) == 3)
    assert world.serving(2) == 0


def test_failure_with_pause_waits_for_resume_then_retries() -> None:
    cfg = uc(order="start-first", failure_action="pause")
    broken = {"on": True}
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg),
                         fails=lambda c: broken["on"] and c.spec_generation == 2)
    world.run(until=lambda w: w.phase == "PAUSED")
    for _ in range(5):  # paused: nothing moves
        assert world.step().actions == ()
    assert world.serving(1) == 3
    broken["on"] = False  # the operator fixed the cause (e.g. a missing secret)
    world.request("resume")
    world.run()
    assert world.phases() == ["PROGRESSING", "PAUSED", "PROGRESSING", "SUCCEEDED"], world.dump()
    assert world.serving(2) == 3
    assert any("'resume' accepted" in line for line in world.release.status.history)


def test_failure_with_continue_hands_the_slot_to_the_restart_policy() -> None:
    cfg = uc(order="start-first", failure_action="continue")
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg),
                         fails=lambda c: c.spec_generation == 2 and c.slot == 2).run()
    assert world.phase == "SUCCEEDED", world.dump()
    assert world.release.status.failures == 1
    assert world.serving(2) == 2


def test_failures_within_max_failure_ratio_are_tolerated() -> None:
    cfg = uc(order="start-first", failure_action="pause", max_failure_ratio=0.4)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg),
                         fails=lambda c: c.spec_generation == 2 and c.slot == 1).run()
    assert world.phase == "SUCCEEDED", world.dump()


def test_a_container_that_never_gets_ready_fails_at_the_progress_deadline() -> None:
    cfg = uc(order="start-first", failure_action="rollback", monitor_ms=1000)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg), ready_after=1000).run()
    assert world.phase == "ROLLED_BACK", world.dump()
    assert "within the progress deadline" in "\n".join(world.release.status.history)
    # the deadline is max(60 s, 10 x monitor): 12 steps of 5 s
    rolled = next(t.step for t in world.trace if t.phase == "ROLLING_BACK")
    assert rolled >= 60 // 5


def test_operator_rollback_request() -> None:
    cfg = uc(order="start-first", monitor_ms=30_000)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg))
    world.run(until=lambda w: w.serving(2) == 1)
    world.request("rollback")
    world.run()
    assert world.phase == "ROLLED_BACK", world.dump()
    assert world.serving(1) == 3 and world.serving(2) == 0


def test_with_the_real_service_planner_the_release_still_converges() -> None:
    for order in ("start-first", "stop-first"):
        cfg = uc(order=order, parallelism=2)
        world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg), service_planner=True).run()
        assert world.phase == "SUCCEEDED", world.dump()
        world.settle(lambda w: all(c.spec_generation == 2 for c in w.containers.values()))
        assert world.serving(2) == 3


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("order", "sideways", "services.web.update_config.order"),
        ("failure_action", "panic", "services.web.update_config.failure_action"),
        ("max_failure_ratio", 1.5, "services.web.update_config.max_failure_ratio"),
    ],
)
def test_bad_update_config_names_the_field(field: str, value: object, needle: str) -> None:
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=uc(**{field: value})))
    with pytest.raises(ReleaseError, match=needle.replace(".", r"\.")):
        world.step()


def test_stop_first_old_container_that_never_stops_fails_its_slot_once() -> None:
    """The slot leaves the window once its failure is counted, so the release still ends."""
    cfg = uc(order="stop-first", failure_action="continue", monitor_ms=1000)
    world = World.deploy("rolling", spec("v1"), spec("v2", update_config=cfg))
    world.unstoppable.add(next(c.meta.id for c in world.containers.values() if c.slot == 1))
    world.run()
    assert world.phase == "SUCCEEDED", world.dump()
    assert world.release.status.failures == 1
    assert "did not stop within the progress deadline" in "\n".join(world.release.status.history)
    assert not world.release.status.updating
    assert world.serving(2) == 2


def test_a_rollback_rolls_with_the_services_rollback_config() -> None:
    """Compose ``deploy.rollback_config``: a rollback uses it; an update uses ``update_config``."""
    s = spec("v2", update_config=uc(parallelism=1, order="stop-first"),
             rollback_config=uc(parallelism=3, order="start-first", delay_ms=2000))
    forward = rolling_config("web", s, pb.UpdateConfig())
    back = rolling_config("web", s, pb.UpdateConfig(), rollback=True)
    assert (forward.parallelism, forward.order) == (1, "stop-first")
    assert (back.parallelism, back.order, back.delay) == (3, "start-first", timedelta(seconds=2))
