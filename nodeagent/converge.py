"""Pure convergence planning: (desired container, observed container) -> local actions.

The executor calls `plan_one` for one ccs container id each time that id is dirty (a new
assignment, a Docker event, a resync). A local container of this cluster that no assignment
names (an orphan: the agent's resync enqueues those once a COMPLETE set arrived) is planned
with `container=None` and removed. Nothing here does I/O, so every rule is a row in a table
test:

- RUNNING: create (prepare, create, start) when absent; start a created-but-never-started
  container (an agent crash between create and start); otherwise adopt or just report.
  An exited container is NOT restarted: the control plane owns restarts and creates a new
  container, so the agent reports EXITED with the exit code.
- STOPPED: stop with the grace period and keep the container; report STOPPED.
- REMOVED / action REMOVE: stop with grace, remove (anonymous volumes unless the container's
  meta.labels say `ccs.keep-volumes=true`), report REMOVED.
- A permanent failure (bad image, invalid spec) is final for that container id: the plan
  only re-reports it, it never retries the same spec.
- Drain before stop: a STOP or REMOVE waits until the container's `stop_after` (the routers
  drop a retiring container at once, and it keeps serving what they already sent it until
  then). `drain_remaining` says how long; the executor re-plans the id after that. Then
  `router_hold` also waits for this node's own router to have stopped routing to it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ccs.labels import keeps_volumes
from ccs.v1 import resources_pb2
from nodeagent.runtime.types import Observed, State

DEFAULT_GRACE_SECONDS = 10.0

#: Observed states in which the container's process is (still) running.
LIVE_STATES = frozenset(
    {
        State.CONTAINER_STATE_RUNNING,
        State.CONTAINER_STATE_HEALTHY,
        State.CONTAINER_STATE_UNHEALTHY,
        State.CONTAINER_STATE_STARTING,
    }
)


class Kind(enum.Enum):
    CREATE = "create"  # prepare (pull when needed), create, start
    START = "start"  # created but never started
    ADOPT = "adopt"  # found running after an agent restart: take it as it is
    STOP = "stop"  # stop with grace, keep it
    REMOVE = "remove"  # stop with grace, remove, report REMOVED
    REMOVE_ORPHAN = "remove-orphan"  # stop and remove a container nobody assigns; no report
    REPORT = "report"  # report the given state (observed, or a state the agent knows better)


@dataclass(frozen=True, slots=True)
class LocalAction:
    """One step for the executor. `container` is None only for REMOVE_ORPHAN."""

    kind: Kind
    container_id: str
    container: resources_pb2.Container | None = None
    observed: Observed | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    volumes: bool = True
    state: int = State.CONTAINER_STATE_UNSPECIFIED  # REPORT: the state to report
    message: str | None = None  # REPORT: why, when the agent knows better than the engine


def grace_seconds(c: resources_pb2.Container) -> float:
    ms = c.spec.stop_grace_period_ms
    return ms / 1000.0 if ms > 0 else DEFAULT_GRACE_SECONDS


def drain_remaining(action: LocalAction, now: float) -> float:
    """Seconds a STOP/REMOVE must still wait for the container's `stop_after`; 0: go ahead."""
    c = action.container
    if action.kind not in (Kind.STOP, Kind.REMOVE) or c is None or not c.HasField("stop_after"):
        return 0.0
    if action.observed is None or action.observed.state not in LIVE_STATES:
        return 0.0  # nothing is serving: no traffic to drain
    return max(0.0, c.stop_after.ToNanoseconds() / 1e9 - now)


ROUTER_SETTLE = 0.5
"""Seconds a draining container keeps running after the local router stopped sending it requests,
for the requests it already had."""
ROUTER_WAIT_MAX = 15.0
"""A stop is never held longer than this past ``stop_after`` for a router that lags or is broken."""
ROUTER_RECHECK = 0.25


def router_hold(action: LocalAction, now: float, unrouted_for: float | None) -> float:
    """Seconds a draining STOP/REMOVE waits *after* ``stop_after`` for the node's own router.

    ``stop_after`` is the control plane's estimate of when every router has dropped the container;
    a router busy with a reload can take longer on a loaded host. So the stop also waits until this
    node's router has applied a config that sends the container no new requests, plus
    ``ROUTER_SETTLE``. ``unrouted_for``: seconds since the router stopped routing to the container
    (``inf`` if it never did), None while it still does. Routers on other nodes are not seen here.
    """
    c = action.container
    if drain_remaining(action, now) > 0 or c is None or not c.HasField("stop_after"):
        return 0.0
    if action.observed is None or action.observed.state not in LIVE_STATES:
        return 0.0
    if now - c.stop_after.ToNanoseconds() / 1e9 >= ROUTER_WAIT_MAX:
        return 0.0
    if unrouted_for is None:
        return ROUTER_RECHECK
    return max(0.0, ROUTER_SETTLE - unrouted_for)


def remove_volumes(labels: Mapping[str, str]) -> bool:
    """Anonymous volumes go with the container unless `ccs.keep-volumes=true`."""
    return not keeps_volumes(labels)


def never_started(o: Observed) -> bool:
    return o.state == State.CONTAINER_STATE_STARTING and o.started_at is None


def plan_one(
    cid: str,
    container: resources_pb2.Container | None,
    removing: bool,
    observed: Observed | None,
    *,
    tracked: bool,
    failed: bool,
) -> list[LocalAction]:
    """The actions for one ccs container id.

    `tracked`: the agent created or adopted this container before (else an observed one is
    adopted; a tracked one that vanished is reported FAILED rather than recreated).
    `failed`: a permanent failure was already reported for this id.
    """
    if container is None:
        if observed is None:
            return []
        return [
            LocalAction(Kind.REMOVE_ORPHAN, cid, observed=observed, volumes=remove_volumes(observed.labels))
        ]
    grace = grace_seconds(container)
    if removing or container.desired_state == resources_pb2.DESIRED_STATE_REMOVED:
        return [
            LocalAction(
                Kind.REMOVE, cid, container, observed, grace, remove_volumes(container.meta.labels)
            )
        ]
    if container.desired_state == resources_pb2.DESIRED_STATE_STOPPED:
        if observed is not None and observed.state in LIVE_STATES and not never_started(observed):
            return [LocalAction(Kind.STOP, cid, container, observed, grace)]
        return [LocalAction(Kind.REPORT, cid, container, observed, state=State.CONTAINER_STATE_STOPPED)]
    # RUNNING (UNSPECIFIED is treated as RUNNING: an assignment means "run this").
    if failed:
        return [LocalAction(Kind.REPORT, cid, container, observed, state=State.CONTAINER_STATE_FAILED)]
    if observed is None:
        if tracked:  # it ran here and vanished: recreating it would be a restart, which is not ours
            return [
                LocalAction(
                    Kind.REPORT, cid, container, state=State.CONTAINER_STATE_FAILED,
                    message="container removed outside of ccs",
                )
            ]
        return [LocalAction(Kind.CREATE, cid, container)]
    if never_started(observed):
        return [LocalAction(Kind.START, cid, container, observed)]
    kind = Kind.REPORT if tracked else Kind.ADOPT
    return [LocalAction(kind, cid, container, observed, state=observed.state)]

