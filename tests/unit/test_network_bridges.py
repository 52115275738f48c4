"""Which application bridges a node removes after a map (`nodeagent.network.bridges`), and the
sweeper that removes them, on the in-memory runtime. Pure tables of cases."""

from __future__ import annotations

import pytest

from ccs.v1 import agent_pb2 as apb
from ccs.v1 import resources_pb2 as pb
from nodeagent.network.bridges import stale_bridges
from nodeagent.network.plan import plan_fabric
from nodeagent.network.sweep import BridgeSweeper
from nodeagent.runtime import FakeRuntime, naming
from nodeagent.runtime.types import Bridge


def block(node: str, subnet: str) -> apb.NetworkBlock:
    return apb.NetworkBlock(node=node, node_address=f"192.0.2.{node[-1]}", subnet=subnet)


def shop_map(*blocks: apb.NetworkBlock, network: str = "default") -> apb.NetworkMap:
    return apb.NetworkMap(cluster="prod", version=3, pod_cidr="10.128.0.0/9",
                          networks=[apb.AppNetwork(application="shop", network=network, blocks=list(blocks))])


FIRST = Bridge("ccs-prod_shop", "shop", "default", ("10.128.0.0/28",))
SECOND = Bridge("ccs-prod_shop.1", "shop", "default", ("10.128.0.64/26",))


@pytest.mark.parametrize(("listed", "wanted", "stale"), [
    # both blocks listed on this node: nothing to remove
    ([block("n1", "10.128.0.0/28"), block("n1", "10.128.0.64/26")], [], []),
    # the further block freed: its bridge goes, the first stays
    ([block("n1", "10.128.0.0/28")], [], ["ccs-prod_shop.1"]),
    # freed and handed to another node, as part of a larger block: still this node's to remove
    ([block("n1", "10.128.0.0/28"), block("n2", "10.128.0.0/25")], [], ["ccs-prod_shop.1"]),
    # not listed yet, but an assigned container holds it (the map lags the assignment)
    ([block("n1", "10.128.0.0/28")], ["10.128.0.64/26"], []),
    # the application left this node: the map has none of its networks
    ([], [], ["ccs-prod_shop", "ccs-prod_shop.1"]),
])
def test_a_bridge_whose_block_the_map_no_longer_lists_here_is_stale(
    listed: list[apb.NetworkBlock], wanted: list[str], stale: list[str]
) -> None:
    m = shop_map(*listed) if listed else apb.NetworkMap(cluster="prod", version=4, pod_cidr="10.128.0.0/9")
    assert stale_bridges(plan_fabric(m, node="n1"), [FIRST, SECOND], wanted) == stale


def test_blocks_are_per_network_and_bridges_without_subnet_or_application_are_left_alone() -> None:
    plan = plan_fabric(shop_map(block("n1", "10.128.0.0/28")), node="n1")
    other_network = Bridge("ccs-prod_shop_back", "shop", "back", ("10.128.0.0/28",))  # same subnet, other network
    pools = Bridge("ccs-prod-shop", "shop", "default", ())  # made on the engine's pools, before blocks
    unowned = Bridge("ccs-prod-x", "", "default", ("10.128.1.0/28",))
    assert stale_bridges(plan, [FIRST, other_network, pools, unowned], []) == ["ccs-prod_shop_back"]


def test_subnets_compare_whatever_their_spelling() -> None:
    plan = plan_fabric(shop_map(block("n1", "10.128.0.0/28")), node="n1")
    assert stale_bridges(plan, [Bridge("b", "shop", "default", ("10.128.0.1/28",))], []) == []


def _on(c_id: str, subnet: str, index: int) -> pb.Container:
    c = pb.Container(meta=pb.Meta(id=c_id, name=f"web-{c_id}"), cluster="prod", application="shop", service="web",
                     node="n1", slot=int(c_id), spec=pb.ServiceSpec(image="busybox"),
                     desired_state=pb.DESIRED_STATE_RUNNING)
    c.subnets["default"] = subnet
    if index:
        c.subnet_index["default"] = index
    return c


async def test_the_sweeper_removes_a_freed_blocks_bridge_once_no_container_uses_it() -> None:
    rt = FakeRuntime()
    first, second = _on("1", "10.128.0.0/28", 0), _on("2", "10.128.0.64/26", 1)
    for c in (first, second):
        await rt.prepare(c)
    held = await rt.create(second)
    sweep = BridgeSweeper(rt, "prod", lambda: ())
    plan = plan_fabric(shop_map(block("n1", "10.128.0.0/28")), node="n1")
    name = naming.network_name("prod", "shop", "default", 1)
    assert await sweep(plan) == ""
    assert name in rt.networks  # a container still uses it: kept, tried again on the next apply
    await rt.remove(held, volumes=True)
    assert await sweep(plan) == ""
    assert name not in rt.networks
    assert naming.network_name("prod", "shop") in rt.networks


async def test_the_sweeper_reads_the_engine_again_only_when_something_moved() -> None:
    class Counting(FakeRuntime):
        listed = 0

        async def app_networks(self, cluster: str) -> list[Bridge]:
            self.listed += 1
            return await super().app_networks(cluster)

    rt = Counting()
    await rt.prepare(_on("1", "10.128.0.0/28", 0))
    wanted: list[str] = []
    sweep = BridgeSweeper(rt, "prod", lambda: wanted)
    plan = plan_fabric(shop_map(block("n1", "10.128.0.0/28")), node="n1")
    await sweep(plan)
    await sweep(plan)  # the periodic re-apply of the same map: nothing to look at
    assert rt.listed == 1
    wanted.append("10.128.0.64/26")  # an assignment for a new block
    await sweep(plan)
    assert rt.listed == 2
    await sweep(plan_fabric(shop_map(block("n1", "10.128.0.0/28"), block("n1", "10.128.0.64/26")), node="n1"))
    assert rt.listed == 3
