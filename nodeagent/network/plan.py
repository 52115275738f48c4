"""NetworkMap -> what this node must hold: routes, source sets, names. Pure: no I/O, no clock.

The control plane sends each node the application networks that have a block on it, in full
(`ccs.v1.NetworkMap`). Everything the agent programs is derived here, in one pass, so the
appliers (`routes`, `firewall`, `resolver`) only compare and write:

- `routes`: every block of every network whose node is another node, routed via that node's
  address (host-gw). Several networks never share a block, but one subnet named twice with
  two gateways is refused (the first one wins) rather than flapping between them.
- `networks`: per application network, its blocks (all nodes, this one included), the blocks
  on this node, `internal`, its names (service names and aliases -> ready addresses), the
  cluster network it joins (`shared`: entries with the same one are one network, `group`) and
  its members (the /32 addresses its containers have on their other networks: a container on
  several networks sends from the address of the one holding its default route). Members on
  other nodes are routed via their node like blocks.
- `problems`: every part of the map that could not be honoured, naming its field and why. The
  rest is still applied: one bad block must not cut a node off from all its networks.

`endpoint_routes` plans the routes *inside* a local container that is on several networks
(`Endpoint`). Each of its interfaces has only this node's block of its network as a connected
route; everything else leaves by the default route, from the address of the network holding
it. For a packet to another node's block of network N that source is the wrong one: a
firewall would have to let it through (it does: `members`), and a UDP server on several
networks that answers from its default route's address would not be recognised by its client.
So each block of each of its networks (every application's, for a shared one) is routed via
that network's gateway from its address on that network, as if the whole network were one
link, which it is on an overlay; and the default route goes via the first network of the
service, in template order, that is not `internal` (an internal network has no way out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from ccs.v1 import agent_pb2


@dataclass(frozen=True, slots=True, order=True)
class NetKey:
    """One application network: (application, Compose network name)."""

    application: str
    network: str

    def __str__(self) -> str:
        return f"{self.application}/{self.network}"


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    key: NetKey
    internal: bool
    blocks: tuple[IPv4Network, ...]  # every block, every node (this one included), sorted
    local: tuple[IPv4Network, ...]  # the blocks on this node
    names: Mapping[str, tuple[IPv4Address, ...]]  # lower-case name without trailing dot -> addresses
    shared: str = ""  # the cluster network it joins ("": the application's own network)
    members: tuple[IPv4Network, ...] = ()  # /32s of its containers' addresses on other networks

    @property
    def group(self) -> str:
        """What makes one network: the cluster network for a shared one (every application's
        entry of it), else the application network itself."""
        return f"\0{self.shared}" if self.shared else f"{self.key.application}\0{self.key.network}"


@dataclass(frozen=True, slots=True)
class FabricPlan:
    """What one node must hold for the map it was sent."""

    cluster: str
    node: str
    version: int
    pod_cidr: IPv4Network | None
    networks: tuple[NetworkPlan, ...] = ()
    routes: Mapping[IPv4Network, IPv4Address] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to hold: every route, rule and set of this cluster goes."""
        return not self.networks

    @property
    def local_blocks(self) -> tuple[IPv4Network, ...]:
        return tuple(sorted({b for n in self.networks for b in n.local}))

    def groups(self) -> dict[str, tuple[NetworkPlan, ...]]:
        """The networks by group (`NetworkPlan.group`), in the order of their first entry."""
        out: dict[str, list[NetworkPlan]] = {}
        for n in self.networks:
            out.setdefault(n.group, []).append(n)
        return {g: tuple(ns) for g, ns in out.items()}


def _network(text: str, where: str, problems: list[str]) -> IPv4Network | None:
    try:
        return IPv4Network(text)  # strict: host bits set is a mistake worth naming
    except ValueError as exc:
        problems.append(f"{where}: must be an IPv4 network like 10.128.0.16/28, got {text!r} ({exc})")
        return None


def _address(text: str, where: str, problems: list[str]) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        problems.append(f"{where}: must be an IPv4 address, got {text!r}")
        return None


def normalise_name(name: str) -> str:
    """DNS names compare case-insensitively and with or without the root's trailing dot."""
    return name.rstrip(".").lower()


