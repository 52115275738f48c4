"""``network_map``: blocks, names (ready and not leaving), aliases, internal, every Compose network
its own, members (addresses on other networks), cluster networks shared between applications, the
content-hash version; and ``NetworkMaps``, the incremental cache, against it after every change."""

from __future__ import annotations

import random
from typing import Any

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState
from controlplane.netmap import NetworkMaps, network_map

Change = tuple[str, tuple[str, ...], Any, Any]


class World:
    """A hand-built ``ClusterState`` whose every edit also yields the informer's change."""

    def __init__(self) -> None:
        self.state = ClusterState("c1", exists=True, pod_cidr="10.128.0.0/12")
        self.changes: list[Change] = []

    def node(self, name: str, address: str = "") -> None:
        address = address or f"192.0.2.{len(self.state.nodes) + 1}"
        n = pb.Node(cluster="c1", status=pb.NodeStatus(address=address, state=pb.NODE_STATE_READY))
        n.meta.name = name
        self._set("node", (name,), self.state.nodes, name, n)

    def app(self, name: str, *internal: str, shared: dict[str, str] | None = None) -> None:
        """``internal``: its networks declared internal; ``shared``: Compose network -> the
        cluster network it joins (external)."""
        a = pb.Application(cluster="c1", networks=[pb.NetworkDef(name=n, internal=True) for n in internal])
        for net, group in (shared or {}).items():
            a.networks.append(pb.NetworkDef(name=net, external=True, external_name=group))
        a.meta.name = name
        self._set("application", (name,), self.state.apps, name, a)

    def service(self, app: str, name: str, *, nets: dict[str, list[str]] | None = None, hc: bool = False) -> None:
        s = pb.Service(cluster="c1", application=app, spec=pb.ServiceSpec(image="i"))
        s.meta.name = name
        for net, aliases in (nets or {}).items():
            s.spec.networks.append(pb.ServiceNetwork(name=net, aliases=aliases))
        if hc:
            s.spec.healthcheck.test.extend(["CMD", "true"])
        self._set("service", (app, name), self.state.services, (app, name), s)

    def block(self, node: str, app: str, subnet: str, network: str = "default", index: int = 0) -> None:
        """One block of a pair (``index`` >= 1: a further one, the pair's first filled)."""
        rec = pb.SubnetAllocation(application=app, network=network, node=node, subnet=subnet, index=index)
        self._set("subnet", (node, app, network, str(index)), self.state.subnets, (node, app, network, index), rec)

    def ctr(self, app: str, svc: str, name: str, node: str, address: str = "",
            state: int = pb.CONTAINER_STATE_RUNNING, *, desired: int = pb.DESIRED_STATE_RUNNING,
            draining: bool = False, addresses: dict[str, str] | None = None) -> None:
        c = pb.Container(cluster="c1", application=app, service=svc, node=node,
                         desired_state=desired)  # type: ignore[arg-type]
        c.meta.name = c.meta.id = name
        c.status.state = state  # type: ignore[assignment]
        if address:
            c.status.addresses["default"] = address
        c.status.addresses.update(addresses or {})
        if draining:
            c.stop_after.seconds = 1
        key = (app, svc, name)
        old = self.state.containers.get(key)
        self.state.containers[key] = c
        self.state._index(key, old, c)
        self.changes.append(("container", key, old, c))

    def remove(self, kind: str, key: tuple[str, ...]) -> None:
        tables: dict[str, dict[Any, Any]] = {
            "node": self.state.nodes, "application": self.state.apps, "service": self.state.services,
            "subnet": self.state.subnets, "container": self.state.containers}
        table = tables[kind]
        k: Any = key[0] if kind in ("node", "application") else key
        if kind == "subnet":  # the informer's change names the block's index as text
            k = (*key[:3], int(key[3]) if len(key) > 3 else 0)
            key = (*key[:3], str(k[3]))
        old = table.pop(k, None)
        if kind == "container":
            self.state._index(key, old, None)  # type: ignore[arg-type]
        self.changes.append((kind, key, old, None))

    def _set(self, kind: str, key: tuple[str, ...], table: dict[Any, Any], k: Any, new: Any) -> None:
        old = table.get(k)
        table[k] = new
        self.changes.append((kind, key, old, new))

    def take(self) -> list[Change]:
        out, self.changes = self.changes, []
        return out


