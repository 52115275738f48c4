"""Table tests for ``plan_node``, and the node-failure story told through both planners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    PlanError,
    apply_actions,
    liveness_deadline,
    mass_loss_hold,
    node_down_at,
    plan_node,
    plan_service,
)

from .test_planner_helpers import T0, Ids, app, at, container, node, nodes, service, shorts

PERIOD = timedelta(seconds=5)
GRACE = timedelta(seconds=60)
D_STOPPED = pb.DESIRED_STATE_STOPPED
D_REMOVED = pb.DESIRED_STATE_REMOVED


@dataclass
class NodeCase:
    name: str
    node: pb.Node
    containers: Sequence[pb.Container]
    now: datetime
    expect: list[str]
    requeue_after: float | None
    message: str


CASES = [
    NodeCase("fresh heartbeat: nothing, look again when it would expire",
             node("n1", heartbeat=0), [container("a")], at(4), [], 11.0, "ok"),
    NodeCase("three missed heartbeats mark it down; containers still count",
             node("n1", heartbeat=0), [container("a")], at(15), ["n1 NODE_STATE_DOWN"], 60.0,
             "down: no heartbeat for 15s (3 heartbeats of 5s missed); 1 container(s) move in 60s"),
    NodeCase("already down, within the grace: wait",
             node("n1", heartbeat=0, state=pb.NODE_STATE_DOWN), [container("a")], at(45), [], 30.0,
             "down: no heartbeat for 45s"),
    NodeCase("after the grace, containers that should run are rescheduled; stopped ones stay",
             node("n1", heartbeat=0, state=pb.NODE_STATE_DOWN),
             [container("a"), container("b", 2, desired=D_STOPPED),
              container("c", 3, desired=D_REMOVED)],
             at(75), ["remove a"], None, "down: no heartbeat for 1m15s (3 heartbeats of 5s missed); "
             "1 container(s) rescheduled"),
    NodeCase("a node that never heartbeated is judged from its creation",
             node("n1", heartbeat=None), [], at(100), ["n1 NODE_STATE_DOWN"], None,
             "no heartbeat for"),
    NodeCase("back and ready: nothing to plan (the complete set removes what moved away)",
             node("n1", heartbeat=200),
             [container("a", desired=D_REMOVED), container("b", 2, desired=D_REMOVED,
                                                          state=pb.CONTAINER_STATE_REMOVED),
              container("c", 3)],
             at(201), [], 14.0, "ok"),
    NodeCase("draining: progress is reported",
             node("n1", heartbeat=0, availability=pb.NODE_AVAILABILITY_DRAIN),
             [container("a"), container("b", 2, desired=D_REMOVED)], at(1), [], 14.0,
             "draining: 1 container(s) left"),
    NodeCase("drained", node("n1", heartbeat=0, availability=pb.NODE_AVAILABILITY_DRAIN), [],
             at(1), [], 14.0, "drained"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_node(case: NodeCase) -> None:
    if not case.node.status.HasField("last_heartbeat"):
        case.node.meta.created_at.FromDatetime(at(0))
    plan = plan_node(case.node, case.containers, case.now, PERIOD, GRACE)
    assert shorts(plan.actions) == case.expect
    assert plan.requeue_after == case.requeue_after
    assert case.message in plan.message


def test_a_node_with_no_timestamp_at_all_is_down_and_moved_at_once() -> None:
    plan = plan_node(node("n1", heartbeat=None), [container("a")], T0, PERIOD, GRACE)
    assert shorts(plan.actions) == ["n1 NODE_STATE_DOWN", "remove a"]
    assert "never heartbeated" in plan.message


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"heartbeat_period": timedelta(0)}, "heartbeat_period must be positive"),
        ({"down_grace": timedelta(seconds=-1)}, "down_grace must not be negative"),
        ({"missed_heartbeats": 0}, "missed_heartbeats must be at least 1"),
        ({"containers": [container("x", node="n2")]}, "containers_on_node: x are not on node 'n1'"),
        ({"now": datetime(2025, 1, 1)}, "now: must be a timezone-aware datetime"),
    ],
    ids=["period", "grace", "missed", "stray container", "naive now"],
)
def test_bad_input_is_refused_with_the_field_named(kwargs: dict[str, object], error: str) -> None:
    args: dict[str, object] = {
        "containers": [], "now": T0, "heartbeat_period": PERIOD, "down_grace": GRACE,
        "missed_heartbeats": 3,
    } | kwargs
    with pytest.raises(PlanError, match=error):
        plan_node(
            node("n1"), args["containers"], args["now"], args["heartbeat_period"],  # type: ignore[arg-type]
            args["down_grace"], missed_heartbeats=args["missed_heartbeats"],  # type: ignore[arg-type]
        )


def test_node_down_then_back_never_runs_more_than_desired_for_long() -> None:
    """The whole story: n1 goes silent, its container moves to n2, n1 returns and is cleaned."""
    svc, application, ids = service(replicas=1), app(), Ids()
    cluster = nodes("n1", "n2")
    cluster["n1"] = node("n1", heartbeat=0)
    containers = [container("a", 1, "n1")]

    # Down but within the grace: the service keeps its container, no replacement yet.
    now = at(30)
    node_plan = plan_node(cluster["n1"], containers, now, PERIOD, GRACE)
    assert shorts(node_plan.actions) == ["n1 NODE_STATE_DOWN"]
    cluster["n1"].status.state = pb.NODE_STATE_DOWN
    assert shorts(plan_service(application, svc, containers, cluster, {}, now).actions) == []

    # After the grace: rescheduled; the service planner creates the replacement.
    now = at(80)
    node_plan = plan_node(cluster["n1"], containers, now, PERIOD, GRACE)
    assert shorts(node_plan.actions) == ["remove a"]
    containers = apply_actions(containers, node_plan.actions, svc, now, ids)
    plan = plan_service(application, svc, containers, cluster, {}, now)
    assert shorts(plan.actions) == ["create 1"]
    containers = apply_actions(containers, plan.actions, svc, now, ids)
    (new,) = (c for c in containers if c.meta.id != "a")
    new.node, new.status.state = "n2", pb.CONTAINER_STATE_RUNNING  # scheduler + agent

    # n1 comes back: nothing is planned for it. Its old record is still on it, desired REMOVED,
    # which is what the dispatcher's complete set tells the returning agent: remove it.
    now = at(300)
    cluster["n1"].status.state = pb.NODE_STATE_READY
    cluster["n1"].status.last_heartbeat.FromDatetime(now)
    on_n1 = [c for c in containers if c.node == "n1"]
    assert plan_node(cluster["n1"], on_n1, now, PERIOD, GRACE).actions == ()
    assert [(c.meta.id, c.desired_state) for c in on_n1] == [("a", pb.DESIRED_STATE_REMOVED)]
    plan = plan_service(application, svc, containers, cluster, {}, now)
    assert shorts(plan.actions) == []
    assert plan.status.running == 1  # the stale one, still running on n1, is not counted

    # The agent on n1 removes it; the record goes.
    on_n1[0].status.state = pb.CONTAINER_STATE_REMOVED
    plan = plan_service(application, svc, containers, cluster, {}, now)
    assert shorts(plan.actions) == ["delete a"]


@dataclass
class LeaderCase:
    name: str
    heartbeat: float | None  # seconds after T0; None: never heartbeated (created at T0)
    leading_since: float | None
    now: float
    expect: list[str]
    requeue_after: float | None
    message: str


# PERIOD 5 s x 3 missed = 15 s to DOWN, then GRACE 60 s to reschedule.
LEADER_CASES = [
    LeaderCase("an outage longer than timeout + grace, leader just started: nothing happens",
               0, 300, 300, [], 15.0, "ok"),
    LeaderCase("new leader, node still silent after the timeout: down, grace counted from leading",
               0, 300, 315, ["n1 NODE_STATE_DOWN"], 60.0,
               "down: no heartbeat for 15s since this leader started (last one 5m15s ago)"),
    LeaderCase("new leader, silent for timeout + grace of its leadership: rescheduled",
               0, 300, 375, ["n1 NODE_STATE_DOWN", "remove a"], None,
               "1 container(s) rescheduled"),
    LeaderCase("one second short of a full leadership grace: not moved",
               0, 300, 374, ["n1 NODE_STATE_DOWN"], 1.0, "move in 1s"),
    LeaderCase("a heartbeat after the leader started counts from the heartbeat",
               310, 300, 320, [], 5.0, "ok"),
    LeaderCase("a long-standing leader judges as before",
               0, -1000, 75, ["n1 NODE_STATE_DOWN", "remove a"], None,
               "down: no heartbeat for 1m15s (3 heartbeats"),
    LeaderCase("never heartbeated: judged from the later of creation and leading",
               None, 50, 60, [], 5.0, "ok"),
    LeaderCase("never heartbeated, watched long enough by this leader: moved",
               None, 50, 125, ["n1 NODE_STATE_DOWN", "remove a"], None,
               "since this leader started (never heartbeated)"),
    LeaderCase("no leading_since: the stored heartbeat alone decides (the old rule)",
               0, None, 300, ["n1 NODE_STATE_DOWN", "remove a"], None, "no heartbeat for 5m"),
    LeaderCase("a leading_since in the future (clock stepped back) only delays",
               0, 400, 300, [], 115.0, "ok"),
]


@pytest.mark.parametrize("case", LEADER_CASES, ids=[c.name for c in LEADER_CASES])
def test_silence_is_counted_from_when_the_leader_started(case: LeaderCase) -> None:
    n = node("n1", heartbeat=case.heartbeat)
    if case.heartbeat is None:
        n.meta.created_at.FromDatetime(at(0))
    since = at(case.leading_since) if case.leading_since is not None else None
    plan = plan_node(n, [container("a")], at(case.now), PERIOD, GRACE, leading_since=since)
    assert shorts(plan.actions) == case.expect
    assert plan.requeue_after == case.requeue_after
    assert case.message in plan.message, plan.message


def test_a_naive_leading_since_is_refused() -> None:
    with pytest.raises(PlanError, match="leading_since: must be a timezone-aware datetime"):
        plan_node(node("n1", heartbeat=0), [], T0, PERIOD, GRACE, leading_since=datetime(2025, 1, 1))


def test_liveness_deadline_is_two_periods_and_a_second() -> None:
    assert liveness_deadline(timedelta(seconds=5)) == timedelta(seconds=11)
    assert liveness_deadline(timedelta(seconds=1)) == timedelta(seconds=3)


def test_last_seen_and_deadline_given_by_the_caller_override_the_record() -> None:
    """The reconciler judges from the liveness keys: the record's old last_heartbeat says nothing."""
    n = node("n1", heartbeat=0)
    deadline = timedelta(seconds=11)
    assert node_down_at(n, PERIOD, last_seen=at(100), deadline=deadline) == at(111)
    plan = plan_node(n, [container("a")], at(110), PERIOD, GRACE, last_seen=at(100), deadline=deadline)
    assert plan.actions == () and plan.requeue_after == 1.0
    plan = plan_node(n, [container("a")], at(111), PERIOD, GRACE, last_seen=at(100), deadline=deadline)
    assert shorts(plan.actions) == ["n1 NODE_STATE_DOWN"]
    assert "no API replica heard it for the 11s deadline" in plan.message


