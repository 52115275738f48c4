"""A pair's share grows: the pass hands a full pair another block in the transaction of the
placements that need it, frees each block when no container holds it, and reads the records
of releases before growth (one block, containers without ``subnet_index``) as they are."""

from __future__ import annotations

from ccs.features import FEATURES
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey, parse_key
from controlplane.ipam import DEFAULT_NETWORK, MAX_BLOCKS
from controlplane.reconcile.subnets import PassSubnets
from controlplane.reconcile.writes import Writes
from controlplane.store import keys
from tests.unit.reconcile_helpers import deleted

CLUSTER = "c1"
#: A node whose agent knows further blocks (what every agent of this release declares).
CURRENT = pb.Node(status=pb.NodeStatus(agent_version="0.1.0", agent_features=list(FEATURES)))
FIRST, SECOND = "10.128.0.0/28", "10.128.0.32/27"


def state(blocks: dict[int, str] | None = None) -> ClusterState:
    """n1 and n2; shop's blocks of default on n1 by index."""
    st = ClusterState(CLUSTER, exists=True, pod_cidr="10.128.0.0/12")
    for n in ("n1", "n2"):
        st.nodes[n] = CURRENT
    for index, subnet in (blocks or {}).items():
        st.subnets[("n1", "shop", DEFAULT_NETWORK, index)] = pb.SubnetAllocation(
            application="shop", network=DEFAULT_NETWORK, node="n1", subnet=subnet, index=index)
    return st


def ctr(name: str, subnet: str = "", index: int = 0, desired: int = pb.DESIRED_STATE_RUNNING) -> pb.Container:
    c = pb.Container(meta=pb.Meta(name=name), cluster=CLUSTER, application="shop", service="web", node="n1",
                     desired_state=desired)  # type: ignore[arg-type]
    if subnet:
        c.subnets[DEFAULT_NETWORK] = subnet
    if index:
        c.subnet_index[DEFAULT_NETWORK] = index
    return c


def stored(st: ClusterState, *containers: pb.Container) -> None:
    for c in containers:
        key = ("shop", "web", c.meta.name)
        st.containers[key] = c
        st._index(key, None, c)


def glue(st: ClusterState, overlay: dict[CtrKey, pb.Container | None] | None = None) -> PassSubnets:
    over = overlay or {}

    def view(k: CtrKey) -> pb.Container | None:
        return over[k] if k in over else st.containers.get(k)
    return PassSubnets(st, view)


def test_a_pair_filling_up_gets_a_second_block_in_the_transaction_of_its_containers() -> None:
    """13 containers fill the /28 (one of them an old one being drained: it still holds its
    address); one more takes a second block sized for the 14 (a /27), written with it and needed
    by its write."""
    st = state({0: FIRST})
    stored(st, *(ctr(f"web-{i}", FIRST) for i in range(12)), ctr("old-1", FIRST, desired=pb.DESIRED_STATE_STOPPED))
    s, writes = glue(st), Writes()
    placed = [ctr("web-12")]
    assert s.attach("shop", placed, writes) == []
    second_key = keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK, 1)
    assert second_key == f"/ccs/c/{CLUSTER}/subnetblocks/n1/shop/default/1"
    assert [(c.subnets[DEFAULT_NETWORK], c.subnet_index.get(DEFAULT_NETWORK, 0)) for c in placed] == [(SECOND, 1)]
    ((key, record, revision),) = writes.pending()
    assert (key, revision) == (second_key, 0)  # created: it must not exist yet
    assert record == pb.SubnetAllocation(application="shop", network=DEFAULT_NETWORK, node="n1", subnet=SECOND,
                                         index=1)
    assert s.needs_of(placed[0]) == (second_key,)
    assert s.blocks_of("n1", "shop", DEFAULT_NETWORK) == {0: FIRST, 1: SECOND}


