"""The release planner: pure state machines for rolling, blue-green and canary releases.

``plan_release(release, app, services, containers, stats, routing_applied, now) -> ReleasePlan``
is a pure function, like the service planner: the reconciler reads the Release, the application's
services and containers, the routers' counters (summed by :func:`release_stats`) and whether every
router applied the current routing table, and writes the plan's actions, the new status and (when
``revert``) the reverted services in one guarded etcd transaction.

Design choices:

* **Resumable from the records alone.** The Release persists only phase, step, weight, failures,
  ``phase_since`` (stamped on every phase change and canary/blue-green step, so it is also "when
  this step began") and, for rolling, the slots in the update window and the failed containers
  already counted;
  everything else (whether a slot's new container is ready, whether a canary is ready, when a
  container became ready) is read back from the container records. A control-plane restart, a
  leader change or a replan with the same input gives the same plan.
* **Beside, per slot.** New containers are created in the same slot (replicated) or on the same node
  (global) as the old ones; the service planner leaves a slot holding two generations alone, so the
  release planner alone decides when the old one goes.
* **Nothing is retired while it gets traffic.** In blue-green and canary the old (or, on rollback,
  the new) side is retired only when its weight is 0 in the stored status and ``routing_applied``;
  :class:`Retire` then sets ``stop_after`` so in-flight requests drain. In rolling updates a retired
  container drops to weight 0 at once and drains for the same ``stop_after`` time.
* **Operator requests are data.** The API appends ``shift:N``, ``confirm``, ``rollback``, ``promote``,
  ``abort``, ``resume`` to ``status.requests``; each pass consumes them in order, and one that is
  not valid now is dropped with a history line saying why.
* **Rollback is a phase, not a different release.** ROLLING_BACK returns ``revert=True`` until the
  services are back at ``previous_generations``; then the containers of the abandoned generation are
  replaced (rolling: through the same window; blue-green/canary: after traffic is off them) and the release ends
  ROLLED_BACK.

Strategy details are in :mod:`.rolling`, :mod:`.bluegreen` and :mod:`.canary`.
"""

from .config import RollingConfig, rolling_config
from .errors import ReleaseError
from .model import (
    BLUE_GREEN,
    CANARY,
    DRAIN_SECONDS,
    GROUP_CANARY,
    GROUP_GREEN,
    GROUP_STABLE,
    ROLLING,
    STRATEGIES,
    TERMINAL,
    ReleaseAction,
    ReleasePlan,
    ReleaseStats,
    Retire,
    describe_action,
    is_ab,
    is_new,
    new_group,
    splits_traffic,
    strategy_for,
)
from .plan import plan_release
from .stats import release_stats
from .update import (
    DEFAULT_CANARY_ANALYSIS,
    DEFAULT_CANARY_STEPS,
    ReleaseOptions,
    UpdatePlan,
    desired_replicas,
    plan_update,
)

__all__ = [
    "BLUE_GREEN",
    "CANARY",
    "DEFAULT_CANARY_ANALYSIS",
    "DEFAULT_CANARY_STEPS",
    "DRAIN_SECONDS",
    "GROUP_CANARY",
    "GROUP_GREEN",
    "GROUP_STABLE",
    "ROLLING",
    "STRATEGIES",
    "TERMINAL",
    "ReleaseAction",
    "ReleaseError",
    "ReleaseOptions",
    "ReleasePlan",
    "ReleaseStats",
    "Retire",
    "RollingConfig",
    "UpdatePlan",
    "describe_action",
    "desired_replicas",
    "is_ab",
    "is_new",
    "new_group",
    "plan_release",
    "plan_update",
    "release_stats",
    "rolling_config",
    "splits_traffic",
    "strategy_for",
]
