"""Restart policy: when a dead container is replaced, after what delay, and when to give up.

Semantics follow Docker Swarm's ``deploy.restart_policy``, which is what ccs users compare against:

* ``condition``: ``none`` | ``on-failure`` | ``any``. When neither ``restart_policy.condition`` nor the
  Compose ``restart`` key is given the default is ``any``, as in Swarm: a cluster service is expected
  to keep running. The Compose key maps as ``no`` -> none, ``always``/``unless-stopped`` -> any,
  ``on-failure[:N]`` -> on-failure with ``max_attempts`` N. ``restart_policy`` wins when both are set.
* ``delay`` (default 5s, as Swarm): the replacement is created ``delay`` after the container died,
  measured from the agent's ``status.updated_at`` so that the decision is a pure function of the
  input. Proto3 cannot tell an explicit 0 from unset, so 0 means the default.
* ``max_attempts`` (0 = unlimited) restarts within ``window`` (0 = unbounded). Like Swarm we count
  earlier restarts of the same slot inside the window that ends at this failure; once the count has
  reached ``max_attempts`` the slot gives up and keeps its dead container, stopped, with a readable
  message. Failures older than the window no longer count, so a service that crashes once an hour
  is restarted forever even with a small ``max_attempts``.

The history lives on the replacement's labels (``ccs.restart.failures``: the times of the failures
still relevant, at most ``max_attempts`` of them), so no dead container has to be kept around just
to remember it, and no proto change was needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ccs.durations import format_duration as format_seconds
from ccs.labels import LABEL_RESTART_COUNT, LABEL_RESTART_FAILURES, OUTCOME_COMPLETED, OUTCOME_FAILED
from ccs.v1 import resources_pb2 as pb

from .containers import describe_exit, died_at, is_failure
from .errors import PlanError

Condition = Literal["none", "on-failure", "any"]
CONDITIONS: tuple[Condition, ...] = ("none", "on-failure", "any")
DEFAULT_DELAY = timedelta(seconds=5)


@dataclass(frozen=True)
class RestartPolicy:
    """The effective policy of a service after defaults and the Compose ``restart`` key."""

    condition: Condition = "any"
    delay: timedelta = DEFAULT_DELAY
    max_attempts: int = 0
    window: timedelta | None = None


@dataclass(frozen=True)
class Restart:
    """Replace the dead container now; ``labels`` carry the slot's history to the replacement."""

    labels: tuple[tuple[str, str], ...]
    reason: str