def test_after_a_leader_starts_the_reconnect_floor_holds_off_a_short_deadline() -> None:
    n = node("n1", heartbeat=0)
    short = timedelta(seconds=3)
    assert node_down_at(n, PERIOD, leading_since=at(100), deadline=short) == at(103)
    assert node_down_at(n, PERIOD, leading_since=at(100), deadline=short,
                        reconnect_floor=timedelta(seconds=10)) == at(110)
    # Long after the start, the floor no longer matters.
    assert node_down_at(n, PERIOD, leading_since=at(100), last_seen=at(500), deadline=short,
                        reconnect_floor=timedelta(seconds=10)) == at(503)


@pytest.mark.parametrize(("unheard", "nodes", "held"), [
    (6, 12, False),   # half: a real loss of half the hosts still moves
    (7, 12, True),    # more than half
    (9, 9, False),    # below the minimum size: always moves
    (500, 500, True),
    (0, 500, False),
])
def test_mass_loss_hold(unheard: int, nodes: int, held: bool) -> None:
    assert bool(mass_loss_hold(unheard, nodes)) is held


def test_a_held_node_is_down_and_its_containers_stay() -> None:
    down = node("n1", heartbeat=0, state=pb.NODE_STATE_DOWN)
    plan = plan_node(down, [container("a")], at(75), PERIOD, GRACE, hold=mass_loss_hold(300, 500))
    assert shorts(plan.actions) == []
    assert plan.requeue_after == 2.0 and "1 container(s) held: 300 of 500 nodes are unheard" in plan.message
    assert plan.held == 1
