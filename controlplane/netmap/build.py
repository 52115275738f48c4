"""``network_map(state, node)``: one node's view of its applications' networks, computed purely.

The pieces, each a pure function of records in the informer's cache:

* :func:`app_networks`: one application's networks (those with a block somewhere), each with
  every block and its node's address, and the names: every service on the network and each of
  its aliases there -> the addresses on that network of the service's containers that are
  ready and not leaving (:func:`serving`: the routing table's rule, from
  :mod:`controlplane.planner.containers`). A name whose containers are none of that is kept
  with no addresses, so a resolver knows the name is the application's and answers "no
  address" instead of forwarding it to an outside server that might know it.
  Every Compose network is a network of its own (a service that lists none is on
  ``default``); ``internal`` is that network's own flag; a network declared ``external`` names
  the cluster network it joins (``shared``); ``members`` are the addresses its containers have
  on their other networks (a container on several networks sends from the address of the one
  holding its default route, so those must pass and be routed as the network's own).
* :func:`assemble`: the map of one node from the networks it has a block of, sorted, with its
  version (:func:`map_version`: a hash of its head and of its networks' own hashes, so that
  the dispatcher can version a map from per-network hashes it keeps and send only the
  networks that changed, :mod:`controlplane.netmap.delta`). A node with a block of a shared
  network also gets the entries of every other application on that cluster network
  (:func:`with_shared`), to route, allow and resolve.
* :func:`network_map`: both over a whole cluster's state, scanning it (the reference the
  dispatcher's incremental :class:`~controlplane.netmap.cache.NetworkMaps` is tested against).

Left out on purpose: a block whose node has no IPv4 address (nowhere to route it), a block or
an address that does not parse as IPv4, the containers of a service that no longer exists.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Protocol

from ccs.networks import DEFAULT_NETWORK, joined_networks
from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.content_version import combined_version, part_digest
from controlplane.planner.containers import is_leaving, is_ready

SvcKey = tuple[str, str]  # (application, service)
CtrKey = tuple[str, str, str]  # (application, service, container name)
SubnetKey = tuple[str, str, str, int]  # (node, application, network, index): one block of a pair
Block = tuple[str, str, str]  # (node, network, subnet) of one application


class ClusterView(Protocol):
    """What the network map reads of a cluster (the informer's ``ClusterState`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def pod_cidr(self) -> str: ...
    @property
    def nodes(self) -> Mapping[str, pb.Node]: ...
    @property
    def apps(self) -> Mapping[str, pb.Application]: ...
    @property
    def services(self) -> Mapping[SvcKey, pb.Service]: ...
    @property
    def containers(self) -> Mapping[CtrKey, pb.Container]: ...
    @property
    def by_service(self) -> Mapping[SvcKey, set[CtrKey]]: ...
    @property
    def by_node(self) -> Mapping[str, set[CtrKey]]: ...
    @property
    def subnets(self) -> Mapping[SubnetKey, pb.SubnetAllocation]: ...


def service_networks(spec: pb.ServiceSpec) -> dict[str, list[str]]:
    """Compose network -> the service's aliases on it, in template order (Compose: no
    ``networks`` key means the application's "default" network)."""
    out: dict[str, list[str]] = {name: [] for name in joined_networks(n.name for n in spec.networks)}
    for n in spec.networks:
        out[n.name or DEFAULT_NETWORK].extend(a for a in n.aliases if a)
    return out


def shared_networks(application: pb.Application | None) -> dict[str, str]:
    """Compose network -> the cluster network it joins, for the application's ``external``
    networks (``NetworkDef.external_name``, the key itself in records that lack it)."""
    if application is None:
        return {}
    return {n.name: n.external_name or n.name for n in application.networks if n.external}


def serving(c: pb.Container, spec: pb.ServiceSpec) -> bool:
    """Whether names answer ``c``: ready and not leaving, as the routers decide whom to send to."""
    return not is_leaving(c) and is_ready(c, spec)


# Parsing is most of the cost of recomputing an application's networks, and the same texts
# (node addresses, blocks, the addresses of containers that did not change) come back on
# every recomputation: cached, bounded (the scale benchmark has ~42,000 distinct texts).
@functools.lru_cache(maxsize=1 << 16)
def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _ipv4_network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        return None


def _internal(application: pb.Application | None, network: str) -> bool:
    """Compose ``internal: true`` on ``network`` (a shared network never is: the cluster's)."""
    if application is None:
        return False
    return any(n.name == network and n.internal and not n.external for n in application.networks)


def app_networks(
    app: str,
    application: pb.Application | None,
    services: Mapping[str, pb.Service],
    containers: Iterable[pb.Container],
    blocks: Iterable[Block],
    nodes: Mapping[str, pb.Node],
) -> dict[str, agent_pb2.AppNetwork]:
    """Every network of ``app`` that has a block, by network name.

    ``services``: the application's services by name; ``containers``: its containers (others
    are ignored); ``blocks``: its (node, network, subnet) blocks; ``nodes``: the cluster's
    nodes, for their addresses.
    """
    rows: dict[str, list[tuple[int, int, agent_pb2.NetworkBlock]]] = {}
    for node, network, subnet in blocks:
        rows.setdefault(network, [])
        net = _ipv4_network(subnet)
        if net is None:
            continue
        record = nodes.get(node)
        address = _ipv4(record.status.address) if record is not None else None
        if address is None:
            continue
        rows[network].append((int(net.network_address), net.prefixlen,
                              agent_pb2.NetworkBlock(node=node, node_address=str(address), subnet=str(net))))
    names: dict[str, dict[str, set[ipaddress.IPv4Address]]] = {network: {} for network in rows}
    members: dict[str, set[tuple[str, str, ipaddress.IPv4Address]]] = {network: set() for network in rows}
    memberships = {svc: service_networks(s.spec) for svc, s in services.items()}
    for svc, nets in memberships.items():
        for network, aliases in nets.items():
            if network in names:
                for name in (svc, *aliases):
                    names[network].setdefault(name, set())
    for c in containers:
        service = services.get(c.service)
        if c.application != app or service is None:
            continue
        nets = memberships[c.service]
        if len(c.status.addresses) > 1:
            _add_members(c, nets, nodes, members)
        if not serving(c, service.spec):
            continue
        for network, aliases in nets.items():
            address = _ipv4(c.status.addresses.get(network, ""))
            if network not in names or address is None:
                continue
            for name in (c.service, *aliases):
                names[network][name].add(address)
    shared = shared_networks(application)
    out: dict[str, agent_pb2.AppNetwork] = {}
    for network, found in rows.items():
        entry = agent_pb2.AppNetwork(
            application=app, network=network,
            internal=_internal(application, network),
            blocks=[b for _, _, b in sorted(found, key=lambda r: (r[0], r[1], r[2].node))],
            shared=shared.get(network, ""),
        )
        for name, addresses in sorted(names[network].items()):
            entry.names.append(agent_pb2.NetworkName(name=name, addresses=[str(a) for a in sorted(addresses)]))
        for node, node_address, address in sorted(members[network], key=lambda m: (int(m[2]), m[0], m[1])):
            entry.members.append(agent_pb2.NetworkBlock(node=node, node_address=node_address, subnet=f"{address}/32"))
        out[network] = entry
    return out


def _add_members(c: pb.Container, nets: Mapping[str, list[str]], nodes: Mapping[str, pb.Node],
                 members: dict[str, set[tuple[str, str, ipaddress.IPv4Address]]]) -> None:
    """``c``'s addresses on its other networks become members of each network it is on."""
    record = nodes.get(c.node)
    node_address = _ipv4(record.status.address) if record is not None else None
    if node_address is None:
        return
    for network in nets:
        if network not in members:
            continue
        for other, text in c.status.addresses.items():
            address = _ipv4(text)
            if other != network and address is not None:
                members[network].add((c.node, str(node_address), address))


def assemble(cluster: str, pod_cidr: str, networks: Iterable[agent_pb2.AppNetwork]) -> agent_pb2.NetworkMap:
    """The map made of ``networks`` (those with a block on the receiving node), sorted by
    (application, network), with its version (:func:`map_version`)."""
    ordered: list[agent_pb2.AppNetwork] = sorted(networks, key=lambda n: (n.application, n.network))
    m = agent_pb2.NetworkMap(cluster=cluster, pod_cidr=pod_cidr)
    m.networks.extend(ordered)
    m.version = map_version(map_head(cluster, pod_cidr), (part_digest(encode_network(n)) for n in ordered))
    return m


def encode_network(network: agent_pb2.AppNetwork) -> bytes:
    """``network`` as one entry of ``NetworkMap.networks`` on the wire (its field's encoding)."""
    one = agent_pb2.NetworkMap()
    one.networks.append(network)
    return one.SerializeToString(deterministic=True)


def map_head(cluster: str, pod_cidr: str) -> bytes:
    """The encoding of a map's fields before its networks (``cluster``, ``pod_cidr``)."""
    return agent_pb2.NetworkMap(cluster=cluster, pod_cidr=pod_cidr).SerializeToString(deterministic=True)


def map_version(head: bytes, digests: Iterable[int]) -> int:
    """A map's version: :func:`~controlplane.content_version.combined_version` of its head and
    its networks' ``part_digest`` (of their ``encode_network``). Order-free, so the dispatcher,
    which keeps each network's digest, versions a node's map from a few integers instead of
    hashing the whole map (O(cluster)) for every node."""
    return combined_version(head, digests)


def assemble_encoded(cluster: str, pod_cidr: str, encoded: Iterable[tuple[tuple[str, str], bytes]]
                     ) -> tuple[int, bytes]:
    """``assemble`` from networks already encoded (``encode_network``), keyed by (application,
    network): the map's version and its encoding without the version.

    The encoding of a message is the concatenation of its fields' encodings in field-number
    order (cluster, pod_cidr, then each network), so this is byte for byte what ``assemble``
    serializes, and the version is the same, without copying and serializing every network
    again for every node.
    """
    ordered = sorted(encoded, key=lambda e: e[0])
    head = map_head(cluster, pod_cidr)
    raw = head + b"".join(part for _, part in ordered)
    return map_version(head, (part_digest(part) for _, part in ordered)), raw


def with_shared(
    wanted: Mapping[str, set[str]], shared: Mapping[str, Mapping[str, str]]
) -> dict[str, set[str]]:
    """The (application -> networks) a node receives: those it has a block of (``wanted``), plus
    every application's networks joined to a cluster network one of those joins (``shared``:
    application -> Compose network -> cluster network), so that the node routes, allows and
    resolves the whole shared network."""
    groups = {shared.get(app, {}).get(net) for app, nets in wanted.items() for net in nets} - {None}
    out = {app: set(nets) for app, nets in wanted.items()}
    if groups:
        for app, mapping in shared.items():
            for net, group in mapping.items():
                if group in groups:
                    out.setdefault(app, set()).add(net)
    return out


def network_map(state: ClusterView, node: str) -> agent_pb2.NetworkMap:
    """The map ``node`` receives: the application networks with a block on it, and the other
    applications' entries of the cluster networks among them.

    Scans the cluster's blocks and services: O(cluster). The dispatcher keeps maps current
    incrementally instead (:class:`~controlplane.netmap.cache.NetworkMaps`); this is the
    definition that cache is tested against.
    """
    mine: dict[str, set[str]] = {}
    for n, app, network, _ in state.subnets:
        if n == node:
            mine.setdefault(app, set()).add(network)
    shared = {app: s for app, a in state.apps.items() if (s := shared_networks(a))}
    networks: list[agent_pb2.AppNetwork] = []
    for app, wanted in with_shared(mine, shared).items():
        services = {svc: s for (a, svc), s in state.services.items() if a == app}
        containers = [state.containers[k] for svc in services for k in state.by_service.get((app, svc), ())
                      if k in state.containers]
        blocks = [(n, network, a.subnet) for (n, a_, network, _), a in state.subnets.items() if a_ == app]
        built = app_networks(app, state.apps.get(app), services, containers, blocks, state.nodes)
        networks.extend(built[network] for network in wanted if network in built)
    return assemble(state.name, state.pod_cidr, networks)
