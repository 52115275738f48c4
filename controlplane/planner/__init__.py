"""Pure planners: (desired state, observed state, now) -> actions. No I/O, no clock, no etcd.

ccs reconcilers are level-triggered, in the controller-runtime style: a change marks a service or
node dirty, and one pass over its cluster (:mod:`controlplane.reconcile`) reads the current records
from the informer cache (not etcd), calls a planner from this package, applies the returned actions
to copies of the records with :func:`apply_actions`, and writes the difference in etcd transactions
(at most 100 keys each) guarded by the ``mod_revision`` it read, so a plan made from a stale cache
is refused and made again. Because the planners are pure functions of their arguments (``now`` is
passed in, never read), they are tested with tables of named cases and no mocks, and running one
twice on the same input gives the same plan.

* :func:`plan_service`: replica counts, global services, restarts (restart policy with delay,
  max_attempts and window), the replacement of UNHEALTHY containers (:mod:`.unhealthy`),
  application stop/start/remove, ``depends_on`` gating, draining, record cleanup, and the
  ``ServiceStatus``. See :mod:`controlplane.planner.service` for the boundary with
  the release reconcilers and the scheduler.
* :func:`plan_node`: missed heartbeats -> DOWN -> (after a grace) reschedule (the moved containers'
  records stay, desired REMOVED, so a returning agent is told to remove them), except for services
  that wait for their node (:mod:`controlplane.planner.node_loss`: ``x-ccs.on_node_loss``).
* :func:`apply_actions`: the one meaning of every action over container records; the reconcile
  passes apply plans with it, and tests use it to check that planning again changes nothing.

Restart history and final outcomes are kept in ``Container.meta.labels`` under the reserved
``ccs.`` prefix (the names are in :mod:`ccs.labels`, which the SDK reads too), so no proto change
was needed.
"""

from .actions import (
    Action,
    ActionEvent,
    CreateContainer,
    DeleteContainer,
    MarkFinished,
    SetDesired,
    SetNodeState,
    describe,
    event_of,
)
from .apply import apply_actions
from .errors import PlanError
from .node import RECONNECT_FLOOR, NodePlan, liveness_deadline, mass_loss_hold, node_down_at, plan_node
from .restart import RestartPolicy, resolve_policy
from .service import ServicePlan, plan_service, target_state
from .status import Counts, DependencyState, count, waiting_for

__all__ = [
    "RECONNECT_FLOOR",
    "Action",
    "ActionEvent",
    "Counts",
    "CreateContainer",
    "DeleteContainer",
    "DependencyState",
    "MarkFinished",
    "NodePlan",
    "PlanError",
    "RestartPolicy",
    "ServicePlan",
    "SetDesired",
    "SetNodeState",
    "apply_actions",
    "count",
    "describe",
    "event_of",
    "liveness_deadline",
    "mass_loss_hold",
    "node_down_at",
    "plan_node",
    "plan_service",
    "resolve_policy",
    "target_state",
    "waiting_for",
]
