"""Canary in the simulated world: steps and weights, automatic analysis, promote/abort, A/B."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.release import ReleaseError, Retire

from .test_release_world import World, spec

DEFAULT_STEPS = [pb.CanaryStep(weight=10, pause_ms=30_000), pb.CanaryStep(weight=50, pause_ms=30_000),
                 pb.CanaryStep(weight=100)]


def canary(steps: list[pb.CanaryStep] | None = None, replicas: int = 1, **analysis: float) -> pb.ReleaseSpec:
    return pb.ReleaseSpec(canary_replicas=replicas, steps=DEFAULT_STEPS if steps is None else steps,
                          analysis=pb.CanaryAnalysis(**analysis))  # type: ignore[arg-type]


def canary_share(world: World) -> float:
    route = world.applied_table.routes[0]
    total = sum(b.weight for b in route.backends)
    return sum(b.weight for b in route.backends if b.group == "canary") / total if total else 0.0


def test_default_steps_walk_10_50_then_complete() -> None:
    world = World.deploy("canary", spec("v1", replicas=4), spec("v2", replicas=4), release_spec=canary()).run()
    assert world.phase == "SUCCEEDED", world.dump()
    weights: list[int] = []
    for t in world.trace:
        if not weights or weights[-1] != t.weight:
            weights.append(t.weight)
    assert weights == [0, 10, 50, 100], world.dump()
    # 10% is held 30 s (6 steps of 5 s) before 50%
    at10 = [t.step for t in world.trace if t.weight == 10]
    assert len(at10) >= 6
    assert world.serving(2) == 4 and world.serving(1) == 0


def test_weights_reach_the_routers_as_shares() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary())
    world.run(until=lambda w: w.release.status.weight == 10 and w.trace[-1].routing_applied)
    world.step()
    assert abs(canary_share(world) - 0.10) < 0.01  # 1 canary against 3 stable


def test_completion_brings_up_every_slot_before_weight_100() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary()).run()
    first_100 = next(t for t in world.trace if t.weight == 100)
    assert first_100.ready_new == 3, world.dump()


def test_5xx_heavy_canary_aborts_and_rolls_back_on_its_own() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"),
                         release_spec=canary(max_5xx_ratio=0.05, min_requests=20),
                         error_rate=lambda gen: 0.5 if gen == 2 else 0.0).run()
    assert world.phases() == ["PROGRESSING", "ROLLING_BACK", "ROLLED_BACK"], world.dump()
    assert "5xx ratio" in world.release.status.message
    assert world.release.status.observed_requests >= 20
    assert world.services["web"].generation == 1
    assert max(t.weight for t in world.trace) == 10  # never went past the first step
    world.settle(lambda w: not any(c.spec_generation == 2 for c in w.containers.values()))
    assert world.serving(1) == 3


def test_too_few_requests_are_not_judged() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"),
                         release_spec=canary(max_5xx_ratio=0.05, min_requests=100_000),
                         error_rate=lambda gen: 0.5 if gen == 2 else 0.0).run()
    assert world.phase == "SUCCEEDED"


def test_failed_canary_aborts() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary(),
                         fails=lambda c: c.spec_generation == 2).run()
    assert world.phase == "ROLLED_BACK"
    assert "unhealthy or failed" in world.release.status.message


def test_pause_zero_waits_for_promote_and_promote_skips_a_hold() -> None:
    steps = [pb.CanaryStep(weight=20), pb.CanaryStep(weight=60, pause_ms=3_600_000), pb.CanaryStep(weight=100)]
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary(steps))
    world.run(until=lambda w: w.phase == "PAUSED")
    for _ in range(3):
        world.step()
    assert world.phase == "PAUSED" and world.release.status.weight == 20
    world.request("promote")
    world.step()
    assert world.release.status.weight == 60 and world.phase == "PROGRESSING"
    world.request("promote")  # skips the hour-long hold
    world.run()
    assert world.phase == "SUCCEEDED", world.dump()
    assert len(world.trace) < 40


def test_manual_abort() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary())
    world.run(until=lambda w: w.release.status.weight == 50)
    world.request("abort")
    world.run()
    assert world.phase == "ROLLED_BACK"
    assert "abort requested" in world.release.status.message
    retired = [a.container for p in world.plans for a in p.actions if isinstance(a, Retire)]
    assert retired and all("-g2-" in cid for cid in retired)


def test_ab_routes_by_header_and_keeps_weight_zero_until_completion() -> None:
    rs = canary([pb.CanaryStep(weight=50, pause_ms=10_000), pb.CanaryStep(weight=100)])
    rs.match_header, rs.match_value = "X-Canary", "yes"
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=rs)
    world.run(until=lambda w: w.release.status.step == 1)
    entry = world.table().routes[0]
    assert (entry.match_header, entry.match_value) == ("X-Canary", "yes")
    assert world.release.status.weight == 0
    assert {b.group for b in entry.backends if b.weight > 0} == {"canary", "stable"}
    world.run()
    assert world.phase == "SUCCEEDED"
    assert world.table().routes[0].match_header == ""


def test_canary_replicas_use_the_first_slots() -> None:
    world = World.deploy("canary", spec("v1", replicas=5), spec("v2", replicas=5), release_spec=canary(replicas=2))
    world.run(until=lambda w: w.release.status.step == 1)
    assert sorted(c.slot for c in world.containers.values() if c.spec_generation == 2) == [1, 2]


def test_a_step_above_100_percent_is_refused_with_the_field() -> None:
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary([pb.CanaryStep(weight=150)]))
    with pytest.raises(ReleaseError, match=r"spec\.steps\[0\]\.weight"):
        world.step()
