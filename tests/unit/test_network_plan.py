"""NetworkMap -> routes, networks, names, problems; and the route diff. Pure, tables of cases."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ccs.v1 import agent_pb2 as apb
from nodeagent.network.endpoints import _parse, changes
from nodeagent.network.plan import DEFAULT_ROUTE, Endpoint, NetKey, endpoint_routes, plan_fabric, route_changes


def block(node: str, address: str, subnet: str) -> apb.NetworkBlock:
    return apb.NetworkBlock(node=node, node_address=address, subnet=subnet)


def shop_map(pod_cidr: str = "10.128.0.0/9") -> apb.NetworkMap:
    return apb.NetworkMap(
        cluster="prod", version=7, pod_cidr=pod_cidr,
        networks=[
            apb.AppNetwork(
                application="shop", network="default",
                blocks=[block("n1", "10.0.0.1", "10.128.0.0/28"), block("n2", "10.0.0.2", "10.128.0.16/28"),
                        block("n3", "10.0.0.3", "10.128.0.32/28")],
                names=[apb.NetworkName(name="DB.", addresses=["10.128.0.18", "10.128.0.2"])],
            ),
            apb.AppNetwork(
                application="shop", network="back", internal=True,
                blocks=[block("n1", "10.0.0.1", "10.128.1.0/28"), block("n2", "10.0.0.2", "10.128.1.16/28")],
            ),
        ],
    )


def test_routes_go_to_the_other_nodes_blocks_via_their_addresses() -> None:
    plan = plan_fabric(shop_map(), node="n1")
    assert plan.routes == {
        IPv4Network("10.128.0.16/28"): IPv4Address("10.0.0.2"),
        IPv4Network("10.128.0.32/28"): IPv4Address("10.0.0.3"),
        IPv4Network("10.128.1.16/28"): IPv4Address("10.0.0.2"),
    }
    assert plan.problems == ()
    assert plan.pod_cidr == IPv4Network("10.128.0.0/9")
    assert plan.local_blocks == (IPv4Network("10.128.0.0/28"), IPv4Network("10.128.1.0/28"))


def test_networks_keep_every_block_and_know_their_local_ones_and_names() -> None:
    plan = plan_fabric(shop_map(), node="n2")
    back, default = plan.networks  # sorted by key
    assert back.key == NetKey("shop", "back") and back.internal
    assert back.local == (IPv4Network("10.128.1.16/28"),)
    assert default.blocks == tuple(IPv4Network(s) for s in ("10.128.0.0/28", "10.128.0.16/28", "10.128.0.32/28"))
    assert default.names == {"db": (IPv4Address("10.128.0.2"), IPv4Address("10.128.0.18"))}


def test_the_agents_cluster_names_the_plan() -> None:
    assert plan_fabric(shop_map(), node="n1").cluster == "prod"
    assert plan_fabric(shop_map(), node="n1", cluster="mine").cluster == "mine"


def test_an_empty_map_is_an_empty_plan() -> None:
    plan = plan_fabric(apb.NetworkMap(cluster="prod", version=3), node="n1")
    assert plan.empty and plan.routes == {} and plan.local_blocks == ()


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (block("n2", "10.0.0.2", "10.128.1.33/28"), "networks[1].blocks[2].subnet: must be an IPv4 network"),
        (block("n2", "10.0.0.2", "192.168.0.0/28"), "networks[1].blocks[2].subnet: 192.168.0.0/28 is outside the pod range"),
        (block("n4", "not-an-ip", "10.128.1.48/28"), "networks[1].blocks[2].node_address: must be an IPv4 address"),
        (block("", "10.0.0.4", "10.128.1.48/28"), "networks[1].blocks[2].node: must not be empty"),
        (block("n9", "10.0.0.9", "10.128.0.0/28"), "networks[1].blocks[2].subnet: 10.128.0.0/28 is also a block of shop/default"),
    ],
)
def test_a_bad_block_is_named_and_skipped_and_the_rest_is_kept(bad: apb.NetworkBlock, problem: str) -> None:
    m = shop_map()
    m.networks[1].blocks.append(bad)
    plan = plan_fabric(m, node="n1")
    assert any(p.startswith(problem) for p in plan.problems), plan.problems
    assert IPv4Network("10.128.0.16/28") in plan.routes  # the good blocks still route


def test_one_subnet_with_two_gateways_keeps_the_first() -> None:
    m = shop_map()
    m.networks[0].blocks.append(block("n4", "10.0.0.4", "10.128.0.16/28"))
    plan = plan_fabric(m, node="n1")
    assert plan.routes[IPv4Network("10.128.0.16/28")] == IPv4Address("10.0.0.2")
    assert any("conflicts with via 10.0.0.2" in p for p in plan.problems)


def test_bad_name_addresses_are_named() -> None:
    m = shop_map()
    m.networks[0].names.append(apb.NetworkName(name="web", addresses=["10.128.0.3", "x"]))
    plan = plan_fabric(m, node="n1")
    assert plan.networks[1].names["web"] == (IPv4Address("10.128.0.3"),)
    assert "networks[0].names[1].addresses[1]: must be an IPv4 address, got 'x'" in plan.problems


def test_a_bad_pod_range_is_named() -> None:
    plan = plan_fabric(shop_map(pod_cidr="10.128.0.0/99"), node="n1")
    assert plan.pod_cidr is None
    assert plan.problems[0].startswith("pod_cidr: must be an IPv4 network")


def test_a_network_listed_twice_uses_the_first() -> None:
    m = shop_map()
    m.networks.append(apb.AppNetwork(application="shop", network="default"))
    plan = plan_fabric(m, node="n1")
    assert len(plan.networks) == 2
    assert "networks[2]: network shop/default is listed twice; the first entry is used" in plan.problems


N = IPv4Network
A = IPv4Address


@pytest.mark.parametrize(
    ("desired", "current", "upserts", "deletes"),
    [
        ({}, {}, {}, []),
        ({N("10.1.0.0/28"): A("10.0.0.2")}, {}, {N("10.1.0.0/28"): A("10.0.0.2")}, []),
        ({N("10.1.0.0/28"): A("10.0.0.2")}, {N("10.1.0.0/28"): A("10.0.0.2")}, {}, []),
        ({N("10.1.0.0/28"): A("10.0.0.3")}, {N("10.1.0.0/28"): A("10.0.0.2")}, {N("10.1.0.0/28"): A("10.0.0.3")}, []),
        ({}, {N("10.1.0.0/28"): A("10.0.0.2")}, {}, [N("10.1.0.0/28")]),
    ],
)
def test_route_changes(
    desired: dict[IPv4Network, IPv4Address], current: dict[IPv4Network, IPv4Address],
    upserts: dict[IPv4Network, IPv4Address], deletes: list[IPv4Network],
) -> None:
    assert route_changes(desired, current) == (upserts, deletes)


def test_members_on_other_nodes_are_routed_via_their_node_and_kept_with_their_network() -> None:
    """A container on front and back on n2 sends from its front address; n1 (back only) routes
    that /32 via n2 and counts it as back's. A member outside the pod range, or not one address,
    is named and skipped; a shared network's entries carry the cluster network they join."""
    m = shop_map()
    m.networks[1].members.extend([block("n2", "10.0.0.2", "10.128.5.2/32"), block("n1", "10.0.0.1", "10.128.6.2/32"),
                                  block("n2", "10.0.0.2", "192.168.0.2/32"), block("n2", "10.0.0.2", "10.128.5.0/28")])
    m.networks[0].shared = "team"
    plan = plan_fabric(m, node="n1")
    assert plan.routes[IPv4Network("10.128.5.2/32")] == IPv4Address("10.0.0.2")
    assert IPv4Network("10.128.6.2/32") not in plan.routes  # its container is on this node
    back = next(n for n in plan.networks if n.key == NetKey("shop", "back"))
    assert back.members == (IPv4Network("10.128.5.2/32"), IPv4Network("10.128.6.2/32"))
    assert plan.problems == (
        "networks[1].members[2].subnet: 192.168.0.2/32 is not one address of the pod range; skipped",
        "networks[1].members[3].subnet: 10.128.5.0/28 is not one address of the pod range; skipped",
    )
    groups = plan.groups()
    assert [n.key for n in groups["\0team"]] == [NetKey("shop", "default")]
    assert [n.key for n in groups["shop\0back"]] == [NetKey("shop", "back")]


