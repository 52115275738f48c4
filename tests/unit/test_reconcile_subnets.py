"""The reconcile pass's subnet glue: blocks given with placements, freed with the last container,
and container writes that need a block chunked so that they never land without it."""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey
from controlplane.ipam import DEFAULT_NETWORK
from controlplane.reconcile.subnets import PassSubnets
from controlplane.reconcile.writes import MAX_OPS, Writes, _chunk, _needed_first, _Write
from controlplane.store import keys
from tests.unit.reconcile_helpers import deleted

CLUSTER = "c1"


def state(pod_cidr: str = "10.128.0.0/12", subnets: dict[tuple[str, str], str] | None = None,
          nodes: tuple[str, ...] = ("n1", "n2")) -> ClusterState:
    st = ClusterState(CLUSTER, exists=True, pod_cidr=pod_cidr)
    for n in nodes:
        st.nodes[n] = pb.Node()
    for (node, app), subnet in (subnets or {}).items():
        st.subnets[(node, app, DEFAULT_NETWORK, 0)] = pb.SubnetAllocation(
            application=app, network=DEFAULT_NETWORK, node=node, subnet=subnet)
    return st


def ctr(app: str, node: str, name: str = "web-1", desired: int = pb.DESIRED_STATE_RUNNING) -> pb.Container:
    return pb.Container(meta=pb.Meta(name=name), cluster=CLUSTER, application=app, service="web", node=node,
                        desired_state=desired)  # type: ignore[arg-type]


def glue(st: ClusterState) -> PassSubnets:
    def container(key: CtrKey) -> pb.Container | None:
        return st.containers.get(key)
    return PassSubnets(st, container)


def test_a_first_placement_on_a_node_gets_a_block_written_before_the_containers() -> None:
    st = state()
    s, writes = glue(st), Writes()
    placed = [ctr("shop", "n1", "web-1"), ctr("shop", "n1", "web-2"), ctr("shop", "n2", "web-3")]
    assert s.attach("shop", placed, writes) == []
    assert [c.subnets[DEFAULT_NETWORK] for c in placed] == ["10.128.0.0/28", "10.128.0.0/28", "10.128.0.16/28"]
    assert writes.has(keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK))
    assert writes.has(keys.subnet(CLUSTER, "n2", "shop", DEFAULT_NETWORK))
    assert s.needs_of(placed[0]) == (keys.subnet(CLUSTER, "n1", "shop", DEFAULT_NETWORK),)


def test_a_pair_keeps_its_block_and_pending_or_stopping_containers_get_none() -> None:
    st = state(subnets={("n1", "shop"): "10.128.0.32/28"})
    s, writes = glue(st), Writes()
    placed = [ctr("shop", "n1"), ctr("shop", "", "web-2"), ctr("shop", "n1", "web-3", pb.DESIRED_STATE_REMOVED)]
    s.attach("shop", placed, writes)
    assert len(writes) == 0
    assert placed[0].subnets[DEFAULT_NETWORK] == "10.128.0.32/28"
    assert not placed[1].subnets and not placed[2].subnets


def test_blocks_are_sized_for_the_containers_of_the_pair() -> None:
    s, writes = glue(state()), Writes()
    placed = [ctr("big", "n1", f"web-{i}") for i in range(30)]
    s.attach("big", placed, writes)
    assert placed[0].subnets[DEFAULT_NETWORK] == "10.128.0.0/26"


def test_blocks_are_sized_for_the_apps_share_of_a_node_not_only_the_first_placed() -> None:
    """web (1 replica) is placed first, db (30) later: the block must already hold both."""
    st = state()
    s, writes = PassSubnets(st, lambda k: st.containers.get(k), expected=lambda app: 31), Writes()
    placed = [ctr("shop", "n1")]
    s.attach("shop", placed, writes)
    assert placed[0].subnets[DEFAULT_NETWORK] == "10.128.0.0/25"  # 62 <= 125 usable


def test_a_cluster_without_a_range_leaves_the_choice_to_the_engine() -> None:
    s, writes = glue(state(pod_cidr="")), Writes()
    placed = [ctr("shop", "n1")]
    assert s.attach("shop", placed, writes) == []
    assert not placed[0].subnets and len(writes) == 0 and s.needs_of(placed[0]) == ()


def test_a_full_range_leaves_the_containers_pending_with_the_reason() -> None:
    s, writes = glue(state(pod_cidr="10.128.0.0/28", subnets={("n2", "other"): "10.128.0.0/28"})), Writes()
    placed = [ctr("shop", "n1")]
    assert s.attach("shop", placed, writes) == placed
    c = placed[0]
    assert (c.node, c.status.state) == ("", pb.CONTAINER_STATE_PENDING)
    assert c.status.message == "the cluster's pod range 10.128.0.0/28 has no free subnet left for shop on n1"
    assert len(writes) == 0


def test_blocks_without_containers_or_without_their_node_are_released() -> None:
    st = state(subnets={("n1", "shop"): "10.128.0.0/28", ("n2", "shop"): "10.128.0.16/28",
                        ("gone", "shop"): "10.128.0.32/28", ("n1", "left"): "10.128.0.48/28"})
    for key, c in {("shop", "web", "web-1"): ctr("shop", "n1"), ("shop", "web", "web-9"): ctr("shop", "gone"),
                   ("left", "web", "web-1"): ctr("left", "n1")}.items():
        st.containers[key] = c
        st._index(key, None, c)
    # This pass deleted left's last container on n1 and placed a new shop container on n2.
    overlay: dict[CtrKey, pb.Container | None] = {("left", "web", "web-1"): None,
                                                  ("shop", "web", "web-2"): ctr("shop", "n2", "web-2")}

    def view(k: CtrKey) -> pb.Container | None:
        return overlay[k] if k in overlay else st.containers.get(k)

    writes = Writes()
    PassSubnets(st, view).release_unused(writes, overlay, full=False)
    assert deleted(writes) == {keys.subnet(CLUSTER, "n1", "left", DEFAULT_NETWORK)}

    writes = Writes()
    PassSubnets(st, view).release_unused(writes, overlay, full=True)  # also: nodes that are gone
    assert deleted(writes) == {keys.subnet(CLUSTER, "n1", "left", DEFAULT_NETWORK),
                                     keys.subnet(CLUSTER, "gone", "shop", DEFAULT_NETWORK)}


