"""Replacing containers reported UNHEALTHY, as Swarm does: whether, when, how, and how many at once.

Swarm's agent stops a task whose health check reports it unhealthy and fails the task; its
restart supervisor then applies the service's restart policy. ccs keeps that model, with these
choices (the service planner applies them slot by slot; the rules live here):

* **On by default.** ``x-ccs.replace_unhealthy: false`` (``spec.replace_unhealthy``; unset means
  true) turns it off for a service: its unhealthy containers keep running, out of the routers,
  and the service status says they are not replaced. A ccs probe (``x-ccs.probe``,
  ``aliyun.probe.*``) reports UNHEALTHY as a Compose ``healthcheck`` does, and counts the same.
* **UNHEALTHY is a failure for the restart policy.** ``condition: any`` and ``on-failure`` replace,
  and the replacement counts against ``max_attempts`` within ``window`` like a crash restart (one
  history per slot, in the ``ccs.restart.*`` labels). ``condition: none`` (Compose ``restart: no``)
  and a reached ``max_attempts`` do not replace. Swarm then stops the container for good; ccs
  leaves it running (the routers already give it weight 0): ``restart: no`` says "do not restart
  it", stopping would turn a degraded container into no container, and one whose check recovers
  serves again. The service status says why it was not replaced.
* **Backoff per slot.** The replacement comes ``restart_policy.delay`` (default 5 s) after the
  container turned unhealthy, doubled for every unhealthy container the slot replaced in a row
  (``ccs.unhealthy.streak`` on the replacement), at most 5 minutes (or ``delay`` if that is
  longer), so a service whose new containers are unhealthy too does not churn. As with
  Kubernetes' crash-loop backoff, the streak starts over once a container ran 10 minutes before
  turning unhealthy. Waiting before acting also lets a check that failed briefly recover, and
  costs nothing: the routers already send the container no traffic.
* **Parallelism.** At most ``update_config.parallelism`` slots of a service (0 means 1, as for
  rolling updates) are being replaced at once. A replacement is in flight from the moment it is
  decided until the new container is ready (or itself fails or turns unhealthy); the other
  unhealthy containers wait their turn, and the healthy ones keep serving.
* **Order: ``update_config.order``.** That is where a service says whether a slot may hold two
  containers for a moment (start-first) or not (stop-first: a host port, a volume only one
  container may use, memory for one), and replacing an unhealthy container replaces a slot's
  container just as an update does. Stop-first, the default (Swarm's default order, and what
  Swarm does with an unhealthy task): the unhealthy container is retired, and its replacement is
  created once it has stopped. Start-first: the replacement is created beside it, and the
  unhealthy one is retired once the replacement is ready, fails, or turns unhealthy itself (the
  replacement then owns the slot); if the unhealthy one recovers first, the replacement goes.
* **Not during a release.** A service that an active release (phase not terminal) changes is the
  release's business: rolling, blue-green and canary judge health themselves, and a container
  created here would be one the release did not plan. The caller says so (``releasing``); a
  replacement already in flight finishes.

Every replacement is told by one Warning Event ``UnhealthyReplaced`` about the unhealthy container,
saying why and how, instead of the generic ``Removing`` (stop-first) or ``Created`` (start-first)
of the action that starts it (:class:`~.actions.ActionEvent`); it commits in the etcd transaction
that writes that action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ccs.labels import LABEL_REPLACES, LABEL_UNHEALTHY_SINCE, LABEL_UNHEALTHY_STREAK
from ccs.v1 import resources_pb2 as pb

from . import restart
from .actions import ActionEvent, SetDesired
from .containers import (
    died_at,
    is_live,
    is_ready,
    reported_unhealthy,
    timestamp,
)
from .errors import PlanError
from .restart import RestartPolicy, format_duration

MAX_BACKOFF = timedelta(minutes=5)
STREAK_RESET = timedelta(minutes=10)
ORDERS = ("stop-first", "start-first")
EVENT_REASON = "UnhealthyReplaced"
HOW = {
    "stop-first": "stop-first: it is stopped, and a new container starts once it has",
    "start-first": "start-first: a new container starts beside it, and it goes once that one is ready",
}


@dataclass(frozen=True)
class Rules:
    """A service's rules for replacing unhealthy containers, from its spec."""

    enabled: bool = True
    parallelism: int = 1
    start_first: bool = False

    @property
    def order(self) -> str:
        return "start-first" if self.start_first else "stop-first"


def resolve_rules(service: str, spec: pb.ServiceSpec) -> Rules:
    """The rules of ``spec``; raises ``PlanError`` naming a bad ``update_config.order``."""
    order = spec.update_config.order
    if order and order not in ORDERS:
        raise PlanError(
            f"service {service}: spec.update_config.order {order!r} is not one of {', '.join(ORDERS)}"
        )
    return Rules(
        enabled=not spec.HasField("replace_unhealthy") or spec.replace_unhealthy,
        parallelism=spec.update_config.parallelism or 1,
        start_first=order == "start-first",
    )


