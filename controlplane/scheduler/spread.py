"""The spread tree: where the next replica of a service should go, in O(depth x log n).

Swarm's spread preference semantics: with ``spread: [node.labels.zone, node.labels.rack]`` the
eligible nodes are grouped by zone, each zone by rack, and each replica goes to the zone with the
fewest replicas of the service, then to that zone's rack with the fewest, then to the node with the
fewest. Nodes without the label form one group of their own. Spread preferences come before the
per-node count on purpose: 6 replicas over zone a (2 nodes) and zone b (1 node) must end 3/3, not
2/2/2 (which is 4/2 by zone).

Each group keeps its children in a heap keyed by (replicas of this service, label missing, value);
leaves keep nodes keyed by (replicas of this service, all containers, node name). So the order is:
spread groups, then fewest of this service, then least loaded, then node name.

Placing replicas one at a time, greedily, rather than dividing a batch up front (as swarmkit's
``scheduleNTasksOnSubtree`` does) makes the result independent of batching: placing 3 then 3
replicas gives exactly what placing 6 at once gives, which a level-triggered reconciler needs,
since it may be interrupted between batches.

Only the chosen path's keys change after a placement, so each step is a pop and a push per level.
A node that fails a dynamic filter (ports, CPU, memory, max per node) is dropped for the rest of the
call: within one call the view only fills up, so it cannot start fitting again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .nodes import NodeState

Fits = Callable[[NodeState], bool]
"""Dynamic filter: true when the node can take one more container now (records why not)."""


@dataclass(slots=True, eq=False)
class _Group:
    count: int = 0
    children: dict[str | None, _Group] = field(default_factory=dict)
    # Branch heap: (count, label missing, value, child); leaf heap: (count, total, name, node).
    heap: list[tuple[int, bool, str, _Group]] = field(default_factory=list)
    nodes: list[tuple[int, int, str, NodeState]] = field(default_factory=list)

    def freeze(self) -> None:
        """Turn the build-time dicts and lists into heaps, children first."""
        for value, child in self.children.items():
            child.freeze()
            self.heap.append((child.count, value is None, value or "", child))
        self.children.clear()
        heapq.heapify(self.heap)
        heapq.heapify(self.nodes)

    def take(self, fits: Fits) -> NodeState | None:
        """Choose the best node that fits, account one replica to it, or None if none fits."""
        chosen = self._take_node(fits) if self.nodes else self._take_branch(fits)
        if chosen is not None:
            self.count += 1
        return chosen

    def _take_node(self, fits: Fits) -> NodeState | None:
        heap = self.nodes
        while heap:
            count, total, name, node = heap[0]
            if fits(node):
                heapq.heapreplace(heap, (count + 1, total + 1, name, node))
                return node
            heapq.heappop(heap)
        return None

    def _take_branch(self, fits: Fits) -> NodeState | None:
        heap = self.heap
        while heap:
            count, missing, value, child = heap[0]
            node = child.take(fits)
            if node is not None:
                heapq.heapreplace(heap, (count + 1, missing, value, child))
                return node
            heapq.heappop(heap)
        return None


class SpreadTree:
    """Candidate nodes for one service, grouped by its spread labels."""

    __slots__ = ("_root",)

    def __init__(
        self, nodes: Iterable[NodeState], labels: tuple[str, ...], counts: Mapping[str, int]
    ) -> None:
        """``counts`` is the service's replica count per node name, from the live containers."""
        root = _Group()
        for node in nodes:
            here = counts.get(node.name, 0)
            group = root
            group.count += here
            for label in labels:
                value = node.labels.get(label)
                group = group.children.setdefault(value, _Group())
                group.count += here
            group.nodes.append((here, node.containers, node.name, node))
        root.freeze()
        self._root = root

    def take(self, fits: Fits) -> NodeState | None:
        """The node for the next replica, or None when no candidate fits any more."""
        return self._root.take(fits)