def names(m: agent_pb2.NetworkMap, i: int = 0) -> dict[str, list[str]]:
    return {n.name: list(n.addresses) for n in m.networks[i].names}


def shop() -> World:
    """shop: web (2) on n1 and n2, db (1) on n2; other: api on n3 only."""
    w = World()
    for n in ("n1", "n2", "n3"):
        w.node(n)
    w.app("shop")
    w.app("other")
    w.service("shop", "web")
    w.service("shop", "db")
    w.service("other", "api")
    w.block("n1", "shop", "10.128.0.16/28")
    w.block("n2", "shop", "10.128.0.0/28")
    w.block("n3", "other", "10.128.0.32/28")
    w.ctr("shop", "web", "web-1", "n1", "10.128.0.18")
    w.ctr("shop", "web", "web-2", "n2", "10.128.0.3")
    w.ctr("shop", "db", "db-1", "n2", "10.128.0.2")
    w.ctr("other", "api", "api-1", "n3", "10.128.0.34")
    return w


def test_a_node_sees_every_block_and_name_of_its_networks_only() -> None:
    w = shop()
    m = network_map(w.state, "n1")
    assert (m.cluster, m.pod_cidr) == ("c1", "10.128.0.0/12")
    [net] = m.networks
    assert (net.application, net.network, net.internal) == ("shop", "default", False)
    assert [(b.node, b.node_address, b.subnet) for b in net.blocks] == [
        ("n2", "192.0.2.2", "10.128.0.0/28"), ("n1", "192.0.2.1", "10.128.0.16/28")]
    assert names(m) == {"db": ["10.128.0.2"], "web": ["10.128.0.3", "10.128.0.18"]}
    assert [n.application for n in network_map(w.state, "n3").networks] == ["other"]
    assert list(network_map(w.state, "elsewhere").networks) == []


def test_names_answer_ready_containers_that_are_not_leaving() -> None:
    w = World()
    w.node("n1")
    w.app("a")
    w.service("a", "web")
    w.service("a", "hc", hc=True)
    w.block("n1", "a", "10.128.0.0/24")
    w.ctr("a", "web", "ready", "n1", "10.128.0.10")
    w.ctr("a", "web", "starting", "n1", "10.128.0.11", pb.CONTAINER_STATE_STARTING)
    w.ctr("a", "web", "stopping", "n1", "10.128.0.12", desired=pb.DESIRED_STATE_STOPPED)
    w.ctr("a", "web", "draining", "n1", "10.128.0.13", draining=True)
    w.ctr("a", "web", "exited", "n1", "10.128.0.14", pb.CONTAINER_STATE_EXITED)
    w.ctr("a", "web", "no-address", "n1")
    w.ctr("a", "hc", "unchecked", "n1", "10.128.0.20")  # RUNNING, but a health check is set
    w.ctr("a", "hc", "unhealthy", "n1", "10.128.0.21", pb.CONTAINER_STATE_UNHEALTHY)
    w.ctr("a", "gone", "orphan", "n1", "10.128.0.30")  # its service no longer exists
    assert names(network_map(w.state, "n1")) == {"hc": [], "web": ["10.128.0.10"]}
    w.ctr("a", "hc", "unchecked", "n1", "10.128.0.20", pb.CONTAINER_STATE_HEALTHY)
    assert names(network_map(w.state, "n1"))["hc"] == ["10.128.0.20"]


def by_network(m: agent_pb2.NetworkMap) -> dict[str, agent_pb2.AppNetwork]:
    return {f"{n.application}/{n.network}": n for n in m.networks}


