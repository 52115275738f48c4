"""Mixed versions during a rolling upgrade hold a pair's growth (`controlplane.ipam.growth`),
and the pass leaves the container that would need a further block pending with that reason,
while a first block is still handed out. Pure: tables of cases, no etcd."""

from __future__ import annotations

import pytest

from ccs.features import FEATURES, SUBNET_GROWTH
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState
from controlplane.ipam import DEFAULT_NETWORK, GROWTH_HELD, ShareBlock, fill_share, growth_hold
from controlplane.reconcile.subnets import PassSubnets
from controlplane.reconcile.writes import Writes

NEW = list(FEATURES)


@pytest.mark.parametrize(("agent", "version", "replicas", "held"), [
    (NEW, "0.2.0", {"a:7443": NEW, "b:7443": NEW}, ""),
    ([], "0.1.0", {"a:7443": NEW}, "the agent on n1 (ccs 0.1.0) predates further address blocks"),
    ([], "", {}, "the agent on n1 (an unknown version) predates"),
    (["something-else"], "0.1.0", {}, "the agent on n1 (ccs 0.1.0) predates"),
    (NEW, "0.2.0", {"a:7443": NEW, "c:7443": (), "b:7443": ()}, "API replica b:7443, c:7443 predates"),
    (NEW, "0.2.0", {}, ""),
])
def test_growth_is_held_while_the_agent_or_any_live_replica_is_older(
    agent: list[str], version: str, replicas: dict[str, list[str]], held: str
) -> None:
    reason = growth_hold("n1", agent, version, replicas)
    assert (reason == "") == (held == "")
    assert held in reason
    if "agent" in held:
        assert reason.endswith("upgrade it")
    elif held:
        assert reason.endswith("finish upgrading the control plane")


def test_a_held_pair_keeps_filling_its_blocks_and_gets_no_further_one() -> None:
    import ipaddress

    handed: list[int] = []

    def allocate(prefix: int) -> ipaddress.IPv4Network:
        handed.append(prefix)
        return ipaddress.IPv4Network("10.128.1.0/27")

    first = ShareBlock(0, ipaddress.IPv4Network("10.128.0.0/28"), holders=11)
    fill = fill_share([first], 4, 0, allocate, may_grow=False)
    assert [b.index if b else None for b in fill.assigned] == [0, 0, None, None]
    assert (fill.new, fill.short, handed) == ([], GROWTH_HELD, [])
    fresh = fill_share([], 1, 0, allocate, may_grow=False)  # the first block is never held
    assert fresh.assigned[0] is not None and fresh.new and fresh.short == ""


def _state(features: list[str]) -> ClusterState:
    st = ClusterState("c1", exists=True, pod_cidr="10.128.0.0/12")
    st.nodes["n1"] = pb.Node(status=pb.NodeStatus(agent_version="0.1.0", agent_features=features))
    st.subnets[("n1", "shop", DEFAULT_NETWORK, 0)] = pb.SubnetAllocation(
        application="shop", network=DEFAULT_NETWORK, node="n1", subnet="10.128.0.0/28")
    return st


def _ctr(name: str) -> pb.Container:
    return pb.Container(meta=pb.Meta(name=name), cluster="c1", application="shop", service="web", node="n1",
                        desired_state=pb.DESIRED_STATE_RUNNING)


@pytest.mark.parametrize(("features", "replicas", "why"), [
    ([], {}, "held: the agent on n1 (ccs 0.1.0) predates further address blocks"),
    (NEW, {"old:7443": []}, "held: API replica old:7443 predates further address blocks"),
])
def test_a_container_that_would_need_growth_stays_pending_and_says_why(
    features: list[str], replicas: dict[str, list[str]], why: str
) -> None:
    st = _state(features)
    s, writes = PassSubnets(st, lambda _k: None, replicas=replicas), Writes()
    placed = [_ctr(f"web-{i}") for i in range(14)]  # a /28 has room for 13
    unplaced = s.attach("shop", placed, writes)
    assert [c.meta.name for c in unplaced] == ["web-13"]
    (left,) = unplaced
    assert (left.node, left.status.state) == ("", pb.CONTAINER_STATE_PENDING)
    assert left.status.message.startswith("network default of shop on n1 needs another address block, " + why)
    assert writes.pending() == []  # no further block handed out
    assert all(c.subnets[DEFAULT_NETWORK] == "10.128.0.0/28" for c in placed[:13])


def test_once_every_part_is_new_the_pair_grows() -> None:
    s, writes = PassSubnets(_state([SUBNET_GROWTH]), lambda _k: None, replicas={"a:7443": NEW}), Writes()
    placed = [_ctr(f"web-{i}") for i in range(14)]
    assert s.attach("shop", placed, writes) == []
    assert placed[-1].subnet_index[DEFAULT_NETWORK] == 1