def endpoint_map() -> apb.NetworkMap:
    """shop's front (n1, n2) and back (n1, internal); blog's net and shop's pub join "team"."""
    return apb.NetworkMap(cluster="prod", version=1, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="blog", network="net", shared="team",
                       blocks=[block("n2", "10.0.0.2", "10.128.3.0/28")]),
        apb.AppNetwork(application="shop", network="back", internal=True,
                       blocks=[block("n1", "10.0.0.1", "10.128.1.0/28")]),
        apb.AppNetwork(application="shop", network="front",
                       blocks=[block("n1", "10.0.0.1", "10.128.0.0/28"), block("n2", "10.0.0.2", "10.128.0.16/28")]),
        apb.AppNetwork(application="shop", network="pub", shared="team",
                       blocks=[block("n1", "10.0.0.1", "10.128.2.0/28")]),
    ])


def test_a_container_on_several_networks_routes_each_networks_blocks_via_that_network() -> None:
    """Every other block of each of its networks (every application's, for a shared one) goes via
    that network's gateway from its address there; the default route via the first network of
    its service that is not internal. One network, or networks the map lacks: nothing."""
    plan = plan_fabric(endpoint_map(), node="n1")
    ip = IPv4Address
    api = Endpoint(4242, "shop", (("back", ip("10.128.1.5")), ("front", ip("10.128.0.3")), ("pub", ip("10.128.2.4"))))
    assert endpoint_routes(plan, api) == {
        IPv4Network("10.128.0.16/28"): (ip("10.128.0.1"), ip("10.128.0.3")),  # front on n2
        IPv4Network("10.128.3.0/28"): (ip("10.128.2.1"), ip("10.128.2.4")),  # blog's entry of team
        DEFAULT_ROUTE: (ip("10.128.0.1"), ip("10.128.0.3")),  # back is internal: front holds it
    }
    assert endpoint_routes(plan, Endpoint(1, "shop", (("front", ip("10.128.0.3")),))) == {}
    assert endpoint_routes(plan, Endpoint(1, "shop", (("front", ip("10.128.0.3")), ("gone", ip("10.128.9.2"))))) == {}
    assert endpoint_routes(plan, Endpoint(1, "shop", (("front", ip("10.128.0.3")), ("back", ip("172.17.0.2"))))) == {}


def test_endpoint_route_changes_read_what_ip_prints() -> None:
    ip = IPv4Address
    current = _parse([
        {"dst": "default", "gateway": "10.128.1.1", "prefsrc": "10.128.1.5", "protocol": "204"},
        {"dst": "10.128.0.16/28", "gateway": "10.128.0.1", "prefsrc": "10.128.0.3"},
        {"dst": "10.128.9.0/28", "gateway": "10.128.0.1", "prefsrc": "10.128.0.3"},
        {"dst": "10.128.0.0/28", "dev": "eth0", "prefsrc": "10.128.0.3"},  # not ours: no gateway
    ])
    desired = {IPv4Network("10.128.0.16/28"): (ip("10.128.0.1"), ip("10.128.0.3")),
               DEFAULT_ROUTE: (ip("10.128.0.1"), ip("10.128.0.3"))}
    assert changes(desired, current) == [
        "route del 10.128.9.0/28 proto 204",
        "route replace default via 10.128.0.1 src 10.128.0.3 proto 204",
    ]
    assert changes(desired, desired) == []