def test_aliases_answer_what_the_service_answers_on_their_own_network() -> None:
    """Every Compose network is a network of its own: the aliases a service has on `front` are
    names on `front` only, with the service's addresses there; a shared alias answers both
    services of that network."""
    w = World()
    w.node("n1")
    w.app("a")
    w.service("a", "web", nets={"front": ["www", "site"], "default": []})
    w.service("a", "web2", nets={"front": ["site"], "back": []})
    w.block("n1", "a", "10.128.0.0/28")
    w.block("n1", "a", "10.128.0.16/28", "front")
    w.block("n1", "a", "10.128.0.32/28", "back")
    w.ctr("a", "web", "w1", "n1", "10.128.0.9", addresses={"front": "10.128.0.19"})
    w.ctr("a", "web2", "w2", "n1", addresses={"front": "10.128.0.20", "back": "10.128.0.34"})
    nets = {k: {n.name: list(n.addresses) for n in v.names} for k, v in by_network(network_map(w.state, "n1")).items()}
    assert nets == {
        "a/default": {"web": ["10.128.0.9"]},
        "a/front": {"site": ["10.128.0.19", "10.128.0.20"], "web": ["10.128.0.19"], "web2": ["10.128.0.20"],
                    "www": ["10.128.0.19"]},
        "a/back": {"web2": ["10.128.0.34"]},
    }


def test_a_container_on_several_networks_is_a_member_of_each_with_its_other_addresses() -> None:
    """It sends from the address of the network with its default route, whichever that is, so
    each network it is on lists its other addresses (as /32, with the node to route them via);
    members count whether the container is ready or not (it connects before it is ready)."""
    w = World()
    w.node("n1")
    w.node("n2")
    w.app("a")
    w.service("a", "api", nets={"front": [], "back": []}, hc=True)
    w.service("a", "db", nets={"back": []})
    w.block("n1", "a", "10.128.0.16/28", "front")
    w.block("n1", "a", "10.128.0.32/28", "back")
    w.block("n2", "a", "10.128.0.48/28", "back")
    w.ctr("a", "api", "api-1", "n1", state=pb.CONTAINER_STATE_STARTING,
          addresses={"front": "10.128.0.18", "back": "10.128.0.34"})
    w.ctr("a", "db", "db-1", "n2", addresses={"back": "10.128.0.50"})
    m = by_network(network_map(w.state, "n2"))
    assert list(m) == ["a/back"]  # n2 has no block of front
    assert [(b.node, b.node_address, b.subnet) for b in m["a/back"].members] == [("n1", "192.0.2.1", "10.128.0.18/32")]
    m = by_network(network_map(w.state, "n1"))
    assert [b.subnet for b in m["a/front"].members] == ["10.128.0.34/32"]
    assert {n.name: list(n.addresses) for n in m["a/back"].names} == {"api": [], "db": ["10.128.0.50"]}


def test_a_cluster_network_joins_the_entries_of_every_application_on_it() -> None:
    """A node with a block of a shared network receives every other application's entry of
    that cluster network (to route, allow and resolve it), and nothing else of theirs."""
    w = World()
    for n in ("n1", "n2", "n3"):
        w.node(n)
    w.app("shop", shared={"pub": "team"})
    w.app("blog", shared={"net": "team"})
    w.app("other", shared={"x": "elsewhere"})
    w.service("shop", "web", nets={"default": [], "pub": []})
    w.service("blog", "api", nets={"net": [], "default": []})
    w.service("other", "o", nets={"x": []})
    w.block("n1", "shop", "10.128.0.0/28")
    w.block("n1", "shop", "10.128.0.16/28", "pub")
    w.block("n2", "blog", "10.128.0.32/28", "net")
    w.block("n2", "blog", "10.128.0.48/28")
    w.block("n3", "other", "10.128.0.64/28", "x")
    w.ctr("shop", "web", "web-1", "n1", "10.128.0.2", addresses={"pub": "10.128.0.18"})
    w.ctr("blog", "api", "api-1", "n2", "10.128.0.50", addresses={"net": "10.128.0.34"})
    m = by_network(network_map(w.state, "n1"))
    assert sorted(m) == ["blog/net", "shop/default", "shop/pub"]
    assert (m["shop/pub"].shared, m["blog/net"].shared, m["shop/default"].shared) == ("team", "team", "")
    assert [b.subnet for b in m["blog/net"].blocks] == ["10.128.0.32/28"]
    assert {n.name: list(n.addresses) for n in m["blog/net"].names} == {"api": ["10.128.0.34"]}
    assert sorted(by_network(network_map(w.state, "n2"))) == ["blog/default", "blog/net", "shop/pub"]
    assert sorted(by_network(network_map(w.state, "n3"))) == ["other/x"]


