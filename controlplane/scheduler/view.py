"""ClusterView: a snapshot of nodes and live containers that placements are made against.

Why a snapshot object rather than a bare function: one reconcile pass places many services, and
each placement needs per-node free CPU and memory, used host ports, container counts and this
service's replicas per node. Computing those from the container list costs O(containers); doing it
once per pass, and updating the snapshot in place as containers are placed, makes a pass
O(containers + placements x log nodes) instead of O(services x containers). It also means two
services placed in the same pass see each other's reservations and ports, so the pass never
over-commits a node even before anything is written to etcd.

The view is pure: it never does I/O, and the same nodes, containers and calls give the same
placements. Node order in the input does not matter (all ties break by node name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ccs.v1 import resources_pb2

from .constraints import Constraint
from .demand import Demand, PlacementResult, ServiceRef, published_ports
from .nodes import CPU_EPSILON, NodeState
from .reasons import Rejected, Rejections, Stage, format_bytes, format_cpus
from .spread import SpreadTree
from .usage import Usage
from .usage import holds_slot as _holds_slot


class ClusterView:
    """Nodes with their free capacity, built once per reconcile pass and reused for every service.

    ``containers`` may be every container of the cluster: only live ones (with a node, desired
    RUNNING) count. A live container's own spec snapshot gives its reservations and ports, since
    during a release old and new specs coexist. Containers on unknown nodes are ignored.

    ``usage`` (instead of or beside ``containers``) gives the same sums kept change by change
    (:class:`~controlplane.scheduler.usage.Usage`, the informer's): the view then costs O(nodes)
    to build, and copies a service's replica counts only when it first needs them. The view
    never changes ``usage``.
    """

    __slots__ = ("_base_counts", "_counts", "_eligible_cache", "_nodes")

    def __init__(
        self,
        nodes: Iterable[resources_pb2.Node],
        containers: Iterable[resources_pb2.Container] = (),
        *,
        usage: Usage | None = None,
    ) -> None:
        self._nodes: dict[str, NodeState] = {}
        for node in nodes:
            state = NodeState.of(node)
            if not state.name:
                raise ValueError("node.meta.name: must not be empty")
            if state.name in self._nodes:
                raise ValueError(f"node.meta.name: {state.name!r} appears twice")
            self._nodes[state.name] = state
        # The static filters depend only on the constraints: services that share them (most
        # share none) share the result, so a pass with many small services stays cheap.
        self._eligible_cache: dict[tuple[Constraint, ...], tuple[list[NodeState], Rejected]] = {}
        # (application, service) -> node name -> live replicas there: this view's own copy of
        # each service it touched; the others are read from the base (``usage``) on first use.
        self._counts: dict[tuple[str, str], dict[str, int]] = {}
        self._base_counts: dict[tuple[str, str], dict[str, int]] = usage.counts if usage is not None else {}
        if usage is not None:
            for name, used in usage.nodes.items():
                node_state = self._nodes.get(name)
                if node_state is None:
                    continue
                node_state.free_cpus -= used.cpus
                node_state.free_memory -= used.memory
                node_state.ports.update(used.ports)
                node_state.containers += used.containers
        for container in containers:
            if not _holds_slot(container):
                continue
            node_state = self._nodes.get(container.node)
            if node_state is None:
                continue
            reservations = container.spec.resources.reservations
            self._commit(
                node_state,
                (container.application, container.service),
                reservations.cpus,
                reservations.memory_bytes,
                published_ports(container.spec.ports),
            )

    def place(
        self, service: ServiceRef, pending: Sequence[str], *, on: str | None = None
    ) -> PlacementResult:
        """Choose a node for each pending container of ``service``, in the order given.

        The placements are recorded in the view, so the next call (for this service or another)
        sees them. Containers that do not fit get one aggregate reason. Raises
        :class:`~controlplane.scheduler.constraints.InvalidSpecError` for a spec that cannot be
        acted on (bad constraint, spread key, port or negative reservation).

        ``on`` restricts the choice to one node: for a container already bound to a node (a
        global service's container for that node), it runs every filter against that node, so
        a full node or a taken port leaves it unplaced with a reason instead of failing in Docker.
        """
        demand = Demand.of(service.spec, service.key)
        result = PlacementResult()
        if not pending:
            return result
        if len(set(pending)) != len(pending):
            twice = sorted({name for name in pending if pending.count(name) > 1})
            raise ValueError(f"pending: container names appear twice: {', '.join(twice)}")
        eligible, static = self._eligible(demand.constraints)
        if on is not None:
            if on not in self._nodes:
                raise ValueError(f"on: there is no node named {on!r}")
            eligible = [state for state in eligible if state.name == on]
            static = {name: why for name, why in static.items() if name == on}
        rejections = Rejections(demand, static)
        counts = self._service_counts(demand.key)
        tree = SpreadTree(eligible, demand.spread, counts)

        def fits(node: NodeState) -> bool:
            here = counts.get(node.name, 0)
            if demand.max_per_node and here >= demand.max_per_node:
                replicas = "replica" if here == 1 else "replicas"
                rejections.reject(node.name, Stage.MAX_REPLICAS, f"runs {here} {replicas}")
                return False
            for port in demand.ports:
                if port in node.ports:
                    rejections.reject_port(node.name, port)
                    return False
            if node.free_cpus + CPU_EPSILON < demand.cpus:
                free = format_cpus(node.free_cpus)
                rejections.reject(node.name, Stage.CPU, f"has {free} free")
                return False
            if node.free_memory < demand.memory:
                free = format_bytes(node.free_memory)
                rejections.reject(node.name, Stage.MEMORY, f"has {free} memory free")
                return False
            return True

        for index, name in enumerate(pending):
            chosen = tree.take(fits)
            if chosen is None:
                reason = rejections.summary()
                result.unplaced.update(dict.fromkeys(pending[index:], reason))
                break
            self._commit(chosen, demand.key, demand.cpus, demand.memory, demand.ports)
            result.assigned[name] = chosen.name
        return result

    def release(self, container: resources_pb2.Container) -> None:
        """Give back what ``container`` held in this view, for a container whose process is
        already gone (the engine freed its ports) and that stops holding its slot in this pass:
        a dead container retired by its restart, so that a replacement that must go to the same
        node (:data:`ccs.labels.LABEL_HOME_NODE`) is not turned away by its own predecessor."""
        node = self._nodes.get(container.node)
        if node is None or not _holds_slot(container):
            return
        reservations = container.spec.resources.reservations
        node.free_cpus += reservations.cpus
        node.free_memory += reservations.memory_bytes
        node.ports.difference_update(published_ports(container.spec.ports))
        node.containers -= 1
        counts = self._service_counts((container.application, container.service))
        if counts.get(node.name):
            counts[node.name] -= 1

    def eligible_nodes(
        self, spec: resources_pb2.ServiceSpec
    ) -> tuple[list[resources_pb2.Node], str]:
        """Nodes that may run the service at all (ready, active, constraints met), by name.

        For global mode: the service planner wants one container per node in this list. Capacity
        and ports are deliberately not checked here: a global container on a full node stays
        pending with a reason (as in Swarm) rather than silently not existing. The reason is
        empty when at least one node is eligible.
        """
        demand = Demand.of(spec)
        eligible, static = self._eligible(demand.constraints)
        reason = "" if eligible else Rejections(demand, static).summary()
        return [state.node for state in eligible], reason

    def replicas(self, application: str, service: str) -> dict[str, int]:
        """Live replicas of a service per node name, including placements made in this view."""
        return dict(self._service_counts((application, service)))

    def _service_counts(self, key: tuple[str, str]) -> dict[str, int]:
        """This view's replica counts of a service per node (known nodes only), copied from the
        base on first use so that placing it never changes the base."""
        counts = self._counts.get(key)
        if counts is None:
            base = self._base_counts.get(key, {})
            counts = self._counts[key] = {n: k for n, k in base.items() if n in self._nodes}
        return counts

    def _eligible(
        self, constraints: tuple[Constraint, ...]
    ) -> tuple[list[NodeState], Rejected]:
        """The static filters: readiness and availability, then constraints (cached)."""
        cached = self._eligible_cache.get(constraints)
        if cached is not None:
            return cached
        eligible: list[NodeState] = []
        rejected: Rejected = {}
        for state in sorted(self._nodes.values(), key=lambda s: s.name):
            if state.unready:
                rejected[state.name] = (Stage.READY, state.unready)
                continue
            violation = state.violation(constraints)
            if violation:
                rejected[state.name] = (Stage.CONSTRAINTS, violation)
                continue
            eligible.append(state)
        self._eligible_cache[constraints] = (eligible, rejected)
        return eligible, rejected

    def _commit(
        self,
        node: NodeState,
        key: tuple[str, str],
        cpus: float,
        memory: int,
        ports: Iterable[tuple[int, str]],
    ) -> None:
        node.free_cpus -= cpus
        node.free_memory -= memory
        node.ports.update(ports)
        node.containers += 1
        counts = self._service_counts(key)
        counts[node.name] = counts.get(node.name, 0) + 1


def place(
    service: ServiceRef,
    pending: Sequence[str],
    nodes: Iterable[resources_pb2.Node],
    containers: Iterable[resources_pb2.Container] = (),
) -> PlacementResult:
    """Place one service's pending containers against a fresh snapshot (see :class:`ClusterView`).

    For many services in one pass, build one ``ClusterView`` and call its ``place`` instead.
    """
    return ClusterView(nodes, containers).place(service, pending)


def eligible_nodes(
    spec: resources_pb2.ServiceSpec, nodes: Iterable[resources_pb2.Node]
) -> tuple[list[resources_pb2.Node], str]:
    """Nodes eligible for ``spec`` and, when there are none, why (see ``ClusterView``)."""
    return ClusterView(nodes).eligible_nodes(spec)


__all__ = ["ClusterView", "eligible_nodes", "place"]
