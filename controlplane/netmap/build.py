"""``network_map(state, node)``: one node's view of its applications' networks, computed purely.

The pieces, each a pure function of records in the informer's cache:

* :func:`app_networks`: one application's networks (those with a block somewhere), each with
  every block and its node's address, and the names: every service on the network and each of
  its aliases there -> the addresses on that network of the service's containers that are
  ready and not leaving (:func:`serving`: the routing table's rule, from
  :mod:`controlplane.planner.containers`). A name whose containers are none of that is kept
  with no addresses, so a resolver knows the name is the application's and answers "no
  address" instead of forwarding it to an outside server that might know it.
* :func:`assemble`: the map of one node from the networks it has a block of, sorted, with its
  content-hash version.
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

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.content_version import content_version, encoded_version
from controlplane.ipam import DEFAULT_NETWORK, network_of
from controlplane.planner.containers import is_leaving, is_ready

SvcKey = tuple[str, str]  # (application, service)
CtrKey = tuple[str, str, str]  # (application, service, container name)
SubnetKey = tuple[str, str, str]  # (node, application, network)
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
    def subnets(self) -> Mapping[SubnetKey, pb.SubnetAllocation]: ...


def service_networks(spec: pb.ServiceSpec) -> dict[str, list[str]]:
    """Allocated network -> the service's aliases on it (Compose: no ``networks`` key means
    the application's "default" network)."""
    out: dict[str, list[str]] = {}
    for n in spec.networks or [pb.ServiceNetwork(name=DEFAULT_NETWORK)]:
        out.setdefault(network_of(n.name or DEFAULT_NETWORK), []).extend(a for a in n.aliases if a)
    return out


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


def _internal(application: pb.Application | None, services: Iterable[pb.Service], network: str) -> bool:
    """Compose ``internal: true``: every Compose network its services use that joins
    ``network`` is declared internal (one of them with egress gives the bridge egress)."""
    declared = {n.name: n.internal for n in application.networks} if application is not None else {}
    used = {n.name or DEFAULT_NETWORK for s in services for n in s.spec.networks or
            [pb.ServiceNetwork(name=DEFAULT_NETWORK)]}
    joining = [name for name in used if network_of(name) == network]
    return bool(joining) and all(declared.get(name, False) for name in joining)


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
    memberships = {svc: service_networks(s.spec) for svc, s in services.items()}
    for svc, nets in memberships.items():
        for network, aliases in nets.items():
            if network in names:
                for name in (svc, *aliases):
                    names[network].setdefault(name, set())
    for c in containers:
        service = services.get(c.service)
        if c.application != app or service is None or not serving(c, service.spec):
            continue
        for network, aliases in memberships[c.service].items():
            address = _ipv4(c.status.addresses.get(network, ""))
            if network not in names or address is None:
                continue
            for name in (c.service, *aliases):
                names[network][name].add(address)
    out: dict[str, agent_pb2.AppNetwork] = {}
    for network, found in rows.items():
        entry = agent_pb2.AppNetwork(
            application=app, network=network,
            internal=_internal(application, services.values(), network),
            blocks=[b for _, _, b in sorted(found, key=lambda r: (r[0], r[1]))],
        )
        for name, addresses in sorted(names[network].items()):
            entry.names.append(agent_pb2.NetworkName(name=name, addresses=[str(a) for a in sorted(addresses)]))
        out[network] = entry
    return out


def assemble(cluster: str, pod_cidr: str, networks: Iterable[agent_pb2.AppNetwork]) -> agent_pb2.NetworkMap:
    """The map made of ``networks`` (those with a block on the receiving node), sorted by
    (application, network), with its version."""
    ordered: list[agent_pb2.AppNetwork] = sorted(networks, key=lambda n: (n.application, n.network))
    m = agent_pb2.NetworkMap(cluster=cluster, pod_cidr=pod_cidr)
    m.networks.extend(ordered)
    m.version = content_version(m)
    return m


def encode_network(network: agent_pb2.AppNetwork) -> bytes:
    """``network`` as one entry of ``NetworkMap.networks`` on the wire (its field's encoding)."""
    one = agent_pb2.NetworkMap()
    one.networks.append(network)
    return one.SerializeToString(deterministic=True)


def assemble_encoded(cluster: str, pod_cidr: str, encoded: Iterable[tuple[tuple[str, str], bytes]]
                     ) -> tuple[int, bytes]:
    """``assemble`` from networks already encoded (``encode_network``), keyed by (application,
    network): the map's version and its encoding without the version.

    The encoding of a message is the concatenation of its fields' encodings in field-number
    order (cluster, pod_cidr, then each network), so this is byte for byte what ``assemble``
    serializes, and the version is the same - at the cost of hashing the bytes, not of copying
    and serializing every network again for every node.
    """
    head = agent_pb2.NetworkMap(cluster=cluster, pod_cidr=pod_cidr).SerializeToString(deterministic=True)
    raw = head + b"".join(part for _, part in sorted(encoded, key=lambda e: e[0]))
    return encoded_version(raw), raw


def network_map(state: ClusterView, node: str) -> agent_pb2.NetworkMap:
    """The map ``node`` receives: the application networks with a block on it.

    Scans the cluster's blocks and services: O(cluster). The dispatcher keeps maps current
    incrementally instead (:class:`~controlplane.netmap.cache.NetworkMaps`); this is the
    definition that cache is tested against.
    """
    mine: dict[str, set[str]] = {}
    for n, app, network in state.subnets:
        if n == node:
            mine.setdefault(app, set()).add(network)
    networks: list[agent_pb2.AppNetwork] = []
    for app, wanted in mine.items():
        services = {svc: s for (a, svc), s in state.services.items() if a == app}
        containers = [state.containers[k] for svc in services for k in state.by_service.get((app, svc), ())
                      if k in state.containers]
        blocks = [(n, network, a.subnet) for (n, a_, network), a in state.subnets.items() if a_ == app]
        built = app_networks(app, state.apps.get(app), services, containers, blocks, state.nodes)
        networks.extend(built[network] for network in wanted if network in built)
    return assemble(state.name, state.pod_cidr, networks)
