"""Subnets in a reconcile pass: give placed containers their node's blocks, free unused blocks.

The arithmetic lives in :mod:`controlplane.ipam` (pure); this is the glue that reads the pass's
view of containers and writes ``SubnetAllocation`` records next to the placements:

- ``attach`` runs on containers just placed on a node (before they are written). Every Compose
  network a container's service joins (``default`` when it lists none) is a network of its
  own, so each (application, network, node) triple keeps the block it has; one without gets a
  block sized for the containers it will hold, written in the same ``Writes`` and *needed* by
  each container write (see :mod:`controlplane.reconcile.writes`), so both land in one
  transaction or the container write fails too. The container records its blocks in
  ``Container.subnets`` (network -> block), which is how the agent learns them.
- ``release_unused`` deletes the blocks no container uses any more: the application left the
  node, was removed, or its containers there no longer join that network (an update took the
  service off it). A removed node's blocks go with it (the node delete is a range delete); a
  block whose node no longer exists is freed here as well.

When the cluster's range is full the containers stay pending with that reason instead of
being placed on a network the engine would have to improvise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping

import structlog

from ccs.networks import joined_networks
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey, SubnetKey
from controlplane.ipam import SubnetPool, block_prefix
from controlplane.reconcile.writes import Writes
from controlplane.store import keys

log = structlog.get_logger("ccs.reconcile")


class PassSubnets:
    """The cluster's blocks as one pass sees and changes them."""

    def __init__(
        self, state: ClusterState, container: Callable[[CtrKey], pb.Container | None],
        expected: Callable[[str], int] | None = None,
    ) -> None:
        self.state = state
        # Containers of an application one node is expected to hold (its share of the app's
        # replicas), so that a block is sized for services placed in later passes as well
        # (depends_on holds them back) and not only for the first ones placed.
        self._expected = expected or (lambda _app: 0)
        self._expected_cache: dict[str, int] = {}
        self.cluster = state.name
        self._container = container  # the pass's view (cache + what it changed)
        # Blocks this pass handed out or freed; the cache holds the rest (no copy per pass).
        self._new: dict[SubnetKey, str] = {}
        self._freed: set[SubnetKey] = set()
        self._pool: SubnetPool | None = None
        self._range: ipaddress.IPv4Network | None = None
        if state.pod_cidr:
            try:
                self._range = ipaddress.IPv4Network(state.pod_cidr)
            except ValueError:
                log.warning("cluster pod range does not parse", cluster=self.cluster, pod_cidr=state.pod_cidr)

    def held(self, key: SubnetKey) -> str | None:
        """The block of a pair, as this pass leaves it."""
        if key in self._new:
            return self._new[key]
        if key in self._freed:
            return None
        record = self.state.subnets.get(key)
        return record.subnet if record is not None else None

    @property
    def enabled(self) -> bool:
        """False for clusters created before ccs allocated subnets (the engine's pools then)."""
        return self._range is not None

    def pool(self) -> SubnetPool:
        if self._pool is None:
            assert self._range is not None
            used = []
            for text in [*(a.subnet for k, a in self.state.subnets.items() if k not in self._freed),
                         *self._new.values()]:
                try:
                    used.append(ipaddress.IPv4Network(text))
                except ValueError:
                    continue
            self._pool = SubnetPool(self._range, used)
        return self._pool

    def _count_on(self, app: str, node: str, network: str | None = None) -> int:
        """Containers of ``app`` on ``node`` (on ``network`` when given), as the pass sees them."""
        n = 0
        for k in self.state.by_node.get(node, ()):
            if k[0] != app:
                continue
            c = self._container(k)
            if c is not None and (network is None or network in _networks(c)):
                n += 1
        return n

    def _in_use(self, app: str, node: str, network: str) -> bool:
        """Whether a container of ``app`` on ``node`` holds the block of ``network`` (its
        ``subnets`` names it: containers placed before each Compose network had blocks of its
        own hold only the default one)."""
        for k in self.state.by_node.get(node, ()):
            if k[0] == app and (c := self._container(k)) is not None and c.node == node and network in _held(c):
                return True
        return False

    def attach(self, app: str, placed: Iterable[pb.Container], writes: Writes) -> list[pb.Container]:
        """Give each placed container the blocks of its networks; return those left unplaced
        (range full).

        Call before the containers are written; each write must then pass ``needs_of(c)``.
        """
        if not self.enabled:
            return []
        wanting: dict[tuple[str, str], list[pb.Container]] = {}  # (node, network) -> containers
        for c in placed:
            if c.node and c.desired_state == pb.DESIRED_STATE_RUNNING:
                for network in _networks(c):
                    if network not in c.subnets:
                        wanting.setdefault((c.node, network), []).append(c)
        unplaced: dict[int, pb.Container] = {}
        for (node, network), containers in sorted(wanting.items()):
            containers = [c for c in containers if id(c) not in unplaced]
            if not containers:
                continue
            key = (node, app, network)
            subnet = self.held(key)
            if subnet is None:
                if app not in self._expected_cache:
                    self._expected_cache[app] = self._expected(app)
                demand = max(self._count_on(app, node, network) + len(containers), self._expected_cache[app])
                block = self.pool().allocate(block_prefix(demand))
                if block is None:
                    reason = f"the cluster's pod range {self._range} has no free subnet left for {app} on {node}"
                    for c in containers:
                        unplaced[id(c)] = c
                        c.node = ""
                        c.subnets.clear()
                        c.status.state = pb.CONTAINER_STATE_PENDING
                        c.status.message = reason
                    continue
                subnet = str(block)
                self._new[key] = subnet
                record = pb.SubnetAllocation(application=app, network=network, node=node, subnet=subnet)
                writes.put(keys.subnet(self.cluster, *key), record, 0, "subnet", f"{app}/{network}@{node}")
            for c in containers:
                c.subnets[network] = subnet
        return list(unplaced.values())

    def needs_of(self, c: pb.Container) -> tuple[str, ...]:
        """The subnet keys a container write needs to exist."""
        if not self.enabled or not c.node:
            return ()
        return tuple(keys.subnet(self.cluster, c.node, c.application, net) for net in sorted(c.subnets)
                     if self.held((c.node, c.application, net)))

    def release_unused(
        self, writes: Writes, overlay: Mapping[CtrKey, pb.Container | None], *, full: bool
    ) -> None:
        """Delete the blocks of pairs left with no container.

        ``overlay`` holds the containers this pass changed (None: deleted). A pass checks the
        pairs that lost a container in it; a full pass checks every block (and frees those of
        nodes that are gone), so nothing depends on having seen the deletion.
        """
        if not self.state.subnets:
            return
        if full:
            candidates = {(node, app) for node, app, _ in self.state.subnets}
        else:
            candidates = set()
            for key, c in overlay.items():
                orig = self.state.containers.get(key)
                if c is None and orig is not None and orig.node:
                    candidates.add((orig.node, orig.application))
        for node, app in sorted(candidates):
            overlaid = [c for c in overlay.values() if c is not None and c.node == node and c.application == app]
            for key in [k for k in self.state.subnets if k[0] == node and k[1] == app]:
                network = key[2]
                if node in self.state.nodes and (any(network in _held(c) for c in overlaid)
                                                 or self._in_use(app, node, network)):
                    continue
                writes.delete(keys.subnet(self.cluster, *key), 0, "subnet", f"{app}/{network}@{node}")
                self._freed.add(key)


def _networks(c: pb.Container) -> tuple[str, ...]:
    """The Compose networks a container joins (its service's, ``default`` when it lists none;
    none with ``network_mode: host``, which puts it on its node's network)."""
    if c.spec.network_mode == "host":
        return ()
    return joined_networks(n.name for n in c.spec.networks)


def _held(c: pb.Container) -> Iterable[str]:
    """The networks whose blocks ``c`` holds: its ``subnets`` (a record without any, e.g. written
    by a test or a tool, is taken to hold those of all its networks)."""
    return c.subnets.keys() if c.subnets else _networks(c)