@dataclass(frozen=True)
class Replace:
    """Replace the unhealthy container now. ``labels``: the slot's history, for the replacement
    (without ``ccs.replaces``, which the caller adds); ``since``: when it turned unhealthy."""

    labels: tuple[tuple[str, str], ...]
    since: datetime
    message: str


@dataclass(frozen=True)
class Keep:
    """The restart policy says no replacement: the container keeps running, with this message."""

    message: str


Decision = Replace | restart.Wait | Keep


def decide(policy: RestartPolicy, c: pb.Container, now: datetime) -> Decision:
    """What to do about ``c``, reported UNHEALTHY, by the restart policy and the slot's backoff."""
    since = died_at(c) or now
    streak = current_streak(c, since)
    delay = backoff(policy, streak)
    decision = restart.decide(policy, c, now, delay=delay)
    if isinstance(decision, restart.Finish):
        if policy.condition == "none":
            return Keep("unhealthy, not replaced (restart_policy.condition=none)")
        return Keep(f"unhealthy, not replaced: {decision.message}")
    if isinstance(decision, restart.Wait):
        return decision
    labels = (*decision.labels, (LABEL_UNHEALTHY_STREAK, str(streak + 1)))
    message = (
        f"{c.meta.name or c.meta.id} is replaced because it is unhealthy (since "
        f"{since.isoformat(timespec='seconds')}): restart #{restart.restart_count(decision.labels)} "
        f"of its slot, after a {format_duration(delay)} backoff"
    )
    return Replace(labels, since, message)


@dataclass(frozen=True)
class StartBeside:
    """Start-first: create the replacement with ``labels`` (the slot's history and
    ``ccs.replaces``), for ``reason``, told by ``event``."""

    labels: tuple[tuple[str, str], ...]
    reason: str
    event: ActionEvent


@dataclass
class Book:
    """One pass's account of a service's unhealthy containers: the slots being replaced, and why
    the others are not (yet). :meth:`consider` applies the rules above to one container,
    :meth:`replacement` says how; the notes go into the service status. ``stopped``: by slot
    (or node), the unhealthy container retired stop-first that has stopped or is stopping."""

    rules: Rules = field(default_factory=Rules)
    releasing: bool = False
    in_flight: int = 0
    waits: list[float] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stopped: dict[int | str, pb.Container] = field(default_factory=dict)

    def gone(self, key: int | str, c: pb.Container) -> None:
        """``c`` (slot or node ``key``) is retired; remember it if it was retired for being unhealthy."""
        if LABEL_UNHEALTHY_SINCE in c.meta.labels:
            self.stopped.setdefault(key, c)

    def count_in_flight(self, groups: Mapping[int | str, Sequence[pb.Container]], keys: Iterable[int | str],
                        spec: pb.ServiceSpec) -> None:
        """Count the slots among ``keys`` whose replacement is in flight (before any is considered)."""
        self.in_flight = sum(in_flight(groups.get(k, []), spec, k in self.stopped) for k in keys)

    def after_stop(self, key: int | str, policy: RestartPolicy) -> tuple[tuple[tuple[str, str], ...], str] | None:
        """The labels and reason of the container for slot ``key``, whose unhealthy container was
        retired stop-first and is gone; ``None`` when the slot's last container was not that."""
        retired = self.stopped.get(key)
        if retired is None:
            return None
        why = f"replaces {retired.meta.id}, stopped because it was unhealthy (stop-first)"
        return carried_labels(policy, retired), why

    def consider(self, policy: RestartPolicy, c: pb.Container, now: datetime, where: str) -> Replace | None:
        """A :class:`Replace` if ``c`` (UNHEALTHY, the primary of slot ``where``) is to be replaced
        now; the caller starts it with :meth:`replacement`. ``None``: not now, noted."""
        if not self.rules.enabled:
            self.kept.append(f"{where} (x-ccs.replace_unhealthy: false)")
            return None
        if self.releasing:
            self.kept.append(f"{where} (left to the release)")
            return None
        decision = decide(policy, c, now)
        if isinstance(decision, Keep):
            self.refused.append(f"{where}: {decision.message}")
            return None
        if isinstance(decision, restart.Wait):
            self.waits.append(decision.seconds)
            return None
        if self.in_flight >= self.rules.parallelism:
            self.held.append(where)
            return None
        return decision

    def replacement(self, sick: pb.Container, decision: Replace) -> SetDesired | StartBeside:
        """How to replace ``sick`` by the service's order, counted as in flight: stop-first
        retires it (recording when it turned unhealthy, for its replacement), start-first
        starts one beside it. Either way with the one event that tells why."""
        self.in_flight += 1
        order = self.rules.order
        message = f"{decision.message}; {HOW[order]}"
        if self.rules.start_first:
            event = ActionEvent(EVENT_REASON, message, warning=True, about=sick.meta.name)
            return StartBeside((*decision.labels, (LABEL_REPLACES, sick.meta.id)),
                               f"replaces {sick.meta.id}, which is unhealthy ({order})", event)
        return SetDesired(sick.meta.id, pb.DESIRED_STATE_REMOVED, f"unhealthy; replaced once it has stopped ({order})",
                          ((LABEL_UNHEALTHY_SINCE, decision.since.isoformat()),),
                          ActionEvent(EVENT_REASON, message, warning=True))

    def notes(self) -> list[str]:
        out = list(self.refused)
        if self.in_flight:
            out.append(f"replacing {self.in_flight} unhealthy container(s)")
        if self.waits:
            out.append(f"unhealthy: replacement in {min(self.waits):.1f}s (backoff)")
        if self.held:
            out.append(f"unhealthy, waiting for update_config.parallelism={self.rules.parallelism}: "
                       + ", ".join(self.held))
        if self.kept:
            out.append("unhealthy, not replaced: " + ", ".join(self.kept))
        return out