def test_a_block_whose_node_has_no_address_is_left_out() -> None:
    w = shop()
    w.node("n2", address="not-an-ip")
    [net] = network_map(w.state, "n1").networks
    assert [b.node for b in net.blocks] == ["n1"]
    w.remove("node", ("n1",))
    [net] = network_map(w.state, "n1").networks  # the network is still n1's (its block stays)
    assert list(net.blocks) == []


def test_internal_is_each_networks_own_flag() -> None:
    w = World()
    w.node("n1")
    w.app("a", "back")
    w.service("a", "db", nets={"back": []})
    w.service("a", "web", nets={"back": [], "front": []})
    w.block("n1", "a", "10.128.0.0/28", "back")
    w.block("n1", "a", "10.128.0.16/28", "front")
    m = by_network(network_map(w.state, "n1"))
    assert (m["a/back"].internal, m["a/front"].internal) == (True, False)
    w.app("a", "back", "front")
    assert by_network(network_map(w.state, "n1"))["a/front"].internal is True
    w.app("a", "default")  # "default" declared internal (Compose lets a template redefine it)
    w.block("n1", "a", "10.128.0.32/28")
    m = by_network(network_map(w.state, "n1"))
    assert (m["a/default"].internal, m["a/back"].internal) == (True, False)


def test_the_version_is_a_content_hash() -> None:
    a, b = shop(), shop()
    assert network_map(a.state, "n1").version == network_map(b.state, "n1").version != 0
    before = network_map(a.state, "n1")
    a.ctr("shop", "web", "web-1", "n1", "10.128.0.20")
    after = network_map(a.state, "n1")
    assert after.version not in (0, before.version)
    empty = network_map(a.state, "nowhere")
    assert empty.version != 0 and not empty.networks
    # What happens on n3 (another application) does not change n1's map.
    a.ctr("other", "api", "api-2", "n3", "10.128.0.35")
    assert network_map(a.state, "n1").version == after.version


# ------------------------------------------------------------------ the incremental cache


def settle(maps: NetworkMaps, w: World) -> set[str]:
    for kind, key, old, new in w.take():
        maps.observe(w.state, kind, key, old, new)
    return maps.settle()


def test_the_cache_reports_the_nodes_a_change_concerns() -> None:
    w = shop()
    maps = NetworkMaps(w.state)
    w.take()
    assert settle(maps, w) == set()
    w.ctr("shop", "web", "web-1", "n1", "10.128.0.20")  # a new address: both shop nodes
    assert settle(maps, w) == {"n1", "n2"}
    w.ctr("shop", "web", "web-1", "n1", "10.128.0.20")  # the same contribution again: nothing
    assert settle(maps, w) == set()
    w.node("n3", address="192.0.2.99")  # only "other" has a block on n3
    assert settle(maps, w) == {"n3"}
    w.node("n2", address="192.0.2.2")  # the same address (a heartbeat rewrote the record)
    assert settle(maps, w) == set()
    w.block("n3", "shop", "10.128.0.48/28")  # shop arrives on n3
    assert settle(maps, w) == {"n1", "n2", "n3"}
    w.remove("subnet", ("n1", "shop", "default"))  # and leaves n1
    assert settle(maps, w) == {"n1", "n2", "n3"}
    assert [n.application for n in maps.map_for(w.state, "n1").networks] == []


