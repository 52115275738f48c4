"""Small, pure predicates over ``Container`` and ``Node`` messages shared by the planners.

Keeping them in one place means the service planner, the node planner, the status counts and the
reference ``apply_actions`` all agree on what "live", "dead", "ready" or "gone" mean.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ccs.container_states import TERMINAL_STATES
from ccs.labels import LABEL_OUTCOME
from ccs.v1 import resources_pb2 as pb

from .errors import PlanError

S = pb.ContainerState


def timestamp(ts: Timestamp) -> datetime | None:
    """A protobuf Timestamp as an aware UTC datetime; ``None`` when unset (the zero value)."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def require_aware(now: datetime, field: str = "now") -> None:
    """Planners compare ``now`` with UTC timestamps from etcd, so a naive datetime is a bug."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise PlanError(f"{field}: must be a timezone-aware datetime (got a naive one)")


def desired(c: pb.Container) -> pb.DesiredState:
    """The container's desired state; UNSPECIFIED (proto3 default) means RUNNING."""
    d = c.desired_state
    return pb.DESIRED_STATE_RUNNING if d == pb.DESIRED_STATE_UNSPECIFIED else d


def is_gone(c: pb.Container) -> bool:
    """Desired REMOVED: the record only waits for the agent to remove the Docker container."""
    return desired(c) == pb.DESIRED_STATE_REMOVED


def is_dead(c: pb.Container) -> bool:
    """Should run, but the agent observed it stopped, exited, failed or vanished."""
    return desired(c) == pb.DESIRED_STATE_RUNNING and c.status.state in TERMINAL_STATES


def is_live(c: pb.Container) -> bool:
    """Should run and has not (yet) been observed dead: pending, starting or running."""
    return desired(c) == pb.DESIRED_STATE_RUNNING and c.status.state not in TERMINAL_STATES


def reported_unhealthy(c: pb.Container) -> bool:
    """Should run, runs, and its health check (or ccs probe) reports it UNHEALTHY."""
    return is_live(c) and c.status.state == S.CONTAINER_STATE_UNHEALTHY


def outcome(c: pb.Container) -> str:
    """``completed``/``failed`` when the planner has stopped this container for good, else ``""``."""
    return str(c.meta.labels.get(LABEL_OUTCOME, ""))


def is_parked(c: pb.Container) -> bool:
    """Desired STOPPED because the application was stopped (not because of its restart policy)."""
    return desired(c) == pb.DESIRED_STATE_STOPPED and not outcome(c)


def has_health_check(spec: pb.ServiceSpec) -> bool:
    """Whether the agent will ever report HEALTHY for a container of this spec."""
    hc = spec.healthcheck
    compose_check = bool(hc.test) and list(hc.test)[:1] != ["NONE"] and not hc.disable
    return compose_check or bool(spec.probe.kind)


def is_leaving(c: pb.Container) -> bool:
    """On its way out: no longer desired RUNNING, or draining (``stop_after`` set).

    The routing table keeps such a container with weight 0 while it still runs, and the
    network map's names leave it out at once: both read "leaving" here, so a name stops
    answering the container the moment the routers stop sending it requests.
    """
    ts = c.stop_after
    return desired(c) != pb.DESIRED_STATE_RUNNING or ts.seconds != 0 or ts.nanos != 0


def is_ready(c: pb.Container, fallback: pb.ServiceSpec) -> bool:
    """Serving: HEALTHY, or RUNNING when its spec has no health check (as Swarm judges readiness).

    ``fallback`` is used when the container carries no spec snapshot.
    """
    if not is_live(c):
        return False
    state = c.status.state
    if state == S.CONTAINER_STATE_HEALTHY:
        return True
    spec = c.spec if c.HasField("spec") else fallback
    return state == S.CONTAINER_STATE_RUNNING and not has_health_check(spec)


def is_failure(c: pb.Container) -> bool:
    """A dead container counts as a failure unless it exited (or was stopped) with code 0."""
    state = c.status.state
    clean = state in (S.CONTAINER_STATE_EXITED, S.CONTAINER_STATE_STOPPED)
    return not (clean and c.status.exit_code == 0)


def died_at(c: pb.Container) -> datetime | None:
    """When the container was last seen changing state, the base of the restart delay.

    The agent's ``status.updated_at`` is the best clock we have; the record's own update time is the
    fallback. ``None`` means unknown, and the restart delay is then treated as elapsed: using ``now``
    instead would push the restart back on every pass and never restart at all.
    """
    return timestamp(c.status.updated_at) or timestamp(c.meta.updated_at)


def describe_exit(c: pb.Container) -> str:
    """``exited with code 1`` / ``failed: pull access denied`` / ``was removed``: for messages."""
    state = c.status.state
    if state == S.CONTAINER_STATE_FAILED:
        return f"failed: {c.status.message}" if c.status.message else "failed"
    if state == S.CONTAINER_STATE_REMOVED:
        return "was removed outside ccs"
    if state == S.CONTAINER_STATE_STOPPED:
        return f"was stopped outside ccs (code {c.status.exit_code})"
    if state == S.CONTAINER_STATE_UNHEALTHY:
        return "is unhealthy"
    return f"exited with code {c.status.exit_code}"


def sort_key_newest_first(c: pb.Container) -> tuple[float, str]:
    """Newest record first, then by id, so every choice between containers is deterministic."""
    created = timestamp(c.meta.created_at)
    return (-(created.timestamp() if created else 0.0), c.meta.id)


def node_is_draining(node: pb.Node | None) -> bool:
    """Containers on a DRAIN node are moved elsewhere by the service planner."""
    return node is not None and node.spec.availability == pb.NODE_AVAILABILITY_DRAIN


def slot_rank(c: pb.Container) -> tuple[int, float, str]:
    """Which container keeps a slot: live and ready first, then parked, dead, finished; newest."""
    if is_live(c):
        state = c.status.state
        rank = 0 if state == pb.CONTAINER_STATE_HEALTHY else 1 if state == pb.CONTAINER_STATE_RUNNING else 2
    elif is_parked(c):
        rank = 3
    elif is_dead(c):
        rank = 4
    else:
        rank = 5
    newest, cid = sort_key_newest_first(c)
    return (rank, newest, cid)
