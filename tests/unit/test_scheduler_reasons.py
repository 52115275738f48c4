"""Table tests of what the scheduler says: unplaced reasons, eligible nodes, invalid specs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler import (
    ClusterView,
    InvalidSpecError,
    ServiceRef,
    eligible_nodes,
    parse_constraint,
    parse_spread,
    place,
)

from .test_scheduler_helpers import GIB, MIB, container, names, node, spec

DRAIN = pb.NODE_AVAILABILITY_DRAIN
PAUSE = pb.NODE_AVAILABILITY_PAUSE


@dataclass
class Why:
    nodes: list[pb.Node]
    spec: pb.ServiceSpec
    reason: str
    pending: int = 1
    containers: tuple[pb.Container, ...] = ()


REASONS = {
    "no nodes": Why([], spec(), "no nodes in the cluster"),
    "none ready": Why(
        [node("n1", state=pb.NODE_STATE_DOWN), node("n2", availability=DRAIN)],
        spec(),
        "no ready node (2 nodes: 1 down, 1 drained)",
    ),
    "never reported": Why(
        [node("n1", state=pb.NODE_STATE_UNSPECIFIED)], spec(), "no ready node (1 node: 1 not ready)"
    ),
    "label constraint": Why(
        [node("n1", labels={"zone": "us"}), node("n2", labels={"zone": "us"}),
         node("n3", labels={"zone": "us"}), node("n4")],
        spec(constraints=["node.labels.zone == eu"]),
        "no node satisfies node.labels.zone==eu (4 nodes: 3 have zone=us, 1 has no zone label)",
    ),
    "label != constraint": Why(
        [node("n1", labels={"zone": "eu"})], spec(constraints=["node.labels.zone!=eu"]),
        "no node satisfies node.labels.zone!=eu (1 node: 1 has zone=eu)",
    ),
    "role constraint": Why(
        [node("n1"), node("n2")], spec(constraints=["node.role==manager"]),
        "no node satisfies node.role==manager (2 nodes: 2 have role worker)",
    ),
    "hostname constraint does not list every hostname": Why(
        [node("n1"), node("n2")], spec(constraints=["node.hostname==db-host"]),
        "no node satisfies node.hostname==db-host (2 nodes: 2 have another hostname)",
    ),
    "two constraints, each node counted once": Why(
        [node("n1", labels={"zone": "us"}), node("n2", labels={"zone": "eu"})],
        spec(constraints=["node.labels.zone==eu", "node.labels.disk==ssd"]),
        "no node satisfies node.labels.zone==eu and node.labels.disk==ssd "
        "(2 nodes: 1 has no disk label, 1 has zone=us)",
    ),
    "many reasons are summed up": Why(
        [node(f"n{z}", labels={"zone": z}) for z in "abcdef"],
        spec(constraints=["node.labels.zone==x"]),
        "no node satisfies node.labels.zone==x (6 nodes: 1 has zone=a, 1 has zone=b, "
        "1 has zone=c, 1 has zone=d, 2 for other reasons)",
    ),
    "cpu, naming the deepest filter": Why(
        [node("n1", availability=DRAIN), node("n2", availability=DRAIN), node("n3", cpus=0.5)],
        spec(cpus=2),
        "no node has 2 CPUs free (3 nodes: 2 drained, 1 has 0.5 CPUs free)",
    ),
    "cpu taken by live containers": Why(
        [node("n1", cpus=2)], spec(cpus=1),
        "no node has 1 CPU free (1 node: 1 has 0.25 CPUs free)",
        containers=(container("db-1", "n1", of=spec(cpus=1.75)),),
    ),
    "memory": Why(
        [node("n1", availability=PAUSE), node("n2", memory=256 * MIB)], spec(memory=512 * MIB),
        "no node has 512 MiB memory free (2 nodes: 1 paused, 1 has 256 MiB memory free)",
    ),
    "memory in GiB": Why(
        [node("n1", memory=GIB)], spec(memory=3 * GIB // 2),
        "no node has 1.5 GiB memory free (1 node: 1 has 1 GiB memory free)",
    ),
    "port": Why(
        [node("n1"), node("n2", availability=DRAIN)], spec(ports=[(8080, "tcp")]),
        "port 8080/tcp is taken on every eligible node (2 nodes: 1 drained, 1 uses port 8080/tcp)",
        containers=(container("lb-1", "n1", of=spec(ports=[(8080, "tcp")])),),
    ),
    "several ports": Why(
        [node("n1"), node("n2")], spec(ports=[(80, "tcp"), (443, "tcp")]),
        "every eligible node already uses one of ports 80/tcp, 443/tcp "
        "(2 nodes: 1 uses port 443/tcp, 1 uses port 80/tcp)",
        containers=(container("a", "n1", of=spec(ports=[(80, "tcp")])),
                    container("b", "n2", of=spec(ports=[(443, "tcp")]))),
    ),
    "max replicas per node, after placing some": Why(
        [node("n1"), node("n2")], spec(max_per_node=2),
        "every eligible node already runs max_replicas_per_node=2 (2 nodes: 2 run 2 replicas)",
        pending=5,
    ),
    "global service on every node already": Why(
        [node("n1")], spec(mode=pb.SERVICE_MODE_GLOBAL),
        "every eligible node already runs this global service (1 node: 1 runs 1 replica)",
        pending=2,
    ),
}


@pytest.mark.parametrize("why", REASONS.values(), ids=REASONS.keys())
def test_unplaced_reason(why: Why) -> None:
    result = place(ServiceRef("app", "web", why.spec), names(why.pending), why.nodes,
                   why.containers)
    assert result.unplaced, "expected at least one container left unplaced"
    assert set(result.unplaced.values()) == {why.reason}
    assert list(result.unplaced) == names(why.pending)[len(result.assigned):]


ELIGIBLE = {
    "all ready nodes": (spec(), ["n1", "n2", "n4"], ""),
    "constrained": (spec(constraints=["node.labels.zone==eu"]), ["n1"], ""),
    "capacity is not checked (a full node still needs its global container)": (
        spec(cpus=64, ports=[(80, "tcp")]), ["n1", "n2", "n4"], ""),
    "none": (
        spec(constraints=["node.labels.zone==ap"]),
        [],
        "no node satisfies node.labels.zone==ap "
        "(4 nodes: 1 drained, 1 has no zone label, 1 has zone=eu, 1 has zone=us)",
    ),
}
ELIGIBLE_NODES = [
    node("n4", labels={"zone": "us"}),
    node("n3", labels={"zone": "eu"}, availability=DRAIN),
    node("n2"),
    node("n1", labels={"zone": "eu"}),
]


@pytest.mark.parametrize(("svc", "expect", "reason"), ELIGIBLE.values(), ids=ELIGIBLE.keys())
def test_eligible_nodes(svc: pb.ServiceSpec, expect: list[str], reason: str) -> None:
    got, why = eligible_nodes(svc, ELIGIBLE_NODES)
    assert [n.meta.name for n in got] == expect
    assert why == reason


INVALID_SPECS = {
    "no operator": (spec(constraints=["node.labels.zone=eu"]), "placement.constraints[0]"),
    "two operators": (spec(constraints=["node.role==worker!=x"]), "placement.constraints[0]"),
    "unknown key": (spec(constraints=["node.role==worker", "node.zone==eu"]),
                    "placement.constraints[1]"),
    "bad role": (spec(constraints=["node.role==boss"]), "placement.constraints[0]"),
    "empty value": (spec(constraints=["node.labels.zone=="]), "placement.constraints[0]"),
    "empty label name": (spec(constraints=["node.labels.==eu"]), "placement.constraints[0]"),
    "spread over a non-label": (spec(spread=["node.hostname"]), "placement.spread[0]"),
    "negative cpus": (spec(cpus=-1), "resources.reservations.cpus"),
    "negative memory": (spec(memory=-1), "resources.reservations.memory_bytes"),
    "port published twice": (spec(ports=[(80, "tcp"), (80, "tcp")]), "ports[1].published"),
    "unknown protocol": (spec(ports=[(80, "http")]), "ports[0].protocol"),
}


@pytest.mark.parametrize(("svc", "field"), INVALID_SPECS.values(), ids=INVALID_SPECS.keys())
def test_invalid_spec_names_the_field(svc: pb.ServiceSpec, field: str) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        place(ServiceRef("app", "web", svc), ["web-1"], [node("n1")])
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_constraint_error_explains_what_is_accepted() -> None:
    with pytest.raises(InvalidSpecError, match=r"unknown key 'node\.zone'; supported keys: node\.id"):
        parse_constraint("node.zone==eu")
    with pytest.raises(InvalidSpecError, match="expected KEY==VALUE or KEY!=VALUE"):
        parse_constraint("zone")


def test_parsed_constraint_and_spread() -> None:
    parsed = parse_constraint("  Node.Labels.Zone != EU ")
    assert (parsed.key, parsed.label, parsed.equal, parsed.value) == (
        "node.labels.Zone", "Zone", False, "EU"
    )
    assert str(parse_constraint("NODE.ROLE == manager")) == "node.role==manager"
    assert parse_spread(["node.labels.zone", " node.labels.rack "]) == ("zone", "rack")


@pytest.mark.parametrize(
    ("nodes", "pending", "message"),
    [
        ([node("n1"), node("n1")], ["web-1"], "node.meta.name: 'n1' appears twice"),
        ([node("")], ["web-1"], "node.meta.name: must not be empty"),
        ([node("n1")], ["web-1", "web-1"], "pending: container names appear twice: web-1"),
    ],
    ids=["duplicate node", "unnamed node", "duplicate pending"],
)
def test_bad_input_is_refused(nodes: list[pb.Node], pending: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterView(nodes).place(ServiceRef("app", "web", spec()), pending)
