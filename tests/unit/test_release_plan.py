"""plan_release as a function: idempotence, resumability, terminal phases, inputs; helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import CreateContainer, PlanError
from controlplane.release import (
    ReleaseError,
    ReleaseStats,
    plan_release,
    release_stats,
    strategy_for,
)

from .test_release_canary import canary
from .test_release_world import T0, World, spec

SCENARIOS = [
    ("rolling start-first", "rolling", None, {"update_config": pb.UpdateConfig(order="start-first", parallelism=2)}),
    ("rolling stop-first", "rolling", None, {"update_config": pb.UpdateConfig(order="stop-first")}),
    ("blue-green", "blue-green", None, {}),
    ("canary", "canary", canary(), {}),
]


@pytest.mark.parametrize(("name", "strategy", "rs", "kw"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_replanning_the_same_state_gives_the_same_plan_at_every_step(
    name: str, strategy: str, rs: pb.ReleaseSpec | None, kw: dict[str, Any]
) -> None:
    world = World.deploy(strategy, spec("v1"), spec("v2", **kw), release_spec=rs)
    for _ in range(60):
        if world.phase == "AWAITING_SHIFT":
            world.request("confirm")
        if world.phase == "SUCCEEDED":
            break
        first, second = world.plan(), world.plan()
        assert first == second
        world.step()
    assert world.phase == "SUCCEEDED", world.dump()


@pytest.mark.parametrize(("name", "strategy", "rs", "kw"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_a_slot_with_a_new_container_never_gets_another(
    name: str, strategy: str, rs: pb.ReleaseSpec | None, kw: dict[str, Any]
) -> None:
    world = World.deploy(strategy, spec("v1"), spec("v2", **kw), release_spec=rs, ready_after=4)
    for _ in range(80):
        if world.phase == "AWAITING_SHIFT":
            world.request("confirm")
        world.step()
        for action in world.plans[-1].actions:
            if isinstance(action, CreateContainer):
                others = [c for c in world.containers.values()
                          if c.slot == action.slot and c.spec_generation == 2
                          and c.desired_state == pb.DESIRED_STATE_RUNNING]
                assert len(others) == 1, world.dump()
        if world.phase == "SUCCEEDED":
            break
    assert world.phase == "SUCCEEDED", world.dump()


def test_resumes_from_the_records_after_a_restart() -> None:
    """A fresh World built from copies of the records plans exactly what the old one would."""
    world = World.deploy("canary", spec("v1"), spec("v2"), release_spec=canary())
    world.run(until=lambda w: w.release.status.weight == 50)
    expected = world.plan()
    release = pb.Release()
    release.CopyFrom(world.release)
    containers = {k: list(v) for k, v in world.by_service().items()}
    stats = release_stats(release, [c for v in containers.values() for c in v], [world._router_stats()])
    again = plan_release(release, pb.Application(), dict(world.services), containers, stats,
                         world.applied_table.version == world.table().version, world.now)
    assert again == expected


def test_a_finished_release_ignores_requests_and_plans_nothing() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"))
    world.release.status.phase = pb.RELEASE_PHASE_SUCCEEDED
    world.request("rollback")
    plan = world.plan()
    assert plan.actions == () and plan.requeue_after is None and not plan.revert
    assert list(plan.status.requests) == []
    assert "'rollback' ignored: the release is finished" in plan.status.history[-1]


def test_a_stopped_application_holds_the_release_and_keeps_its_requests() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"))
    world.app.spec.desired_state = pb.DESIRED_STATE_STOPPED
    world.request("shift:10")
    plan = world.plan()
    assert plan.actions == ()
    assert list(plan.status.requests) == ["shift:10"]
    assert "stopped" in plan.status.message


def test_a_naive_now_is_refused() -> None:
    world = World.deploy("rolling", spec("v1"), spec("v2"))
    with pytest.raises(PlanError, match="now"):
        plan_release(world.release, world.app, world.services, world.by_service(), ReleaseStats(), True,
                     datetime(2026, 1, 1))


def test_an_unknown_strategy_names_the_field() -> None:
    world = World.deploy("teleport", spec("v1"), spec("v2"))
    with pytest.raises(ReleaseError, match=r"spec\.strategy: 'teleport'"):
        world.plan()


def test_every_transition_appends_one_history_line_and_stamps_phase_since() -> None:
    world = World.deploy("blue-green", spec("v1"), spec("v2"))
    world.run(until=lambda w: w.phase == "AWAITING_SHIFT")
    line = world.release.status.history[-1]
    assert "AWAITING_SHIFT step 1 weight 0%" in line
    assert world.release.status.phase_since.ToDatetime().replace(tzinfo=world.now.tzinfo) < world.now


def svc(name: str, strategy: str = "") -> pb.Service:
    s = pb.Service(spec=pb.ServiceSpec(strategy=strategy))
    s.meta.name = name
    return s


@pytest.mark.parametrize(
    ("requested", "services", "expected"),
    [
        ("canary", [svc("a", "blue-green")], "canary"),
        ("", [svc("a"), svc("b", "blue-green")], "blue-green"),
        ("", [svc("a"), svc("b")], "rolling"),
        ("", [], "rolling"),
    ],
)
def test_strategy_for(requested: str, services: list[pb.Service], expected: str) -> None:
    assert strategy_for(requested, services) == expected
    assert strategy_for(requested, {s.meta.name: s for s in services}) == expected


@pytest.mark.parametrize(
    ("requested", "services", "needle"),
    [
        ("fast", [], "strategy: 'fast'"),
        ("", [svc("a", "magic")], "services.a.strategy"),
        ("", [svc("a", "canary"), svc("b", "blue-green")], "different strategies"),
    ],
)
def test_strategy_for_errors_name_the_field(requested: str, services: list[pb.Service], needle: str) -> None:
    with pytest.raises(ReleaseError, match=needle.replace(".", r"\.")):
        strategy_for(requested, services)


def test_release_stats_splits_generations_and_sums_nodes() -> None:
    release = pb.Release(application="app", spec=pb.ReleaseSpec(services=["web"]))
    release.spec.previous_generations["web"] = 1

    def ctr(cid: str, gen: int, service: str = "web") -> pb.Container:
        c = pb.Container(service=service, spec_generation=gen)
        c.meta.id = cid
        return c

    containers = [ctr("old", 1), ctr("new", 2), ctr("db", 7, "db")]

    def node(name: str, *rows: tuple[str, int, int, int]) -> pb.RouterStats:
        return pb.RouterStats(node=name, backends=[
            pb.BackendStats(application="app", service="web", container=c, requests=r, responses_5xx=e,
                            connection_errors=x) for c, r, e, x in rows])

    stats = release_stats(release, containers, [
        node("n1", ("old", 100, 1, 0), ("new", 10, 2, 1), ("db", 50, 50, 0), ("gone", 9, 9, 9)),
        node("n2", ("new", 30, 1, 0)),
    ])
    assert stats == ReleaseStats(new_requests=40, new_errors=4, old_requests=100, old_errors=1)
    assert stats.new_error_ratio == pytest.approx(0.1)


def global_world(strategy: str) -> tuple[pb.Release, dict[str, pb.Service], dict[str, list[pb.Container]]]:
    world = World.deploy(strategy, spec("v1"), spec("v2"))
    svc = world.services["web"]
    svc.spec.mode = pb.SERVICE_MODE_GLOBAL
    olds = []
    for i, c in enumerate(world.by_service()["web"], start=1):
        c.slot, c.node = 0, f"n{i}"
        olds.append(c)
    return world.release, world.services, {"web": olds}


@pytest.mark.parametrize("strategy", ["blue-green", "rolling"])
def test_global_services_get_the_new_container_on_the_same_node(strategy: str) -> None:
    rel, services, containers = global_world(strategy)
    services["web"].spec.update_config.order = "start-first"
    services["web"].spec.update_config.parallelism = 5
    plan = plan_release(rel, pb.Application(), services, containers, ReleaseStats(), True, T0)
    created = [(a.slot, a.node) for a in plan.actions if isinstance(a, CreateContainer)]
    assert created == [(0, "n1"), (0, "n2"), (0, "n3")]