@dataclass(frozen=True)
class Wait:
    """The restart delay has not elapsed; look again in ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Finish:
    """Do not restart: the slot is done (``completed``) or has given up (``failed``)."""

    outcome: Literal["completed", "failed"]
    message: str


Decision = Restart | Wait | Finish


def resolve_policy(service: str, spec: pb.ServiceSpec) -> RestartPolicy:
    """The effective restart policy of ``spec``; raises ``PlanError`` naming a bad field."""
    rp = spec.restart_policy
    condition: Condition = "any"
    max_attempts = 0
    restart = spec.restart.strip()
    if restart:
        name, _, count = restart.partition(":")
        if name == "no":
            condition = "none"
        elif name in ("always", "unless-stopped"):
            condition = "any"
        elif name == "on-failure":
            condition = "on-failure"
            if count:
                if not count.isdigit():
                    raise PlanError(
                        f"service {service}: spec.restart {restart!r}: the count after "
                        "'on-failure:' must be a non-negative integer"
                    )
                max_attempts = int(count)
        else:
            raise PlanError(
                f"service {service}: spec.restart {restart!r} is not one of "
                "no, always, on-failure[:N], unless-stopped"
            )
        if name != "on-failure" and count:
            raise PlanError(f"service {service}: spec.restart {restart!r}: only on-failure takes :N")
    if rp.condition:
        if rp.condition not in CONDITIONS:
            raise PlanError(
                f"service {service}: spec.restart_policy.condition {rp.condition!r} is not one of "
                + ", ".join(CONDITIONS)
            )
        condition = rp.condition
    for field in ("delay_ms", "window_ms"):
        if getattr(rp, field) < 0:
            raise PlanError(
                f"service {service}: spec.restart_policy.{field} must not be negative "
                f"(got {getattr(rp, field)})"
            )
    return RestartPolicy(
        condition=condition,
        delay=timedelta(milliseconds=rp.delay_ms) if rp.delay_ms else DEFAULT_DELAY,
        max_attempts=rp.max_attempts or max_attempts,
        window=timedelta(milliseconds=rp.window_ms) if rp.window_ms else None,
    )


def decide(
    policy: RestartPolicy, dead: pb.Container, now: datetime, *, delay: timedelta | None = None
) -> Decision:
    """What to do about ``dead`` (a container that should run but was observed dead).

    ``delay`` replaces ``policy.delay`` (the replacement of an UNHEALTHY container backs off
    exponentially from it, see :mod:`controlplane.planner.unhealthy`).
    """
    failure = is_failure(dead)
    how = describe_exit(dead)
    if policy.condition == "none" or (policy.condition == "on-failure" and not failure):
        if failure:
            reason = f"not restarted (restart_policy.condition={policy.condition})"
            return Finish(OUTCOME_FAILED, f"{how}; {reason}")
        return Finish(OUTCOME_COMPLETED, f"completed: {how}")

    failed_at = died_at(dead) or now
    history = _history(policy, dead, failed_at)
    if policy.max_attempts and len(history) >= policy.max_attempts:
        within = f" within {format_duration(policy.window)}" if policy.window else ""
        return Finish(
            OUTCOME_FAILED,
            f"crash loop: died {len(history) + 1} times{within}, last {how} "
            f"(restart_policy.max_attempts={policy.max_attempts} reached)",
        )

    known = died_at(dead)
    wait = policy.delay if delay is None else delay
    if known is not None and now < known + wait:
        return Wait((known + wait - now).total_seconds())

    labels = restart_labels(policy, dead, failed_at)
    return Restart(labels, f"restart #{restart_count(labels)}: previous container {dead.meta.id} {how}")


def restart_labels(policy: RestartPolicy, c: pb.Container, failed_at: datetime) -> tuple[tuple[str, str], ...]:
    """The slot's history for the container that replaces ``c``, which failed at ``failed_at``."""
    keep = max(policy.max_attempts, 1)
    failures = [*_history(policy, c, failed_at), failed_at][-keep:]
    return (
        (LABEL_RESTART_COUNT, str(_int_label(c, LABEL_RESTART_COUNT) + 1)),
        (LABEL_RESTART_FAILURES, ",".join(t.isoformat() for t in failures)),
    )


def restart_count(labels: tuple[tuple[str, str], ...]) -> int:
    """The restart number that :func:`restart_labels` wrote."""
    return int(dict(labels)[LABEL_RESTART_COUNT])


def _history(policy: RestartPolicy, c: pb.Container, failed_at: datetime) -> list[datetime]:
    """The slot's earlier failures that still count at ``failed_at`` (inside the window)."""
    history = _earlier_failures(c)
    if policy.window is not None:
        history = [t for t in history if t > failed_at - policy.window]
    return history


def _earlier_failures(c: pb.Container) -> list[datetime]:
    raw = str(c.meta.labels.get(LABEL_RESTART_FAILURES, ""))
    out: list[datetime] = []
    for item in filter(None, raw.split(",")):
        try:
            when = datetime.fromisoformat(item)
        except ValueError:
            raise PlanError(
                f"container {c.meta.id}: label {LABEL_RESTART_FAILURES} holds {item!r}, "
                "which is not an ISO-8601 time"
            ) from None
        if when.tzinfo is None:
            raise PlanError(
                f"container {c.meta.id}: label {LABEL_RESTART_FAILURES} holds {item!r}, "
                "which has no time zone"
            )
        out.append(when)
    return sorted(out)


def _int_label(c: pb.Container, key: str) -> int:
    raw = str(c.meta.labels.get(key, "0") or "0")
    if not raw.isdigit():
        raise PlanError(f"container {c.meta.id}: label {key} holds {raw!r}, not a count")
    return int(raw)


def format_duration(d: timedelta) -> str:
    """``90s`` -> ``1m30s``; short and exact, for messages (the one syntax of ``ccs.durations``)."""
    return format_seconds(d.total_seconds())
