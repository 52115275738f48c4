"""The mutable scratchpad one planning pass works on: the status being built and the actions.

Strategies call ``transition`` for every phase change and every canary or blue-green step, so the
history line, ``phase_since`` and ``finished_at`` can never be forgotten, and ``create``/``retire``
so that actions are de-duplicated (a slot is never given two new containers, a container never
retired twice). Rolling's ``step`` is only a progress count, set without a transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ccs.v1 import resources_pb2 as pb
from controlplane.planner.actions import CreateContainer

from .model import DRAIN_SECONDS, TERMINAL, ReleaseAction, ReleaseStats, Retire
from .slots import Slot, slots_of

PHASE_NAMES = {v: k.removeprefix("RELEASE_PHASE_") for k, v in pb.ReleasePhase.items()}


@dataclass
class Context:
    release: pb.Release
    app: pb.Application
    services: Mapping[str, pb.Service]
    containers: Mapping[str, Sequence[pb.Container]]
    stats: ReleaseStats
    routing_applied: bool
    now: datetime
    status: pb.ReleaseStatus = field(default_factory=pb.ReleaseStatus)
    actions: list[ReleaseAction] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    revert: bool = False
    weight_changed: bool = False
    _created: set[tuple[str, str]] = field(default_factory=set)
    _retired: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.status.CopyFrom(self.release.status)
        del self.status.requests[:]

    # ------------------------------------------------------------------ reading
    @property
    def phase(self) -> pb.ReleasePhase:
        return self.status.phase

    @property
    def since(self) -> datetime:
        """When the current phase or step began (``now`` if never stamped)."""
        ts = self.status.phase_since
        if ts.seconds == 0 and ts.nanos == 0:
            return self.now
        return ts.ToDatetime(tzinfo=self.now.tzinfo)

    def elapsed(self) -> float:
        return (self.now - self.since).total_seconds()

    def changed_services(self) -> list[pb.Service]:
        """The release's services that still exist, in the release's order."""
        return [self.services[s] for s in self.release.spec.services if s in self.services]

    def slots(self, service: pb.Service) -> list[Slot]:
        return slots_of(service, self.containers.get(service.meta.name, ()))

    def all_slots(self) -> list[Slot]:
        return [slot for svc in self.changed_services() for slot in self.slots(svc)]

    def traffic_settled(self) -> bool:
        """The routers apply the weight in the *persisted* status: a weight changed in this pass is
        not applied anywhere yet, whatever ``routing_applied`` says."""
        return self.routing_applied and not self.weight_changed

    # ------------------------------------------------------------------ writing
    def transition(
        self, phase: pb.ReleasePhase, message: str, *, step: int | None = None, weight: int | None = None
    ) -> None:
        """Change phase and/or step; stamps ``phase_since`` and appends one history line."""
        if weight is not None:
            self.set_weight(weight)
        if step is not None:
            self.status.step = step
        self.status.phase = phase
        self.status.message = message
        self.status.phase_since.FromDatetime(self.now)
        if phase in TERMINAL:
            self.status.finished_at.FromDatetime(self.now)
        self.note(f"{PHASE_NAMES[phase]} step {self.status.step} weight {self.status.weight}%: {message}")

    def note(self, line: str) -> None:
        self.status.history.append(f"{self.now.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} {line}")

    def set_weight(self, weight: int) -> None:
        if weight != self.status.weight:
            self.status.weight = weight
            self.weight_changed = True

    def wait(self, seconds: float) -> None:
        self.waits.append(max(seconds, 0.0))

    def wait_until(self, deadline: datetime) -> None:
        self.wait((deadline - self.now).total_seconds())

    def create(self, slot: Slot, reason: str) -> None:
        """A new container of the service's current spec in ``slot``, beside whatever is there."""
        key = (slot.service, str(slot.key))
        if key in self._created or slot.new:
            return
        self._created.add(key)
        svc = self.services[slot.service]
        self.actions.append(
            CreateContainer(
                service=slot.service,
                slot=0 if slot.global_mode else int(slot.key),
                node=str(slot.key) if slot.global_mode else None,
                spec_generation=svc.generation,
                app_revision=svc.app_revision,
                labels=(),
                reason=reason,
            )
        )

    def retire(self, c: pb.Container, reason: str, drain: float = DRAIN_SECONDS) -> None:
        if c.meta.id in self._retired or c.desired_state == pb.DESIRED_STATE_REMOVED:
            return
        self._retired.add(c.meta.id)
        self.actions.append(Retire(c.meta.id, drain, reason))


def deadline_for(monitor: timedelta) -> timedelta:
    """How long a rolling slot (or the canaries, or the green side) may take to become ready."""
    return max(timedelta(seconds=60), 10 * monitor)
