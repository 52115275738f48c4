"""``NetworkMaps``: one cluster's network maps, kept current change by change.

Why not call :func:`~controlplane.netmap.build.network_map` for every node on every change:
that scans the whole cluster once per node, and a pass or a burst of status reports changes
something every few milliseconds (issue 15: passes must not cost O(cluster)). Instead:

* indexes built once (one scan of the cluster's blocks and services): the blocks of each
  application, the networks each node has a block of, the services of each application;
* :meth:`NetworkMaps.observe` reads one change and marks dirty only the application whose
  networks it can alter: a block added or freed, a service's networks, aliases or health
  check, an application's network definitions (``internal``, ``external``), a node's address
  (every application with a block there), or a container whose contribution changed (ready
  and not leaving, and its addresses; a container on several networks, its addresses) - not
  its heartbeat-like status churn. Cost O(1) per change;
* :meth:`NetworkMaps.settle` returns the nodes whose map may have changed (every node with a
  block of a dirty application or of an application sharing a cluster network with it, and the
  node of a block added or freed) and drops the dirty applications' networks; O(those nodes);
* :meth:`NetworkMaps.parts_for` assembles one node's map from the applications' networks
  (with the other applications' entries of the cluster networks it has a block of), computing
  those that were dropped: O(the networks on the node) plus, per recomputed
  application, O(its services + containers + blocks). Each application's networks are kept
  encoded with their digest (:class:`~controlplane.netmap.delta.Part`, hashed once per
  recomputation), so a node's map is a dict of shared parts and a version computed from their
  digests (:class:`~controlplane.netmap.delta.NodeMap`), not a copy of every network for every
  node nor a hash of the whole map; the dispatcher sends a session the parts that changed
  (:func:`~controlplane.netmap.delta.delta`), or, when it opens, all of them.

The dispatcher asks ``parts_for`` only for nodes with an open session, so an application's
networks are recomputed at most once per batch of changes, and only if some connected node
takes part in them. The result equals :func:`network_map` at every point (tested).
"""

from __future__ import annotations

from typing import Any

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import has_health_check

from .build import (
    ClusterView,
    SubnetKey,
    app_networks,
    service_networks,
    serving,
    shared_networks,
)
from .delta import Key, NodeMap, Part, complete