def plan_fabric(m: agent_pb2.NetworkMap, *, node: str, cluster: str = "") -> FabricPlan:
    """The plan for `node` from the map it was sent. `cluster` (the agent's own) names the
    kernel objects; the map's `cluster` is used when it is not given."""
    problems: list[str] = []
    pod = _network(m.pod_cidr, "pod_cidr", problems) if m.pod_cidr else None
    routes: dict[IPv4Network, IPv4Address] = {}
    owners: dict[IPv4Network, str] = {}  # block -> the network that claimed it first
    networks: list[NetworkPlan] = []
    seen: set[NetKey] = set()
    for i, net in enumerate(m.networks):
        where = f"networks[{i}]"
        key = NetKey(net.application, net.network or "default")
        if not net.application:
            problems.append(f"{where}.application: must not be empty")
            continue
        if key in seen:
            problems.append(f"{where}: network {key} is listed twice; the first entry is used")
            continue
        seen.add(key)
        blocks: list[IPv4Network] = []
        local: list[IPv4Network] = []
        for j, b in enumerate(net.blocks):
            bwhere = f"{where}.blocks[{j}]"
            subnet = _network(b.subnet, f"{bwhere}.subnet", problems)
            if subnet is None:
                continue
            if pod is not None and not subnet.subnet_of(pod):
                problems.append(f"{bwhere}.subnet: {subnet} is outside the pod range {pod}; skipped")
                continue
            owner = owners.setdefault(subnet, str(key))
            if owner != str(key):
                problems.append(f"{bwhere}.subnet: {subnet} is also a block of {owner}; skipped")
                continue
            blocks.append(subnet)
            if b.node == node:
                local.append(subnet)
                continue
            if not b.node:
                problems.append(f"{bwhere}.node: must not be empty (block {subnet} is not routed)")
                continue
            gateway = _address(b.node_address, f"{bwhere}.node_address", problems)
            if gateway is None:
                continue
            if routes.setdefault(subnet, gateway) != gateway:
                problems.append(f"{bwhere}: {subnet} via {gateway} conflicts with via {routes[subnet]}; skipped")
        members: list[IPv4Network] = []
        for j, b in enumerate(net.members):
            mwhere = f"{where}.members[{j}]"
            member = _network(b.subnet, f"{mwhere}.subnet", problems)
            if member is None:
                continue
            if member.prefixlen != 32 or (pod is not None and not member.subnet_of(pod)):
                problems.append(f"{mwhere}.subnet: {member} is not one address of the pod range; skipped")
                continue
            members.append(member)
            if b.node == node or not b.node:
                continue
            gateway = _address(b.node_address, f"{mwhere}.node_address", problems)
            if gateway is not None and routes.setdefault(member, gateway) != gateway:
                problems.append(f"{mwhere}: {member} via {gateway} conflicts with via {routes[member]}; skipped")
        names: dict[str, tuple[IPv4Address, ...]] = {}
        for j, n in enumerate(net.names):
            nwhere = f"{where}.names[{j}]"
            name = normalise_name(n.name)
            if not name:
                problems.append(f"{nwhere}.name: must not be empty")
                continue
            addresses = [a for k, text in enumerate(n.addresses)
                         if (a := _address(text, f"{nwhere}.addresses[{k}]", problems)) is not None]
            names[name] = tuple(sorted({*names.get(name, ()), *addresses}))
        networks.append(NetworkPlan(key, net.internal, tuple(sorted(set(blocks))), tuple(sorted(set(local))), names,
                                    net.shared, tuple(sorted(set(members)))))
    return FabricPlan(
        cluster=cluster or m.cluster,
        node=node,
        version=m.version,
        pod_cidr=pod,
        networks=tuple(sorted(networks, key=lambda n: n.key)),
        routes=dict(sorted(routes.items())),
        problems=tuple(problems),
    )


#: The destination of a default route in `endpoint_routes`.
DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container of this node on several networks, as the agent sees it."""

    pid: int  # of its process: the way into its network namespace
    application: str
    networks: tuple[tuple[str, IPv4Address], ...]  # (Compose network, its address), in template order


#: Destination -> (gateway, source address), routes inside one container.
EndpointRoutes = dict[IPv4Network, tuple[IPv4Address, IPv4Address]]


def endpoint_routes(plan: FabricPlan, e: Endpoint) -> EndpointRoutes:
    """The routes `e` must hold (see the module doc); {} for a container on one network, or
    whose networks the map does not hold (yet)."""
    if len(e.networks) < 2:
        return {}
    by_key = {n.key: n for n in plan.networks}
    groups = plan.groups()
    out: EndpointRoutes = {}
    default: tuple[IPv4Address, IPv4Address] | None = None
    found = 0
    for network, address in e.networks:
        n = by_key.get(NetKey(e.application, network))
        own = next((b for b in n.local if address in b), None) if n is not None else None
        if n is None or own is None:
            continue
        found += 1
        via = (own.network_address + 1, address)  # the bridge's gateway: the block's first host
        for other in groups[n.group]:
            out.update((b, via) for b in other.blocks if b != own)
        if default is None and not n.internal:
            default = via
    if found < 2:
        return {}
    if default is not None:
        out[DEFAULT_ROUTE] = default
    return out


def route_changes(
    desired: Mapping[IPv4Network, IPv4Address], current: Mapping[IPv4Network, IPv4Address]
) -> tuple[dict[IPv4Network, IPv4Address], list[IPv4Network]]:
    """(routes to add or re-point, routes to delete): the kernel's ccs routes -> the plan's."""
    upserts = {dst: gw for dst, gw in desired.items() if current.get(dst) != gw}
    deletes = sorted(dst for dst in current if dst not in desired)
    return upserts, deletes


__all__ = [
    "DEFAULT_ROUTE",
    "Endpoint",
    "EndpointRoutes",
    "FabricPlan",
    "NetKey",
    "NetworkPlan",
    "endpoint_routes",
    "normalise_name",
    "plan_fabric",
    "route_changes",
]