def carried_labels(policy: RestartPolicy, retired: pb.Container) -> tuple[tuple[str, str], ...]:
    """The labels of the container that replaces ``retired``, an unhealthy container retired
    stop-first: the same history :func:`decide` computed when it retired it."""
    raw = str(retired.meta.labels.get(LABEL_UNHEALTHY_SINCE, ""))
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise PlanError(
            f"container {retired.meta.id}: label {LABEL_UNHEALTHY_SINCE} holds {raw!r}, "
            "which is not an ISO-8601 time"
        ) from None
    if since.tzinfo is None:
        raise PlanError(f"container {retired.meta.id}: label {LABEL_UNHEALTHY_SINCE} holds {raw!r}, "
                        "which has no time zone")
    return (
        *restart.restart_labels(policy, retired, since),
        (LABEL_UNHEALTHY_STREAK, str(current_streak(retired, since) + 1)),
        (LABEL_REPLACES, retired.meta.id),
    )


def current_streak(c: pb.Container, since: datetime) -> int:
    """Unhealthy containers the slot replaced in a row before ``c``; 0 once ``c`` ran long enough."""
    raw = str(c.meta.labels.get(LABEL_UNHEALTHY_STREAK, "0") or "0")
    if not raw.isdigit():
        raise PlanError(f"container {c.meta.id}: label {LABEL_UNHEALTHY_STREAK} holds {raw!r}, not a count")
    started = timestamp(c.status.started_at) or timestamp(c.meta.created_at)
    if started is not None and since - started >= STREAK_RESET:
        return 0
    return int(raw)


def backoff(policy: RestartPolicy, streak: int) -> timedelta:
    """``delay`` doubled ``streak`` times, capped at :data:`MAX_BACKOFF` (or ``delay`` if longer)."""
    cap = max(MAX_BACKOFF, policy.delay)
    doubled: timedelta = policy.delay * (1 << min(streak, 16))
    return min(doubled, cap)


def on_its_way(c: pb.Container, spec: pb.ServiceSpec) -> bool:
    """Live and not ready, and not (yet) unhealthy: pending, pulling, starting."""
    return is_live(c) and not is_ready(c, spec) and not reported_unhealthy(c)


def replaces(c: pb.Container) -> str:
    """The id of the unhealthy container ``c`` was created to replace, or ``""``."""
    return str(c.meta.labels.get(LABEL_REPLACES, ""))


def pair(candidates: Sequence[pb.Container], spec: pb.ServiceSpec) -> tuple[pb.Container, pb.Container | None] | None:
    """A start-first replacement in a slot: (the replacement, the unhealthy container kept beside it).

    The replacement owns the slot from its creation; the container it replaces is kept while the
    replacement is on its way, and retired by the caller otherwise (``None``). No pair (``None``)
    when there is no replacement, or when the replaced container is ready again: it recovered,
    and the ordinary choice keeps it and retires the replacement.
    """
    by_id = {c.meta.id: c for c in candidates}
    for new in sorted(candidates, key=lambda c: c.meta.id):
        old = by_id.get(replaces(new))
        if old is None or old is new or is_ready(old, spec):
            continue
        return new, (old if on_its_way(new, spec) and is_live(old) else None)
    return None


def in_flight(group: Iterable[pb.Container], spec: pb.ServiceSpec, stopping_unhealthy: bool) -> bool:
    """Whether a slot's unhealthy container is being replaced: its replacement is on its way, or
    (stop-first) it was retired and no container has taken the slot yet."""
    members = list(group)
    if any(replaces(c) and on_its_way(c, spec) for c in members):
        return True
    return stopping_unhealthy and not any(is_live(c) for c in members)