class NetworkMaps:
    """One cluster's application networks for the network maps of its nodes."""

    def __init__(self, state: ClusterView) -> None:
        # app -> (node, network, index) -> subnet: every block (a pair may have several)
        self._blocks: dict[str, dict[tuple[str, str, int], str]] = {}
        self._on_node: dict[str, dict[str, dict[str, int]]] = {}  # node -> app -> network -> its blocks there
        self._services: dict[str, set[str]] = {}  # app -> service names
        self._networks: dict[str, dict[str, Part]] = {}  # app -> network -> its encoding and digest
        self._dirty: set[str] = set()
        self._touched: set[str] = set()  # nodes that gained or lost a block
        self._shared: dict[str, dict[str, str]] = {}  # app -> Compose network -> cluster network
        self._sharing: dict[str, set[str]] = {}  # cluster network -> apps joining it
        for key, record in state.subnets.items():
            self._put_block(key, record)
        for app, svc in state.services:
            self._services.setdefault(app, set()).add(svc)
        for app, application in state.apps.items():
            self._set_shared(app, shared_networks(application))
        self._touched.clear()

    # ------------------------------------------------------------------ changes

    def observe(self, state: ClusterView, kind: str, key: tuple[str, ...], old: Any, new: Any) -> None:
        """Read one informer change (``state`` already holds its new value)."""
        if kind == "subnet":
            node, app, network, index = key[0], key[1], key[2], int(key[3]) if len(key) > 3 else 0
            self._drop_block((node, app, network, index))
            if new is not None:
                self._put_block((node, app, network, index), new)
            self._touched.add(node)
            self._dirty.add(app)
        elif kind == "container":
            app, svc = key[0], key[1]
            service = state.services.get((app, svc))
            spec = service.spec if service is not None else pb.ServiceSpec()
            if app in self._blocks and _contribution(old, spec) != _contribution(new, spec):
                self._dirty.add(app)
        elif kind == "service":
            app, svc = key
            if new is None:
                self._services.get(app, set()).discard(svc)
            else:
                self._services.setdefault(app, set()).add(svc)
            if _service_shape(old) != _service_shape(new):
                self._dirty.add(app)
        elif kind == "application":
            if _network_flags(old) != _network_flags(new):
                app = key[0]
                groups = set(self._shared.get(app, {}).values())
                self._set_shared(app, shared_networks(new))
                for group in groups | set(self._shared.get(app, {}).values()):
                    for other in self._sharing.get(group, ()):
                        self._touched.update(self.nodes_of(other))
                self._touched.update(self.nodes_of(app))
                self._dirty.add(app)
        elif kind == "node":
            before = old.status.address if old is not None else None
            after = new.status.address if new is not None else None
            if before != after:
                self._dirty.update(self._on_node.get(key[0], {}))
                # and those with containers there (members carry their node's address)
                self._dirty.update(k[0] for k in state.by_node.get(key[0], ()) if k[0] in self._blocks)

    def settle(self) -> set[str]:
        """The nodes whose map may have changed since the last call; forgets the networks of
        the applications that changed, so ``map_for`` computes them again."""
        nodes, self._touched = self._touched, set()
        for app in self._dirty:
            self._networks.pop(app, None)
            nodes.update(node for node, _, _ in self._blocks.get(app, {}))
            for group in set(self._shared.get(app, {}).values()):
                for other in self._sharing.get(group, ()):
                    nodes.update(node for node, _, _ in self._blocks.get(other, {}))
        self._dirty.clear()
        return nodes

    def nodes_of(self, app: str) -> set[str]:
        """The nodes with a block of ``app``."""
        return {node for node, _, _ in self._blocks.get(app, {})}

    # ------------------------------------------------------------------ maps

    def parts_for(self, state: ClusterView, node: str) -> NodeMap:
        """The map ``node`` receives now, as parts with its version (call ``settle`` first
        after changes)."""
        parts: dict[Key, Part] = {}
        groups: set[str] = set()
        for app, wanted in self._on_node.get(node, {}).items():
            built = self._app(state, app)
            parts.update(((app, network), built[network]) for network in wanted if network in built)
            shared = self._shared.get(app, {})
            groups.update(shared[network] for network in wanted if network in shared)
        for group in sorted(groups):  # the other applications on the node's cluster networks
            for app in sorted(self._sharing.get(group, ())):
                if app not in self._blocks:
                    continue
                built = self._app(state, app)
                parts.update(((app, network), built[network]) for network, g in self._shared[app].items()
                             if g == group and network in built)
        return NodeMap.of(state.name, state.pod_cidr, parts)

    def encoded_for(self, state: ClusterView, node: str) -> tuple[int, bytes]:
        """The version of the map ``node`` receives now and its encoding without the version."""
        found = self.parts_for(state, node)
        return found.version, found.encoded()

    def map_for(self, state: ClusterView, node: str) -> agent_pb2.NetworkMap:
        """The map ``node`` receives now, as a message."""
        return complete(self.parts_for(state, node))

    def _app(self, state: ClusterView, app: str) -> dict[str, Part]:
        built = self._networks.get(app)
        if built is None:
            services = {svc: state.services[(app, svc)] for svc in self._services.get(app, ())
                        if (app, svc) in state.services}
            containers = [state.containers[k] for svc in services
                          for k in state.by_service.get((app, svc), ()) if k in state.containers]
            blocks = [(node, network, subnet) for (node, network, _), subnet in self._blocks.get(app, {}).items()]
            networks = app_networks(app, state.apps.get(app), services, containers, blocks, state.nodes)
            built = self._networks[app] = {name: Part.of(n) for name, n in networks.items()}
        return built

    # ------------------------------------------------------------------ indexes

    def _set_shared(self, app: str, mapping: dict[str, str]) -> None:
        for group in self._shared.pop(app, {}).values():
            apps = self._sharing.get(group)
            if apps is not None:
                apps.discard(app)
                if not apps:
                    del self._sharing[group]
        if mapping:
            self._shared[app] = mapping
            for group in mapping.values():
                self._sharing.setdefault(group, set()).add(app)

    def _put_block(self, key: SubnetKey, record: pb.SubnetAllocation) -> None:
        node, app, network, index = key
        blocks = self._blocks.setdefault(app, {})
        if (node, network, index) not in blocks:
            networks = self._on_node.setdefault(node, {}).setdefault(app, {})
            networks[network] = networks.get(network, 0) + 1
        blocks[(node, network, index)] = record.subnet

    def _drop_block(self, key: SubnetKey) -> None:
        node, app, network, index = key
        blocks = self._blocks.get(app)
        if blocks is None or blocks.pop((node, network, index), None) is None:
            return
        if not blocks:
            del self._blocks[app]
            self._networks.pop(app, None)
        apps = self._on_node.get(node)
        if apps is not None and app in apps and network in apps[app]:
            apps[app][network] -= 1
            if not apps[app][network]:
                del apps[app][network]
            if not apps[app]:
                del apps[app]
            if not apps:
                del self._on_node[node]


def _contribution(c: pb.Container | None, spec: pb.ServiceSpec) -> tuple[bool, tuple[tuple[str, str], ...]]:
    """What a container adds to the map: whether it is served, and its addresses (those of a
    container on several networks count whether it is served or not: they are members of its
    networks)."""
    if c is None:
        return (False, ())
    addresses = tuple(sorted(c.status.addresses.items()))
    if serving(c, spec):
        return (True, addresses)
    return (False, addresses if len(addresses) > 1 else ())


def _service_shape(s: pb.Service | None) -> tuple[Any, ...] | None:
    """What of a service the names depend on: its networks and aliases, and whether
    readiness waits for a health check (the fallback for containers without a spec)."""
    if s is None:
        return None
    nets = service_networks(s.spec)
    return (tuple(sorted((n, tuple(a)) for n, a in nets.items())),
            tuple(sorted(n.name for n in s.spec.networks)), has_health_check(s.spec))


def _network_flags(a: pb.Application | None) -> tuple[tuple[str, bool, bool, str], ...] | None:
    if a is None:
        return None
    return tuple(sorted((n.name, n.internal, n.external, n.external_name) for n in a.networks))
