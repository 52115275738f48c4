"""Table tests of where the scheduler puts containers: filters, scoring, modes, determinism."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler import ClusterView, PlacementResult, ServiceRef, place

from .test_scheduler_helpers import GIB, MIB, container, names, node, per_node, spec

MANAGER = pb.NODE_ROLE_MANAGER
UNSET_ROLE = pb.NODE_ROLE_UNSPECIFIED


@dataclass
class Case:
    nodes: list[pb.Node]
    spec: pb.ServiceSpec
    pending: int
    expect: dict[str, int]  # node name -> containers of this service placed there
    containers: list[pb.Container] = field(default_factory=list)
    unplaced: int = 0


THREE = [node("n1"), node("n2"), node("n3")]
ZONED = [
    node("n1", labels={"zone": "eu"}),
    node("n2", labels={"zone": "us"}),
    node("n3"),
]

PLACEMENT_CASES = {
    # ---- constraints
    "label ==": Case(ZONED, spec(constraints=["node.labels.zone==eu"]), 2, {"n1": 2}),
    "label != keeps nodes without the label": Case(
        ZONED, spec(constraints=["node.labels.zone!=eu"]), 2, {"n2": 1, "n3": 1}
    ),
    "whitespace and value case are ignored": Case(
        ZONED, spec(constraints=["  node.labels.zone ==  EU "]), 1, {"n1": 1}
    ),
    "two constraints are ANDed": Case(
        [node("n1", labels={"zone": "eu"}, role=MANAGER), node("n2", labels={"zone": "eu"})],
        spec(constraints=["node.labels.zone==eu", "node.role==worker"]),
        2,
        {"n2": 2},
    ),
    "role == manager": Case(
        [node("n1"), node("n2", role=MANAGER)], spec(constraints=["node.role==manager"]), 2,
        {"n2": 2},
    ),
    "unset role is a worker": Case(
        [node("n1", role=UNSET_ROLE), node("n2", role=MANAGER)],
        spec(constraints=["node.role == worker"]), 1, {"n1": 1},
    ),
    "hostname ==": Case(THREE, spec(constraints=["node.hostname==host-n3"]), 2, {"n3": 2}),
    "id !=": Case(THREE, spec(constraints=["node.id!=id-n1"]), 2, {"n2": 1, "n3": 1}),
    "platform os": Case(
        [node("n1", os="windows"), node("n2")], spec(constraints=["node.platform.os==linux"]), 1,
        {"n2": 1},
    ),
    # ---- readiness and availability
    "drained, paused, down and disconnected nodes take nothing": Case(
        [
            node("n1", availability=pb.NODE_AVAILABILITY_DRAIN),
            node("n2", availability=pb.NODE_AVAILABILITY_PAUSE),
            node("n3", state=pb.NODE_STATE_DOWN),
            node("n4", state=pb.NODE_STATE_DISCONNECTED),
            node("n5", availability=pb.NODE_AVAILABILITY_UNSPECIFIED),
        ],
        spec(), 3, {"n5": 3},
    ),
    # ---- resources
    "cpu reserved by live containers is not free": Case(
        [node("n1", cpus=2), node("n2", cpus=2)], spec(cpus=1.5), 1, {"n2": 1},
        containers=[container("db-1", "n1", of=spec(cpus=1))],
    ),
    "stopped and unassigned containers reserve nothing": Case(
        [node("n1", cpus=2)], spec(cpus=2), 1, {"n1": 1},
        containers=[
            container("db-1", "n1", of=spec(cpus=2), desired=pb.DESIRED_STATE_STOPPED),
            container("db-2", "", of=spec(cpus=2)),
        ],
    ),
    "memory reserved by live containers is not free": Case(
        [node("n1", memory=GIB), node("n2", memory=GIB)], spec(memory=768 * MIB), 1, {"n2": 1},
        containers=[container("db-1", "n1", of=spec(memory=512 * MIB))],
    ),
    "reservations add up within one call": Case(
        THREE, spec(cpus=1.5), 7, {"n1": 2, "n2": 2, "n3": 2}, unplaced=1
    ),
    # ---- host ports
    "a used host port moves the container": Case(
        [node("n1"), node("n2")], spec(ports=[(8080, "tcp")]), 1, {"n2": 1},
        containers=[container("lb-1", "n1", of=spec(ports=[(8080, "tcp")]))],
    ),
    "the same port number over another protocol does not conflict": Case(
        [node("n1")], spec(ports=[(53, "udp")]), 1, {"n1": 1},
        containers=[container("dns-1", "n1", of=spec(ports=[(53, "tcp")]))],
    ),
    "replicas of a service with a host port need a node each": Case(
        [node("n1"), node("n2")], spec(ports=[(8080, "tcp")]), 3, {"n1": 1, "n2": 1}, unplaced=1
    ),
    # ---- max replicas per node and global mode
    "max_replicas_per_node": Case(
        THREE, spec(max_per_node=2), 7, {"n1": 2, "n2": 2, "n3": 2}, unplaced=1
    ),
    "max_replicas_per_node counts live replicas": Case(
        [node("n1"), node("n2")], spec(max_per_node=1), 2, {"n2": 1}, unplaced=1,
        containers=[container("web-0", "n1", service="web")],
    ),
    "global: one per eligible node": Case(
        [*THREE, node("n4", availability=pb.NODE_AVAILABILITY_DRAIN)],
        spec(mode=pb.SERVICE_MODE_GLOBAL), 4, {"n1": 1, "n2": 1, "n3": 1}, unplaced=1,
    ),
    "global: only the node without one gets it": Case(
        THREE, spec(mode=pb.SERVICE_MODE_GLOBAL), 1, {"n2": 1},
        containers=[
            container("web-a", "n1", service="web"), container("web-c", "n3", service="web")
        ],
    ),
    # ---- scoring
    "replicas spread over nodes": Case(THREE, spec(), 6, {"n1": 2, "n2": 2, "n3": 2}),
    "fewest of this service first, even on a busier node": Case(
        THREE, spec(), 2, {"n2": 1, "n3": 1},
        containers=[container("web-0", "n1", service="web"), container("x", "n3", service="x")],
    ),
    "then least loaded": Case(
        THREE, spec(), 2, {"n2": 1, "n3": 1},
        containers=[container("x-1", "n1"), container("x-2", "n1"), container("x-3", "n2")],
    ),
    "then node name": Case(list(reversed(THREE)), spec(), 1, {"n1": 1}),
    "spread over zones, not nodes: a(2 nodes) b(1 node) -> 3/3": Case(
        [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}),
         node("b1", labels={"zone": "b"})],
        spec(spread=["node.labels.zone"]), 6, {"a1": 2, "a2": 1, "b1": 3},
    ),
    "spread counts live replicas per zone": Case(
        [node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"}),
         node("b2", labels={"zone": "b"})],
        spec(spread=["node.labels.zone"]), 3, {"a1": 1, "b1": 1, "b2": 1},
        containers=[container("web-0", "a1", service="web"),
                    container("web-9", "a1", service="web")],
    ),
    "nodes without the label form their own group": Case(
        [node("a1", labels={"zone": "a"}), node("x1"), node("x2")],
        spec(spread=["node.labels.zone"]), 4, {"a1": 2, "x1": 1, "x2": 1},
    ),
    "nested spread: zone, then rack": Case(
        [node("a-r1-1", labels={"zone": "a", "rack": "r1"}),
         node("a-r1-2", labels={"zone": "a", "rack": "r1"}),
         node("a-r2-1", labels={"zone": "a", "rack": "r2"}),
         node("b-r3-1", labels={"zone": "b", "rack": "r3"})],
        spec(spread=["node.labels.zone", "node.labels.rack"]), 8,
        {"a-r1-1": 1, "a-r1-2": 1, "a-r2-1": 2, "b-r3-1": 4},
    ),
    "spread still obeys filters": Case(
        [node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"}, cpus=1)],
        spec(spread=["node.labels.zone"], cpus=1), 4, {"a1": 3, "b1": 1},
    ),
}


def run(case: Case) -> PlacementResult:
    return place(ServiceRef("app", "web", case.spec), names(case.pending), case.nodes,
                 case.containers)


@pytest.mark.parametrize("case", PLACEMENT_CASES.values(), ids=PLACEMENT_CASES.keys())
def test_placement(case: Case) -> None:
    result = run(case)
    assert per_node(result) == case.expect
    assert len(result.unplaced) == case.unplaced
    assert set(result.assigned) | set(result.unplaced) == set(names(case.pending))


@pytest.mark.parametrize("case", PLACEMENT_CASES.values(), ids=PLACEMENT_CASES.keys())
def test_same_input_gives_same_output_in_any_order(case: Case) -> None:
    first = run(case)
    assert run(case) == first
    shuffled = Case(case.nodes[::-1], case.spec, case.pending, case.expect, case.containers[::-1])
    random.Random(7).shuffle(shuffled.nodes)
    assert run(shuffled) == first


def mixed_cluster() -> list[pb.Node]:
    return [
        node(f"{zone}{i}", labels={"zone": zone}, cpus=3)
        for zone, count in (("a", 3), ("b", 2), ("c", 1))
        for i in range(count)
    ]


MIXED = spec(spread=["node.labels.zone"], cpus=0.5, ports=[(9000, "tcp")], max_per_node=3)


@pytest.mark.parametrize("split", [1, 4, 9, 13], ids=lambda n: f"first batch {n}")
def test_two_batches_equal_one_on_the_same_view(split: int) -> None:
    web = ServiceRef("app", "web", spec(spread=["node.labels.zone"], cpus=0.5))
    at_once = ClusterView(mixed_cluster()).place(web, names(14))
    view = ClusterView(mixed_cluster())
    first, second = view.place(web, names(14)[:split]), view.place(web, names(14)[split:])
    assert {**first.assigned, **second.assigned} == at_once.assigned
    assert {**first.unplaced, **second.unplaced} == at_once.unplaced
    assert Counter(at_once.assigned.values()) == Counter(view.replicas("app", "web"))


@pytest.mark.parametrize("split", [1, 3, 5], ids=lambda n: f"first batch {n}")
def test_two_batches_equal_one_across_passes(split: int) -> None:
    """Pass 1 places some containers and they are written; pass 2 sees them as live containers."""
    svc = ServiceRef("app", "web", MIXED)
    at_once = place(svc, names(7), mixed_cluster())
    first = place(svc, names(7)[:split], mixed_cluster())
    written = [container(n, on, service="web", of=MIXED) for n, on in first.assigned.items()]
    second = place(svc, names(7)[split:], mixed_cluster(), written)
    assert {**first.assigned, **second.assigned} == at_once.assigned
    assert per_node(at_once) == {"a0": 1, "a1": 1, "a2": 1, "b0": 1, "b1": 1, "c0": 1}
    assert len(at_once.unplaced) == 1


def test_services_in_one_pass_see_each_others_reservations_and_ports() -> None:
    view = ClusterView([node("n1", cpus=2), node("n2", cpus=2)])
    db = view.place(ServiceRef("app", "db", spec(cpus=1.5, ports=[(80, "tcp")])), ["db-1"])
    web = view.place(ServiceRef("app", "web", spec(cpus=1, ports=[(80, "tcp")])), names(2))
    assert db.assigned == {"db-1": "n1"}
    assert web.assigned == {"web-1": "n2"}
    assert web.unplaced == {
        "web-2": "port 80/tcp is taken on every eligible node (2 nodes: 2 use port 80/tcp)"
    }


def test_global_mode_ignores_spread_and_gets_one_per_node() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("b1")]
    svc = spec(mode=pb.SERVICE_MODE_GLOBAL, spread=["node.labels.zone"])
    result = place(ServiceRef("app", "agent", svc), names(3, "agent"), nodes)
    assert per_node(result) == {"a1": 1, "a2": 1, "b1": 1}


def test_no_pending_places_nothing_and_changes_nothing() -> None:
    view = ClusterView(THREE)
    assert view.place(ServiceRef("app", "web", spec()), []) == PlacementResult()
    assert view.replicas("app", "web") == {}


@pytest.mark.parametrize(
    ("on", "assigned", "reason"),
    [
        ("n2", {"agent-n2": "n2"}, None),
        ("n1", {}, "no node has 1 CPU free (1 node: 1 has 0.5 CPUs free)"),
        ("n3", {}, "no ready node (1 node: 1 drained)"),
    ],
    ids=["fits", "full node", "drained node"],
)
def test_place_on_one_node(on: str, assigned: dict[str, str], reason: str | None) -> None:
    """A global container bound to its node still goes through every filter for that node."""
    nodes = [node("n1", cpus=0.5), node("n2"), node("n3", availability=pb.NODE_AVAILABILITY_DRAIN)]
    view = ClusterView(nodes)
    agent = ServiceRef("app", "agent", spec(mode=pb.SERVICE_MODE_GLOBAL, cpus=1))
    result = view.place(agent, [f"agent-{on}"], on=on)
    assert result.assigned == assigned
    assert list(result.unplaced.values()) == ([reason] if reason else [])
    assert view.replicas("app", "agent") == ({on: 1} if assigned else {})


def test_place_on_an_unknown_node_is_refused() -> None:
    with pytest.raises(ValueError, match="on: there is no node named 'n9'"):
        ClusterView(THREE).place(ServiceRef("app", "web", spec()), ["web-1"], on="n9")