def _w(key: str, needs: tuple[str, ...] = ()) -> _Write:
    return _Write(key, pb.Container(), 0, "container", key, needs=needs)


def test_chunks_guard_on_needed_keys_written_in_an_earlier_chunk_only() -> None:
    subnet = "/s/n1"
    writes = [_w(subnet), *(_w(f"/c/{i}", (subnet,)) for i in range(150))]
    first, needed = _chunk(writes)
    assert len(first) == MAX_OPS and needed == []  # the block rides with the first containers
    second, needed = _chunk(writes[len(first):])
    assert needed == [subnet]  # the rest must find it in etcd, or fail like a conflict
    assert len(second) + len(needed) <= MAX_OPS


def test_chunks_count_guards_against_the_operation_limit() -> None:
    writes = [_w(f"/c/{i}", (f"/s/{i}",)) for i in range(100)]  # each needs its own existing key
    chunk, needed = _chunk(writes)
    assert len(chunk) + len(needed) <= MAX_OPS
    assert len(chunk) == MAX_OPS // 2


def test_blocks_are_written_next_to_the_first_container_needing_them() -> None:
    """The pass writes all blocks, then all containers; commit pairs them up so that chunks
    need no guards: 200 placements on 200 nodes take 4 transactions, not 6."""
    blocks = [_w(f"/s/n{i}") for i in range(200)]
    containers = [_w(f"/c/{i}", (f"/s/n{i}",)) for i in range(200)]
    ordered = _needed_first([*blocks, *containers, _w("/unrelated")])
    assert [w.key for w in ordered[:4]] == ["/s/n0", "/c/0", "/s/n1", "/c/1"]
    assert ordered[-1].key == "/unrelated" and len(ordered) == 401
    chunks = 0
    while ordered:
        chunk, needed = _chunk(ordered)
        assert needed == []
        ordered = ordered[len(chunk):]
        chunks += 1
    assert chunks == 5  # 401 writes, 100 per transaction


def on(c: pb.Container, *networks: str) -> pb.Container:
    c.spec.networks.extend(pb.ServiceNetwork(name=n) for n in networks)
    return c


def test_each_compose_network_gets_its_own_block_per_node() -> None:
    """front and back are networks of their own: a block each on every node with a container
    on them; a service that lists no network is on default."""
    st = state()
    s, writes = glue(st), Writes()
    placed = [on(ctr("shop", "n1", "web-1"), "front", "back"), on(ctr("shop", "n1", "db-1"), "back"),
              ctr("shop", "n2", "cron-1")]
    assert s.attach("shop", placed, writes) == []
    assert dict(placed[0].subnets) == {"back": "10.128.0.0/28", "front": "10.128.0.16/28"}
    assert dict(placed[1].subnets) == {"back": "10.128.0.0/28"}
    assert dict(placed[2].subnets) == {DEFAULT_NETWORK: "10.128.0.32/28"}
    assert {k for k in (keys.subnet(CLUSTER, "n1", "shop", n) for n in ("front", "back")) if writes.has(k)} == {
        keys.subnet(CLUSTER, "n1", "shop", "front"), keys.subnet(CLUSTER, "n1", "shop", "back")}
    assert s.needs_of(placed[0]) == (keys.subnet(CLUSTER, "n1", "shop", "back"),
                                     keys.subnet(CLUSTER, "n1", "shop", "front"))


def test_a_full_range_leaves_a_container_pending_with_none_of_its_blocks() -> None:
    s, writes = glue(state(pod_cidr="10.128.0.0/28")), Writes()
    c = on(ctr("shop", "n1"), "a", "b")  # room for one /28 only
    assert s.attach("shop", [c], writes) == [c]
    assert (c.node, dict(c.subnets)) == ("", {})


def test_a_network_block_no_container_holds_any_more_is_released() -> None:
    """An update took the service off `back`: the new containers hold front only, so back's block
    on the node goes while front's stays."""
    st = state()
    for net, subnet in (("front", "10.128.0.0/28"), ("back", "10.128.0.16/28")):
        st.subnets[("n1", "shop", net, 0)] = pb.SubnetAllocation(application="shop", network=net, node="n1",
                                                              subnet=subnet)
    old = on(ctr("shop", "n1", "web-1"), "front", "back")
    old.subnets.update({"front": "10.128.0.0/28", "back": "10.128.0.16/28"})
    new = on(ctr("shop", "n1", "web-2"), "front")
    new.subnets["front"] = "10.128.0.0/28"
    for c in (old, new):
        key = ("shop", "web", c.meta.name)
        st.containers[key] = c
        st._index(key, None, c)
    overlay: dict[CtrKey, pb.Container | None] = {("shop", "web", "web-1"): None}

    def view(k: CtrKey) -> pb.Container | None:
        return overlay[k] if k in overlay else st.containers.get(k)

    writes = Writes()
    PassSubnets(st, view).release_unused(writes, overlay, full=False)
    assert deleted(writes) == {keys.subnet(CLUSTER, "n1", "shop", "back")}
