"""The scheduler: which node each pending container of a service goes to.

Design choices:

- **Pure and deterministic.** Input is protobuf ``Node`` and ``Container`` messages, a
  :class:`ServiceRef` (application, service, ``ServiceSpec``) and the names of its pending
  containers; output is a :class:`PlacementResult`: ``{container: node}`` plus
  ``{container: reason}`` for those that fit nowhere. No I/O, no clock, no randomness: the
  reconcile pass that calls it writes the placements with the rest of its guarded writes, and
  the same input always gives the same placements, so a retried pass cannot flap containers
  between nodes. All ties break by node name, which is stable and readable
  (a random or id-based tie-break would make test tables and ``ccs service ps`` hard to predict).
- **A snapshot per pass** (:class:`ClusterView`): per-node free capacity, used ports and replica
  counts are computed once and updated as containers are placed, so many services can be placed in
  one pass at thousands of placements per second in pure Python (``tests/bench/scheduler.py``).
- **Filters, then a score**, as in Swarm. Filters, in order: node ready and active (not drained or
  paused), ``placement.constraints``, ``max_replicas_per_node`` (1 in global mode), host ports,
  reserved CPU, reserved memory. Score: ``placement.spread`` label groups (fewest replicas of the
  service first, nested preferences in order), then fewest replicas of the service on the node,
  then fewest containers, then node name.
- **One readable reason** when nothing fits, aggregated over all nodes, e.g.
  ``no node has 2 CPUs free (3 nodes: 2 drained, 1 has 0.5 CPUs free)``.

Public surface: :func:`place`, :func:`eligible_nodes`, :class:`ClusterView`, :class:`ServiceRef`,
:class:`PlacementResult`, :class:`InvalidSpecError`, and :class:`Constraint`,
:func:`parse_constraint`, :func:`parse_constraints` / :func:`parse_spread` for validating
templates with the scheduler's own rules.
"""

from .constraints import (
    Constraint,
    InvalidSpecError,
    parse_constraint,
    parse_constraints,
    parse_spread,
)
from .demand import PlacementResult, ServiceRef
from .view import ClusterView, eligible_nodes, place

__all__ = [
    "ClusterView",
    "Constraint",
    "InvalidSpecError",
    "PlacementResult",
    "ServiceRef",
    "eligible_nodes",
    "parse_constraint",
    "parse_constraints",
    "parse_spread",
    "place",
]
