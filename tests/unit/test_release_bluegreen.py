"""Blue-green in the simulated world: green beside blue, shift, confirm, rollback, failures."""

from __future__ import annotations

from datetime import UTC

from ccs.v1 import resources_pb2 as pb
from controlplane.release import Retire

from .test_release_world import T0, World, spec


def green_weight_share(world: World) -> float:
    route = world.table().routes[0]
    total = sum(b.weight for b in route.backends)
    return sum(b.weight for b in route.backends if b.group == "green") / total


def awaiting(world: World) -> World:
    return world.run(until=lambda w: w.phase == "AWAITING_SHIFT")


def test_green_comes_up_beside_blue_with_no_traffic() -> None:
    world = awaiting(World.deploy("blue-green", spec("v1"), spec("v2")))
    assert world.serving(1) == 3 and world.serving(2) == 3
    assert world.release.status.weight == 0
    assert green_weight_share(world) == 0.0
    assert {b.group for b in world.table().routes[0].backends} == {"stable", "green"}
    for _ in range(3):  # the operator decides; nothing happens meanwhile
        assert world.step().actions == ()


def test_shift_then_confirm_retires_blue_only_after_routers_moved() -> None:
    world = awaiting(World.deploy("blue-green", spec("v1"), spec("v2")))
    world.request("shift:30")
    world.step()
    assert world.release.status.weight == 30
    assert abs(green_weight_share(world) - 0.30) < 0.01
    world.request("confirm")
    world.run()
    assert world.phases() == ["PROGRESSING", "AWAITING_SHIFT", "PROGRESSING", "SUCCEEDED"], world.dump()
    assert world.release.status.weight == 100
    retire_steps = [t for t in world.trace if any("retire" in a for a in t.actions)]
    assert len(retire_steps) == 1 and retire_steps[0].routing_applied
    assert world.serving(2) == 3


def test_rollback_moves_traffic_back_then_retires_green() -> None:
    world = awaiting(World.deploy("blue-green", spec("v1"), spec("v2")))
    world.request("shift:50")
    world.step()
    world.request("rollback")
    world.run()
    assert world.phases()[-2:] == ["ROLLING_BACK", "ROLLED_BACK"], world.dump()
    assert world.services["web"].generation == 1
    assert world.release.status.weight == 0
    world.settle(lambda w: not any(c.spec_generation == 2 for c in w.containers.values()))
    assert world.serving(1) == 3


def test_invalid_requests_are_consumed_with_a_reason() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"), ready_after=3)
    world.request("confirm")
    world.step()
    assert list(world.release.status.requests) == []
    assert "'confirm' ignored: only valid once the new generation is up" in world.release.status.history[-1]
    awaiting(world)
    world.request("shift:150", "promote")
    world.step()
    history = "\n".join(world.release.status.history)
    assert "'shift:150' ignored: the weight must be a whole number from 0 to 100" in history
    assert "'promote' ignored: not a blue-green request" in history
    assert world.phase == "AWAITING_SHIFT"


def test_green_failing_while_coming_up_rolls_back_on_its_own() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"),
                         fails=lambda c: c.spec_generation == 2 and c.slot == 2).run()
    assert world.phase == "ROLLED_BACK", world.dump()
    assert "did not come up" in world.release.status.message
    assert world.serving(1) == 3


def test_green_failing_while_awaiting_keeps_waiting_and_refuses_confirm() -> None:
    world = awaiting(World.deploy("blue-green", spec("v1"), spec("v2")))
    world.request("shift:20")
    world.step()
    victim = next(c for c in world.containers.values() if c.spec_generation == 2)
    victim.status.state = pb.CONTAINER_STATE_FAILED
    world.step()
    assert world.phase == "AWAITING_SHIFT"
    assert "problems" in world.release.status.message
    assert all(b.container != victim.meta.id for b in world.table().routes[0].backends)
    world.request("confirm")
    world.step()
    assert world.phase == "AWAITING_SHIFT"
    assert "'confirm' ignored: only 2/3 new containers are ready" in "\n".join(world.release.status.history)
    world.request("rollback")
    world.run()
    assert world.phase == "ROLLED_BACK"


def test_no_container_is_retired_before_its_weight_reached_zero_everywhere() -> None:
    # World._check_retire raises on a violation; this walks every path that retires something.
    for requests in (["shift:70", "confirm"], ["shift:70", "rollback"]):
        world = awaiting(World.deploy("blue-green", spec("v1"), spec("v2")))
        for r in requests:
            world.request(r)
            world.step()
        world.run()
        retired = [a for p in world.plans for a in p.actions if isinstance(a, Retire)]
        assert len(retired) == 3 and all(a.drain_seconds > 0 for a in retired)


def test_a_large_green_side_started_one_after_another_is_not_failed_while_it_progresses() -> None:
    """30 green containers that one engine starts in turn: the last turns ready 80 s after it was
    created (steps of 5 s, two a step). Counted from creation, the release rolled back at 60 s
    (issue 15's benchmark); with a progress deadline it reaches AWAITING_SHIFT."""
    world = awaiting(World.deploy("blue-green", spec("v1", replicas=30), spec("v2", replicas=30),
                                  ready_after=lambda c: 1 + c.slot // 2 if c.spec_generation == 2 else 1))
    assert world.serving(2) == 30, world.dump()
    up = world.release.status.phase_since.ToDatetime(tzinfo=UTC) - T0
    assert up.total_seconds() > 60  # the last green container turned ready after the old deadline


def test_a_green_container_that_never_turns_ready_fails_one_deadline_after_the_last_progress() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"),
                         ready_after=lambda c: 10_000 if c.spec_generation == 2 and c.slot == 3 else 1).run()
    assert world.phase == "ROLLED_BACK", world.dump()
    assert "web.3" in world.release.status.message and "not ready 60s after" in world.release.status.message
