"""Subnets in a reconcile pass: give placed containers their node's blocks, free unused blocks.

The arithmetic lives in :mod:`controlplane.ipam` (pure); this is the glue that reads the pass's
view of containers and writes ``SubnetAllocation`` records next to the placements:

- ``attach`` runs on containers just placed on a node (before they are written). Every Compose
  network a container's service joins (``default`` when it lists none) is a network of its
  own, so each (application, network, node) triple has blocks of its own: a container takes
  the first with a free address, counting every container of the pair that still exists
  (:func:`controlplane.ipam.fill_share`); a pair without one, or whose blocks are full, gets
  another, sized for the containers it will hold, written in the same ``Writes`` and *needed*
  by each container write (see :mod:`controlplane.reconcile.writes`), so both land in one
  transaction or the container write fails too. The container records its block in
  ``Container.subnets`` (network -> block) and its index in ``Container.subnet_index`` (which
  names the bridge), which is how the agent learns them.
- ``release_unused`` deletes each block no container holds any more: the application left the
  node, was removed, its containers there no longer join that network (an update took the
  service off it), or the containers of a further block are gone. A removed node's blocks go
  with it (the node delete is a range delete); a block whose node no longer exists is freed
  here as well.

When the cluster's range is full the containers stay pending with that reason instead of
being placed on a network the engine would have to improvise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from ccs.networks import joined_networks
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, CtrKey, SubnetKey
from controlplane.ipam import GROWTH_HELD, MAX_BLOCKS, RANGE_FULL, ShareBlock, SubnetPool, fill_share, growth_hold
from controlplane.reconcile.writes import Writes
from controlplane.store import keys

log = structlog.get_logger("ccs.reconcile")


class PassSubnets:
    """The cluster's blocks as one pass sees and changes them."""

    def __init__(
        self, state: ClusterState, container: Callable[[CtrKey], pb.Container | None],
        expected: Callable[[str], int] | None = None,
        replicas: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.state = state
        # Live API replicas -> their declared features: while one is older than further
        # blocks, no pair grows (controlplane.ipam.growth); None: not known, taken as all new.
        self._replicas = replicas or {}
        self._holds: dict[str, str] = {}
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
        # The containers this pass gave each block (new ones are in no index of the cache).
        self._attached: dict[SubnetKey, set[CtrKey]] = {}
        self._pool: SubnetPool | None = None
        self._range: ipaddress.IPv4Network | None = None
        if state.pod_cidr:
            try:
                self._range = ipaddress.IPv4Network(state.pod_cidr)
            except ValueError:
                log.warning("cluster pod range does not parse", cluster=self.cluster, pod_cidr=state.pod_cidr)

    def held(self, key: SubnetKey) -> str | None:
        """One block of a pair, as this pass leaves it."""
        if key in self._new:
            return self._new[key]
        if key in self._freed:
            return None
        record = self.state.subnets.get(key)
        return record.subnet if record is not None else None

    def blocks_of(self, node: str, app: str, network: str) -> dict[int, str]:
        """The blocks of a pair by index, as this pass leaves them (a look-up per possible
        index: no scan of the cluster's blocks)."""
        return {i: subnet for i in range(MAX_BLOCKS) if (subnet := self.held((node, app, network, i)))}

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

    def _holders(self, app: str, node: str, network: str, blocks: Mapping[int, str]) -> dict[int, int]:
        """How many containers of ``app`` on ``node`` hold an address of each block of
        ``network``: every one that exists in the pass's view (stopping and draining ones too),
        and those this pass placed."""
        index = {subnet: i for i, subnet in blocks.items()}
        holders: dict[int, set[CtrKey]] = {i: set(self._attached.get((node, app, network, i), ())) for i in blocks}
        for k in self.state.by_node.get(node, ()):
            if k[0] != app or (c := self._container(k)) is None or c.node != node:
                continue
            i = index.get(c.subnets.get(network, ""))
            if i is not None:
                holders[i].add(k)
        return {i: len(keys_) for i, keys_ in holders.items()}

    def attach(self, app: str, placed: Iterable[pb.Container], writes: Writes) -> list[pb.Container]:
        """Give each placed container a block of each of its networks; return those left
        unplaced (range full, or the pair has the most blocks it may have).

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
            if app not in self._expected_cache:
                self._expected_cache[app] = self._expected(app)
            blocks = self.blocks_of(node, app, network)
            holders = self._holders(app, node, network, blocks)
            share = [ShareBlock(i, net, holders[i]) for i, text in sorted(blocks.items())
                     if (net := _parse(text)) is not None]
            fill = fill_share(share, len(containers), self._expected_cache[app], self.pool().allocate,
                              may_grow=not self.growth_hold(node))
            for b in fill.new:
                key = (node, app, network, b.index)
                self._new[key] = str(b.subnet)
                self._freed.discard(key)
                record = pb.SubnetAllocation(application=app, network=network, node=node, subnet=str(b.subnet),
                                             index=b.index)
                writes.put(keys.subnet(self.cluster, node, app, network, b.index), record, 0, "subnet",
                           _what(app, network, node, b.index))
            for c, got in zip(containers, fill.assigned, strict=True):
                if got is None:
                    unplaced[id(c)] = c
                    self._unplace(c, self._short_reason(fill.short, app, network, node))
                    continue
                c.subnets[network] = str(got.subnet)
                if got.index:
                    c.subnet_index[network] = got.index
                else:
                    c.subnet_index.pop(network, None)
                self._attached.setdefault((node, app, network, got.index), set()).add(_key(c))
        return list(unplaced.values())

    def _unplace(self, c: pb.Container, reason: str) -> None:
        for sets in self._attached.values():
            sets.discard(_key(c))
        c.node = ""
        c.subnets.clear()
        c.subnet_index.clear()
        c.status.state = pb.CONTAINER_STATE_PENDING
        c.status.message = reason

    def growth_hold(self, node: str) -> str:
        """Why a pair on ``node`` may get no further block in this pass ("" when it may)."""
        if node not in self._holds:
            n = self.state.nodes.get(node)
            status = n.status if n is not None else pb.NodeStatus()
            self._holds[node] = growth_hold(node, status.agent_features, status.agent_version, self._replicas)
        return self._holds[node]

    def _short_reason(self, short: str, app: str, network: str, node: str) -> str:
        if short == GROWTH_HELD:
            return f"network {network} of {app} on {node} needs another address block, held: {self.growth_hold(node)}"
        if short == RANGE_FULL:
            return f"the cluster's pod range {self._range} has no free subnet left for {app} on {node}"
        return (f"network {network} of {app} on {node} has {MAX_BLOCKS} address blocks, the most a network "
                "may have on one node")

    def needs_of(self, c: pb.Container) -> tuple[str, ...]:
        """The subnet keys a container write needs to exist: the blocks it holds."""
        if not self.enabled or not c.node:
            return ()
        out = []
        for net in sorted(c.subnets):
            index = c.subnet_index.get(net, 0)
            if self.held((c.node, c.application, net, index)):
                out.append(keys.subnet(self.cluster, c.node, c.application, net, index))
        return tuple(out)

    def release_unused(
        self, writes: Writes, overlay: Mapping[CtrKey, pb.Container | None], *, full: bool
    ) -> None:
        """Delete the blocks no container holds.

        ``overlay`` holds the containers this pass changed (None: deleted). A pass checks the
        pairs that lost a container in it; a full pass checks every block (and frees those of
        nodes that are gone), so nothing depends on having seen the deletion.
        """
        if not self.state.subnets:
            return
        if full:
            candidates = {(node, app) for node, app, _, _ in self.state.subnets}
        else:
            candidates = set()
            for key, c in overlay.items():
                orig = self.state.containers.get(key)
                if c is None and orig is not None and orig.node:
                    candidates.add((orig.node, orig.application))
            if not candidates:
                return
        by_pair: dict[tuple[str, str], list[SubnetKey]] = {}
        for block in self.state.subnets:
            if (block[0], block[1]) in candidates:
                by_pair.setdefault((block[0], block[1]), []).append(block)
        placed_here: dict[tuple[str, str], list[CtrKey]] = {}  # containers this pass wrote, by pair
        for k, c in overlay.items():
            if c is not None and (c.node, c.application) in by_pair:
                placed_here.setdefault((c.node, c.application), []).append(k)
        for (node, app), blocks in sorted(by_pair.items()):
            held = self._held_on(app, node, placed_here.get((node, app), ())) if node in self.state.nodes else set()
            for block in sorted(blocks):
                network, subnet = block[2], self.state.subnets[block].subnet
                if (network, subnet) in held or (network, "") in held:
                    continue
                writes.delete(keys.subnet(self.cluster, *block), 0, "subnet", _what(app, network, node, block[3]))
                self._freed.add(block)

    def _held_on(self, app: str, node: str, placed: Iterable[CtrKey]) -> set[tuple[str, str]]:
        """(network, block) that containers of ``app`` on ``node`` hold (those of the cache and
        those ``placed`` in this pass); (network, "") for a container that records no blocks at
        all (written by a test or a tool: taken to hold every block of its networks)."""
        seen: set[CtrKey] = set()
        out: set[tuple[str, str]] = set()
        for k in (*self.state.by_node.get(node, ()), *placed):
            if k[0] != app or k in seen:
                continue
            seen.add(k)
            c = self._container(k)
            if c is None or c.node != node:
                continue
            if c.subnets:
                out.update(c.subnets.items())
            else:
                out.update((network, "") for network in _networks(c))
        return out


def _networks(c: pb.Container) -> tuple[str, ...]:
    """The Compose networks a container joins (its service's, ``default`` when it lists none;
    none with ``network_mode: host``, which puts it on its node's network)."""
    if c.spec.network_mode == "host":
        return ()
    return joined_networks(n.name for n in c.spec.networks)


def _key(c: pb.Container) -> CtrKey:
    return (c.application, c.service, c.meta.name)


def _parse(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        return None


def _what(app: str, network: str, node: str, index: int) -> str:
    """How a block's write names it (in a conflict's message)."""
    return f"{app}/{network}@{node}" + (f"#{index}" if index else "")