def test_containers_placed_earlier_in_the_same_pass_count() -> None:
    """Two services placed one after the other in a pass: the second sees the first's."""
    st = state({0: FIRST})
    s, writes = glue(st), Writes()
    first = [ctr(f"a-{i}") for i in range(10)]
    second = [ctr(f"b-{i}") for i in range(5)]
    s.attach("shop", first, writes)
    s.attach("shop", second, writes)
    assert [c.subnet_index.get(DEFAULT_NETWORK, 0) for c in second] == [0, 0, 0, 1, 1]


def test_a_container_takes_the_first_block_with_room_again() -> None:
    st = state({0: FIRST, 1: SECOND})
    stored(st, *(ctr(f"web-{i}", FIRST) for i in range(12)), ctr("web-20", SECOND, 1))
    s, writes = glue(st), Writes()
    placed = [ctr("web-30")]
    s.attach("shop", placed, writes)
    assert (placed[0].subnets[DEFAULT_NETWORK], dict(placed[0].subnet_index)) == (FIRST, {})
    assert len(writes) == 0


def test_each_block_is_freed_when_no_container_holds_it() -> None:
    st = state({0: FIRST, 1: SECOND})
    first, second = ctr("web-1", FIRST), ctr("web-2", SECOND, 1)
    stored(st, first, second)
    overlay: dict[CtrKey, pb.Container | None] = {("shop", "web", "web-2"): None}  # the second's last goes
    writes = Writes()
    glue(st, overlay).release_unused(writes, overlay, full=False)
    assert deleted(writes) == {keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK, 1)}

    overlay = {("shop", "web", "web-1"): None}  # or the first's: the second stays
    writes = Writes()
    glue(st, overlay).release_unused(writes, overlay, full=True)
    assert deleted(writes) == {keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK)}


def test_a_pair_with_the_most_blocks_leaves_a_container_pending_with_the_reason() -> None:
    st = state({i: f"10.128.{i}.0/28" for i in range(MAX_BLOCKS)})
    stored(st, *(ctr(f"w{i}-{j}", f"10.128.{i}.0/28", i) for i in range(MAX_BLOCKS) for j in range(13)))
    s, writes = glue(st), Writes()
    c = ctr("one-more")
    assert s.attach("shop", [c], writes) == [c]
    assert (c.node, dict(c.subnets), c.status.state) == ("", {}, pb.CONTAINER_STATE_PENDING)
    assert c.status.message == (f"network default of shop on n1 has {MAX_BLOCKS} address blocks, the most a "
                                "network may have on one node")
    assert len(writes) == 0


def test_an_upgrade_from_one_block_per_pair_keeps_its_record_and_containers() -> None:
    """A record of a release before growth (its key has no index, its value none) and its
    containers (``subnets`` only): read as block 0, kept while they hold it, grown past."""
    old_key = f"/ccs/c/{CLUSTER}/subnets/n1/shop/default"
    assert old_key == keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK)
    assert parse_key(old_key) == (CLUSTER, "subnets", ("n1", "shop", "default"))
    assert parse_key(f"/ccs/c/{CLUSTER}/subnetblocks/n1/shop/default/2") == (
        CLUSTER, "subnetblocks", ("n1", "shop", "default", "2"))
    for bad in ("0", "x", ""):  # index 0 lives at the old key; anything else is not a block
        assert parse_key(f"/ccs/c/{CLUSTER}/subnetblocks/n1/shop/default/{bad}") is None
    st = ClusterState(CLUSTER, exists=True, pod_cidr="10.128.0.0/12")
    st.nodes["n1"] = CURRENT
    old_record = pb.SubnetAllocation(application="shop", network=DEFAULT_NETWORK, node="n1", subnet=FIRST)
    st.subnets[("n1", "shop", DEFAULT_NETWORK, 0)] = pb.SubnetAllocation.FromString(old_record.SerializeToString())
    stored(st, *(ctr(f"web-{i}", FIRST) for i in range(13)))
    s, writes = glue(st), Writes()
    placed = [ctr("web-13")]
    s.attach("shop", placed, writes)
    assert placed[0].subnet_index[DEFAULT_NETWORK] == 1
    writes = Writes()
    glue(st).release_unused(writes, {}, full=True)
    assert deleted(writes) == set()  # the old containers hold the old block