def test_every_block_of_a_pair_is_the_same_network_and_the_node_stays_until_its_last_goes() -> None:
    """A pair whose first block filled has a second one: the map lists both as blocks of the
    one network (routes, the firewall set and names are per network); the node keeps the
    network while any of its blocks remains, whichever goes first."""
    w = shop()
    w.block("n1", "shop", "10.128.1.0/27", index=1)
    w.ctr("shop", "web", "web-3", "n1", "10.128.1.2")
    maps = NetworkMaps(w.state)
    w.take()
    for node in ("n1", "n2"):
        m = network_map(w.state, node)
        assert maps.map_for(w.state, node) == m
        [net] = m.networks
        assert [(b.node, b.subnet) for b in net.blocks] == [
            ("n2", "10.128.0.0/28"), ("n1", "10.128.0.16/28"), ("n1", "10.128.1.0/27")]
        assert names(m)["web"] == ["10.128.0.3", "10.128.0.18", "10.128.1.2"]
    w.remove("subnet", ("n1", "shop", "default", "0"))  # the first block freed, the second kept
    w.remove("container", ("shop", "web", "web-1"))
    assert settle(maps, w) == {"n1", "n2"}
    m = maps.map_for(w.state, "n1")
    assert m == network_map(w.state, "n1")
    assert [(b.node, b.subnet) for b in m.networks[0].blocks] == [("n2", "10.128.0.0/28"), ("n1", "10.128.1.0/27")]
    w.remove("subnet", ("n1", "shop", "default", "1"))
    settle(maps, w)
    assert list(maps.map_for(w.state, "n1").networks) == list(network_map(w.state, "n1").networks) == []


NODES, APPS, SERVICES, NETWORKS = ["n1", "n2", "n3", "n4"], ["shop", "other", "third"], ["web", "db"], \
    ["default", "front", "back"]
STATES = [pb.CONTAINER_STATE_RUNNING, pb.CONTAINER_STATE_STARTING, pb.CONTAINER_STATE_HEALTHY,
          pb.CONTAINER_STATE_EXITED]


def random_edits(rnd: random.Random, w: World) -> None:
    """One batch of 1-4 random edits of ``w``: containers, blocks, services, node addresses,
    applications' network definitions (also used by test_netmap_delta)."""
    nodes, apps, services, networks = NODES, APPS, SERVICES, NETWORKS
    for _ in range(rnd.randint(1, 4)):
        what = rnd.random()
        node, app, svc = rnd.choice(nodes), rnd.choice(apps), rnd.choice(services)
        if what < 0.4:
            extra = {"front": f"10.128.9.{rnd.randint(2, 9)}"} if rnd.random() < 0.3 else None
            w.ctr(app, svc, f"{svc}-{rnd.randint(1, 4)}", node, f"10.128.{rnd.randint(0, 3)}.{rnd.randint(2, 9)}",
                  rnd.choice(STATES), draining=rnd.random() < 0.1, addresses=extra)
        elif what < 0.5:
            key = rnd.choice(sorted(w.state.containers)) if w.state.containers else None
            if key is not None:
                w.remove("container", key)
        elif what < 0.65:
            net, index = rnd.choice(networks), rnd.choice([0, 0, 1, 2])  # further blocks of a pair too
            w.block(node, app, f"10.128.{nodes.index(node) + 8 * index}."
                    f"{apps.index(app) * 48 + networks.index(net) * 16}/28", net, index)
        elif what < 0.75:
            w.remove("subnet", (node, app, rnd.choice(networks), str(rnd.choice([0, 0, 1, 2]))))
        elif what < 0.85:
            if rnd.random() < 0.2:
                w.remove("service", (app, svc))
            else:
                nets = {n: [rnd.choice(["x", "y"])] if rnd.random() < 0.5 else [] for n in networks
                        if rnd.random() < 0.5}
                w.service(app, svc, nets=nets or None, hc=rnd.random() < 0.3)
        elif what < 0.95:
            w.node(node, address=rnd.choice(["192.0.2.1", "192.0.2.7", ""]))
        else:
            shared = {"front": rnd.choice(["team", "ops"])} if rnd.random() < 0.6 else None
            w.app(app, *(["default"] if rnd.random() < 0.5 else []), shared=shared)


def test_the_cache_equals_the_definition_after_any_changes() -> None:
    """Random edits (seeded: the same sequence every run), checked after every batch."""
    rnd = random.Random(11)
    w = shop()
    maps = NetworkMaps(w.state)
    w.take()
    last = {node: network_map(w.state, node).version for node in NODES}
    for step in range(600):
        random_edits(rnd, w)
        changed = settle(maps, w)
        for node in NODES:
            want = network_map(w.state, node)
            got = maps.map_for(w.state, node)
            assert got == want, (step, node)
            if node not in changed:  # a node left out of settle() must have kept its map
                assert got.version == last[node], (step, node)
        last = {node: maps.map_for(w.state, node).version for node in NODES}
