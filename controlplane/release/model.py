"""The values the release planner takes and returns, and the small shared rules about releases.

Kept apart from the strategies so that the routing table (which must agree with the planner on
which containers are "new") can import them without importing any state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import resources_pb2 as pb
from controlplane.planner.actions import Action, describe

from .errors import ReleaseError

ROLLING: Final = "rolling"
BLUE_GREEN: Final = "blue-green"
CANARY: Final = "canary"
STRATEGIES: Final = (ROLLING, BLUE_GREEN, CANARY)

GROUP_STABLE: Final = "stable"
GROUP_CANARY: Final = "canary"
GROUP_GREEN: Final = "green"

DRAIN_SECONDS: Final = 2.0
"""Default time between a container leaving the routers and its stop signal (``stop_after``)."""

TERMINAL: Final = TERMINAL_PHASES
"""Phases in which a release has ended; defined once in :mod:`ccs.release_phases` for the clients too."""
ROUTED_PHASES: Final = frozenset(
    {
        pb.RELEASE_PHASE_UNSPECIFIED,
        pb.RELEASE_PHASE_PROGRESSING,
        pb.RELEASE_PHASE_PAUSED,
        pb.RELEASE_PHASE_AWAITING_SHIFT,
        pb.RELEASE_PHASE_ROLLING_BACK,
    }
)
"""Phases in which a blue-green or canary release splits traffic into groups."""


@dataclass(frozen=True)
class Retire:
    """Take a container out of service: desired REMOVED and ``stop_after = now + drain_seconds``.

    Routers give a container weight 0 as soon as it is not desired RUNNING or has ``stop_after``,
    so ``drain_seconds`` is the time in-flight requests get before the agent sends the stop
    signal. The applier maps this to ``SetDesired(REMOVED)`` plus ``Container.stop_after``; a
    container that was never placed can simply be deleted.
    """

    container: str
    drain_seconds: float
    reason: str


ReleaseAction = Action | Retire


def describe_action(action: ReleaseAction) -> str:
    """One line for logs, events and test failure output."""
    if isinstance(action, Retire):
        return f"{action.container} -> retire (drain {action.drain_seconds:g}s): {action.reason}"
    return describe(action)


@dataclass(frozen=True)
class ReleaseStats:
    """Router counters summed over every node for the release's changed services.

    ``new_*``: containers of the generation being released; ``old_*``: every other container of
    those services (for comparison in the status). Counters are cumulative per container, so a
    router reload that resets them only makes the analysis see fewer requests, never more.
    ``*_errors`` are 5xx responses plus connection errors (HAProxy answers those with 503 but does
    not count them in the server's 5xx counter).
    """

    new_requests: int = 0
    new_errors: int = 0
    old_requests: int = 0
    old_errors: int = 0

    @property
    def new_error_ratio(self) -> float:
        return self.new_errors / self.new_requests if self.new_requests else 0.0

    @property
    def old_error_ratio(self) -> float:
        return self.old_errors / self.old_requests if self.old_requests else 0.0


@dataclass(frozen=True)
class ReleasePlan:
    """What to write for one release, in the same etcd transaction as the container changes.

    ``revert``: the applier sets every service of ``release.spec.services`` back to
    ``spec.previous_specs[s]`` / ``spec.previous_generations[s]`` (``last_generation`` keeps the
    max) and removes the services the release added (absent from ``previous_specs``). It is True
    on every pass of a rolling-back release until the services are back, so an applier that
    crashed in between catches up. ``requeue_after``: plan again after this many seconds even if
    nothing changes (a hold, a monitor period or a deadline ends); the caller must also replan when
    a container of the application changes, router stats arrive, or a request is appended.
    """

    actions: tuple[ReleaseAction, ...]
    status: pb.ReleaseStatus
    revert: bool = False
    requeue_after: float | None = None


def is_new(release: pb.Release, container: pb.Container) -> bool:
    """Whether ``container`` belongs to the generation this release introduced.

    A release bumps every changed service to ``last_generation + 1``, so everything newer than the
    generation recorded before the release is the release's own. (After a rollback the services
    are back at ``previous_generations``; the release's containers are still "new" and are the
    ones to take out.) Services the release added, or did not change, have no "new" side.
    """
    prev = release.spec.previous_generations
    return container.service in prev and container.spec_generation > prev[container.service]


def splits_traffic(release: pb.Release | None) -> bool:
    """A blue-green or canary release that is still running: its containers are in groups."""
    return (
        release is not None
        and release.spec.strategy in (BLUE_GREEN, CANARY)
        and release.status.phase in ROUTED_PHASES
    )


def new_group(release: pb.Release) -> str:
    return GROUP_GREEN if release.spec.strategy == BLUE_GREEN else GROUP_CANARY


def is_ab(release: pb.Release) -> bool:
    """An A/B canary: requests are routed by header or cookie, not by weight."""
    spec = release.spec
    return bool(spec.match_value) and bool(spec.match_header or spec.match_cookie)


def strategy_for(requested: str, services: Sequence[pb.Service] | Mapping[str, pb.Service]) -> str:
    """The strategy of a new release: an explicit flag wins; else the template; else rolling.

    The template asks with a service's ``strategy`` (``x-ccs.strategy``); aliyun's
    ``aliyun.rolling_updates`` labels and a Compose ``update_config`` both mean rolling, which is
    also the default (what ``docker stack deploy`` does). Raises ``ReleaseError`` for an unknown
    strategy or for services asking for different ones.
    """
    if requested:
        if requested not in STRATEGIES:
            raise ReleaseError(f"strategy: {requested!r} is not one of {', '.join(STRATEGIES)}")
        return requested
    items = list(services.values()) if isinstance(services, Mapping) else list(services)
    asked = {s.spec.strategy for s in items if s.spec.strategy}
    for s in items:
        if s.spec.strategy and s.spec.strategy not in STRATEGIES:
            raise ReleaseError(
                f"services.{s.meta.name}.strategy: {s.spec.strategy!r} is not one of "
                f"{', '.join(STRATEGIES)}"
            )
    if len(asked) > 1:
        raise ReleaseError(
            f"strategy: the changed services ask for different strategies ({', '.join(sorted(asked))}); "
            "pass one explicitly"
        )
    return asked.pop() if asked else ROLLING
