"""``x-ccs.on_node_loss``: which services wait for a lost node, and what the planners do then.

Tables for the rule (:mod:`controlplane.planner.node_loss`), the node planner and the service
planner, then the whole story through committed reconcile passes: a service with a named
volume on a node that goes DOWN is not moved, its status says it waits, and when the node comes
back its container (killed with the node's engine) is restarted on that node, where the volume is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from ccs.labels import LABEL_HOME_NODE
from ccs.v1 import resources_pb2 as pb
from controlplane.compose import TemplateError, parse_template
from controlplane.planner import CreateContainer, plan_node, plan_service
from controlplane.planner.node_loss import home_node, node_loss_policy
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster

from .test_planner_helpers import app, at, container, node, nodes, service, shorts

WAIT, RESCHEDULE = pb.NODE_LOSS_POLICY_WAIT, pb.NODE_LOSS_POLICY_RESCHEDULE
PERIOD, GRACE = timedelta(seconds=5), timedelta(seconds=60)


def spec_of(body: str) -> pb.ServiceSpec:
    text = "services:\n  db:\n    image: local/busybox:1\n" + body
    return parse_template(text, env={}, files={}, app_name="shop").services["db"]


@pytest.mark.parametrize(("body", "policy"), [
    ("", RESCHEDULE),
    ("    volumes: [data:/var/lib/db]\nvolumes: {data: {}}\n", WAIT),
    ("    volumes: [data:/var/lib/db]\nvolumes: {data: {external: true}}\n", WAIT),
    ("    volumes: [/var/lib/db]\n", RESCHEDULE),  # anonymous: new with every container anyway
    ("    volumes: ['/srv/db:/var/lib/db']\n", RESCHEDULE),  # a bind mount: the node's path, any node
    ("    tmpfs: [/run]\n", RESCHEDULE),
    ("    volumes: [data:/var/lib/db]\n    x-ccs: {on_node_loss: reschedule}\nvolumes: {data: {}}\n",
     RESCHEDULE),
    ("    x-ccs: {on_node_loss: wait}\n", WAIT),
], ids=["stateless", "named volume", "external volume", "anonymous volume", "bind mount", "tmpfs",
        "named volume, reschedule asked", "wait asked without volumes"])
def test_the_effective_policy(body: str, policy: pb.NodeLossPolicy) -> None:
    assert node_loss_policy(spec_of(body)) == policy


def with_policy(c: pb.Container, policy: pb.NodeLossPolicy) -> pb.Container:
    c.spec.on_node_loss = policy
    return c


def with_named_volume(c: pb.Container) -> pb.Container:
    c.spec.volumes.add(type="volume", source="data", target="/data")
    return c


@dataclass
class NodeCase:
    name: str
    containers: list[pb.Container]
    now: float
    expect: list[str]
    message: str


DOWN = node("n1", heartbeat=0, state=pb.NODE_STATE_DOWN)
NODE_CASES = [
    NodeCase("within the grace: only the movable ones are announced",
             [with_policy(container("a"), WAIT), container("b", 2)], 30,
             [], "1 container(s) move in 45s; 1 container(s) wait for the node to return"),
    NodeCase("after the grace: waiting ones stay, the others are rescheduled",
             [with_policy(container("a"), WAIT), with_policy(container("b", 2), RESCHEDULE)], 80,
             ["remove b"], "1 container(s) rescheduled; 1 container(s) wait for the node to return "
             "(x-ccs.on_node_loss: wait)"),
    NodeCase("a named volume waits without saying so",
             [with_named_volume(container("a"))], 80, [], "1 container(s) wait for the node to return"),
    NodeCase("a stopped one neither moves nor waits",
             [with_policy(container("a", desired=pb.DESIRED_STATE_STOPPED), WAIT)], 80, [],
             "down: no heartbeat for 1m20s (3 heartbeats of 5s missed)"),
]


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_plan_node(case: NodeCase) -> None:
    plan = plan_node(DOWN, case.containers, at(case.now), PERIOD, GRACE)
    assert shorts(plan.actions) == case.expect
    assert case.message in plan.message, plan.message


def waiting_service(policy: pb.NodeLossPolicy = WAIT) -> pb.Service:
    svc = service("web", restart="always", delay_ms=1000)
    svc.spec.on_node_loss = policy
    return svc


def dead(cid: str = "a", node_name: str = "n1") -> pb.Container:
    c = container(cid, 1, node_name, state=pb.CONTAINER_STATE_EXITED, exit_code=137, changed=0)
    c.spec.on_node_loss = WAIT
    return c


@pytest.mark.parametrize(("policy", "draining", "home"), [
    (WAIT, False, "n1"),
    (RESCHEDULE, False, None),
    (WAIT, True, None),  # the operator drains the node: the data is given up
], ids=["wait: restarted on its node", "reschedule: anywhere", "wait, node draining: anywhere"])
def test_a_restart_stays_on_its_node_when_the_service_waits_for_it(
    policy: pb.NodeLossPolicy, draining: bool, home: str | None
) -> None:
    cluster = nodes("n1", "n2", draining=["n1"] if draining else [])
    plan = plan_service(app(), waiting_service(policy), [dead()], cluster, {}, at(10))
    created = [a for a in plan.actions if isinstance(a, CreateContainer)]
    assert len(created) == 1 and created[0].node is None  # placed by the scheduler, homed or not
    assert dict(created[0].labels).get(LABEL_HOME_NODE) == home
    assert ("on its node n1" in created[0].reason) == (home is not None)


def test_the_status_names_the_slot_the_node_and_the_key() -> None:
    cluster = nodes("n1", "n2")
    cluster["n1"].status.state = pb.NODE_STATE_DOWN
    waiting = with_policy(container("a"), WAIT)
    plan = plan_service(app(), waiting_service(), [waiting], cluster, {}, at(10))
    assert shorts(plan.actions) == []
    assert plan.status.message == "1/1 running; slot 1 waits for its node n1 to return (x-ccs.on_node_loss: wait)"
    by_default = with_named_volume(container("a"))
    plan = plan_service(app(), service("web"), [by_default], cluster, {}, at(10))
    assert plan.status.message.endswith(
        "slot 1 waits for its node n1 to return (x-ccs.on_node_loss defaults to wait: the service has "
        "named volumes on that node)")
    cluster["n1"].status.state = pb.NODE_STATE_READY
    assert plan_service(app(), waiting_service(), [waiting], cluster, {}, at(10)).status.message == "1/1 running"


def test_home_node() -> None:
    cluster = nodes("n1", "n2", draining=["n2"])
    c = container("a", node="")
    assert home_node(c, cluster) is None
    for home, expected in (("n1", "n1"), ("n2", None), ("gone", None)):
        c.meta.labels[LABEL_HOME_NODE] = home
        assert home_node(c, cluster) == expected, home


# ------------------------------------------------------------------ through reconcile passes

def put_db(c: Cluster, policy: pb.NodeLossPolicy) -> None:
    c.put_service("shop", "db", 1, restart="always", delay_ms=1000)
    s = c.service("shop", "db")
    s.spec.volumes.add(type="volume", source="data", target="/var/lib/db")
    s.spec.ports.add(target=5432, published=5432)
    s.spec.on_node_loss = policy
    c.put(keys.service(C, "shop", "db"), s)


def heartbeat(c: Cluster, name: str, seconds: float) -> None:
    n = c.state.nodes[name]
    n.status.state = pb.NODE_STATE_READY
    n.status.last_heartbeat.FromDatetime(at(seconds))
    c.put(keys.node(C, name), n)


def report(c: Cluster, record: pb.Container, state: pb.ContainerState, seconds: float) -> None:
    record.status.state = state
    record.status.updated_at.FromDatetime(at(seconds))
    c.put(keys.container(C, "shop", "db", record.meta.name), record)


def live(c: Cluster) -> list[pb.Container]:
    return [x for x in c.state.containers_of("shop", "db") if x.desired_state == pb.DESIRED_STATE_RUNNING]


async def start_on_n2(policy: pb.NodeLossPolicy) -> tuple[Cluster, pb.Container]:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop")
    c.put_service("shop", "filler", 1)  # takes n1, so the scheduler puts db on n2
    await c.run(0.5)
    put_db(c, policy)
    await c.run(1.0)
    [db] = live(c)
    assert db.node == "n2"
    report(c, db, pb.CONTAINER_STATE_RUNNING, 1.0)
    for t in (5.0, 10.0, 15.0, 20.0):  # n1 heartbeats on; n2 falls silent after 0
        heartbeat(c, "n1", t)
        await c.run(t + 0.5)
    assert c.state.nodes["n2"].status.state == pb.NODE_STATE_DOWN
    for t in (30.0, 40.0, 50.0):  # beyond the down grace (30 s after DOWN at 15 s)
        heartbeat(c, "n1", t)
        await c.run(t + 0.5)
    return c, db


async def test_a_waiting_service_stays_on_its_lost_node_and_restarts_there_when_it_returns() -> None:
    c, db = await start_on_n2(WAIT)
    assert [(x.meta.id, x.node) for x in live(c)] == [(db.meta.id, "n2")]  # not rescheduled
    assert "slot 1 waits for its node n2 to return (x-ccs.on_node_loss: wait)" in c.service("shop", "db").status.message

    # n2 returns; its engine was killed with it, so the agent reports the container exited.
    heartbeat(c, "n1", 60.0)
    heartbeat(c, "n2", 60.0)
    [db] = live(c)
    report(c, db, pb.CONTAINER_STATE_EXITED, 60.0)
    await c.run(62.0)  # past the restart delay (1 s)
    [replacement] = live(c)  # placed in that pass: its dead predecessor's port is free
    assert replacement.status.state == pb.CONTAINER_STATE_ASSIGNED
    assert replacement.meta.id != db.meta.id
    assert (replacement.node, replacement.meta.labels[LABEL_HOME_NODE]) == ("n2", "n2")


async def test_a_rescheduled_service_moves_and_its_restarts_go_anywhere() -> None:
    c, db = await start_on_n2(RESCHEDULE)
    await c.run(51.0)  # the pass after the one that gave it up replaces it (node_pass: deferred)
    [moved] = live(c)
    assert moved.meta.id != db.meta.id and moved.node == "n1"
    assert LABEL_HOME_NODE not in moved.meta.labels


async def test_a_homed_restart_waits_for_its_node_with_the_reason() -> None:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop")
    put_db(c, WAIT)
    await c.run(1.0)
    [db] = live(c)
    report(c, db, pb.CONTAINER_STATE_EXITED, 1.0)  # it died, and its node is lost before the restart
    lost = c.state.nodes[db.node]
    lost.status.state = pb.NODE_STATE_DOWN
    c.put(keys.node(C, db.node), lost)
    await c.run(3.0)
    [pending] = live(c)
    assert (pending.node, pending.status.state) == ("", pb.CONTAINER_STATE_PENDING)
    assert pending.status.message.startswith(f"waits for its node {db.node}: ")
    assert f"1 unplaced: waits for its node {db.node}" in c.service("shop", "db").status.message


def test_a_bad_value_is_refused_naming_the_field() -> None:
    with pytest.raises(TemplateError) as info:
        spec_of("    x-ccs: {on_node_loss: later}\n")
    assert [str(e) for e in info.value.errors] == [
        "services.db.x-ccs.on_node_loss: must be one of: wait, reschedule (got 'later') (line 4)"]
