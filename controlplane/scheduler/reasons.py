"""Why nodes were left out, collected per node and told as one aggregate sentence.

A DevOps engineer reading ``ccs service ps`` wants one line that says what to fix, not 500 lines
(one per node). Each node is rejected by the *first* filter it fails, in pipeline order; the
headline names the *deepest* filter any node reached, because that is the one that finally left
nothing: if two nodes are drained and the third lacks CPU, adding CPU is what helps. The
parenthesis then counts every node by its reason, largest group first, e.g.
``no node has 2 CPUs free (3 nodes: 2 drained, 1 has 0.5 CPUs free)``.
"""

from __future__ import annotations

from collections import Counter
from enum import IntEnum

from .demand import Demand, PortKey, format_port

MAX_GROUPS = 4
"""Reason groups shown in the parenthesis; the rest are summed up so the line stays short."""

_PLURAL_VERBS = {"has": "have", "is": "are", "runs": "run", "uses": "use"}


class Stage(IntEnum):
    """The filter pipeline, in the order it runs (cheap and static first)."""

    READY = 0
    CONSTRAINTS = 1
    MAX_REPLICAS = 2
    PORTS = 3
    CPU = 4
    MEMORY = 5


def format_cpus(cpus: float) -> str:
    value = round(max(cpus, 0.0), 3)
    return f"{value:g} CPU" + ("" if value == 1 else "s")


def format_bytes(amount: int) -> str:
    value = float(max(amount, 0))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"
        value /= 1024
    return f"{value:.1f}".rstrip("0").rstrip(".") + " TiB"


def _agree(count: int, phrase: str) -> str:
    """``1 has zone=us`` but ``3 have zone=us``: only the leading verb changes."""
    verb, _, rest = phrase.partition(" ")
    if count != 1 and verb in _PLURAL_VERBS:
        return f"{_PLURAL_VERBS[verb]} {rest}"
    return phrase


Rejected = dict[str, tuple[Stage, str]]
"""Node name -> (first filter it failed, why)."""


class Rejections:
    """The first failed filter of each node for one service, kept for the final reason.

    ``static`` holds the rejections by the static filters (readiness, constraints), which a
    ClusterView shares between services with the same constraints; it is only read here.
    """

    __slots__ = ("_by_node", "_demand", "_ports", "_static")

    def __init__(self, demand: Demand, static: Rejected | None = None) -> None:
        self._demand = demand
        self._static: Rejected = static or {}
        self._by_node: Rejected = {}
        self._ports: set[PortKey] = set()

    def reject(self, node: str, stage: Stage, detail: str) -> None:
        self._by_node[node] = (stage, detail)

    def reject_port(self, node: str, port: PortKey) -> None:
        self._ports.add(port)
        self._by_node[node] = (Stage.PORTS, f"uses port {format_port(port)}")

    def summary(self) -> str:
        """One line: the deepest filter's headline, then every node counted by its reason."""
        by_node = {**self._static, **self._by_node}
        if not by_node:
            return "no nodes in the cluster"
        deepest = max(stage for stage, _ in by_node.values())
        groups = Counter(by_node.values())
        ordered = sorted(groups.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))
        parts = [f"{n} {_agree(n, detail)}" for (_, detail), n in ordered[:MAX_GROUPS]]
        rest = sum(n for _, n in ordered[MAX_GROUPS:])
        if rest:
            parts.append(f"{rest} for other reasons")
        total = len(by_node)
        nodes = f"{total} node" + ("" if total == 1 else "s")
        return f"{self._headline(deepest)} ({nodes}: {', '.join(parts)})"

    def _headline(self, stage: Stage) -> str:
        demand = self._demand
        if stage is Stage.READY:
            return "no ready node"
        if stage is Stage.CONSTRAINTS:
            return "no node satisfies " + " and ".join(str(c) for c in demand.constraints)
        if stage is Stage.MAX_REPLICAS:
            if demand.is_global:
                return "every eligible node already runs this global service"
            return f"every eligible node already runs max_replicas_per_node={demand.max_per_node}"
        if stage is Stage.PORTS:
            ports = ", ".join(format_port(p) for p in sorted(self._ports))
            if len(self._ports) == 1:
                return f"port {ports} is taken on every eligible node"
            return f"every eligible node already uses one of ports {ports}"
        if stage is Stage.CPU:
            return f"no node has {format_cpus(demand.cpus)} free"
        return f"no node has {format_bytes(demand.memory)} memory free"
