"""``plan_service``: keep a service's container count and restarts converged.

Boundary with the other reconcilers (the part most worth reading before changing anything):

* This planner owns **counts and restarts**: slots 1..replicas (or one container per eligible node in
  global mode), replacing dead containers per the restart policy, replacing UNHEALTHY ones (the
  rules are in :mod:`controlplane.planner.unhealthy`), stopping/starting/removing with the
  application, moving containers off draining nodes, and cleaning up records.
* **Releases own generations.** A live container whose ``spec_generation`` is older than the
  service's is never replaced here just for being old; the release reconcilers do that, at their
  pace. A slot that holds containers of *different* generations is a release in progress and is left
  alone (except that drained and out-of-range containers still go), and while a release changes the
  service (``releasing``) its UNHEALTHY containers are the release's to judge, not replaced here.
  Every container this planner creates is made from the service's *current* spec, as Swarm does for
  restarts: a crash during a rolling update therefore lands on the new version, which is where the
  release is heading anyway.
* **The scheduler owns placement.** Replicated containers are created with no node; the reconciler
  asks the scheduler to place pending ones. Global mode takes ``global_nodes`` (the eligible nodes,
  computed by the caller with the scheduler's constraint logic) and creates one container per node.
* **The node planner owns node failure.** Containers on a DOWN node keep counting until the node
  planner retires them after the grace period; a brief partition therefore never doubles a service.
  A service that waits for its node (``x-ccs.on_node_loss``, :mod:`.node_loss`) is never retired
  for it: the status says which slot waits for which node, and a restart of such a service is
  homed on the dead container's node (``ccs.home-node``), where its named volumes are.

Design choices:

* Replicated slots stay exactly ``1..replicas``; scaling down removes the highest slots, even if a
  lower slot is unhealthy (that slot is the restart policy's business). This is what Compose does
  (``web-3`` goes first), keeps container names and DNS stable, and keeps each slot's restart
  history meaningful.
* Drain is start-first: the replacement is created while the old container keeps serving, and the
  old one is removed once the replacement is ready (HEALTHY, or RUNNING without a health check). If
  the replacement cannot be placed anywhere, the old one keeps running: draining never reduces
  capacity on its own, unlike Swarm's drain which stops tasks first.
* ``depends_on`` gates every container start (new slot, restart, application start), not just the
  first deploy, so an application start brings services up in dependency order. The caller must
  requeue dependents when a dependency's counts change.
* Removing a record waits for the agent to report the Docker container removed, except when the
  container was never placed or its node no longer exists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ccs.container_states import RUNNING_STATES
from ccs.labels import LABEL_HOME_NODE, LABEL_OUTCOME_MESSAGE, OUTCOME_FAILED
from ccs.v1 import resources_pb2 as pb

from . import restart, unhealthy
from .actions import Action, ActionEvent, CreateContainer, DeleteContainer, MarkFinished, SetDesired
from .containers import (
    desired,
    is_dead,
    is_gone,
    is_live,
    is_parked,
    is_ready,
    node_is_draining,
    outcome,
    reported_unhealthy,
    require_aware,
    slot_rank,
)
from .errors import PlanError
from .node_loss import waits_for_its_node, why_it_waits
from .status import Counts, DependencyState, count, service_status, waiting_for

Key = int | str
"""A slot number (replicated) or a node id (global)."""


@dataclass(frozen=True)
class ServicePlan:
    """What to write for one service. ``removable``: the service is being removed and no container
    record is left once ``actions`` are applied, so the reconciler may delete the service."""

    actions: tuple[Action, ...]
    requeue_after: float | None
    status: pb.ServiceStatus
    removable: bool = False


def target_state(app: pb.Application, service_deleted: bool = False) -> pb.DesiredState:
    """The state every container of the service converges to; UNSPECIFIED means RUNNING."""
    state = app.spec.desired_state
    if service_deleted or state == pb.DESIRED_STATE_REMOVED:
        return pb.DESIRED_STATE_REMOVED
    return pb.DESIRED_STATE_STOPPED if state == pb.DESIRED_STATE_STOPPED else pb.DESIRED_STATE_RUNNING


def plan_service(
    app: pb.Application,
    service: pb.Service,
    containers: Sequence[pb.Container],
    nodes: Mapping[str, pb.Node],
    deps_ready: DependencyState,
    now: datetime,
    *,
    global_nodes: Sequence[str] | None = None,
    service_deleted: bool = False,
    releasing: bool = False,
) -> ServicePlan:
    """Plan one service.

    ``containers``: every container record of this service (all generations, including ones being
    removed). ``nodes``: **every** node of the cluster by id; a container whose node is missing is
    treated as lost. ``deps_ready``: counts of the services in ``spec.depends_on``.
    ``global_nodes``: required in global mode. ``service_deleted``: the service left the template.
    ``releasing``: an active release changes this service (its UNHEALTHY containers are the
    release's business). Raises ``PlanError`` for invalid input.
    """
    require_aware(now)
    planner = _ServicePlanner(service, nodes, deps_ready, now, target_state(app, service_deleted))
    planner.unhealthy.releasing = releasing
    planner.run(containers, global_nodes)
    counts = count(containers, planner.desired_count, service.spec)
    remaining = [c for c in containers if c.meta.id not in planner.deleted]
    waits = planner.waits + planner.unhealthy.waits
    return ServicePlan(
        actions=tuple(planner.actions),
        requeue_after=min(waits) if waits else None,
        status=service_status(counts, planner.notes(counts), containers),
        removable=planner.target == pb.DESIRED_STATE_REMOVED and not remaining,
    )


@dataclass
class _ServicePlanner:
    service: pb.Service
    nodes: Mapping[str, pb.Node]
    deps: DependencyState
    now: datetime
    target: pb.DesiredState
    actions: list[Action] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    waits: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    draining: list[str] = field(default_factory=list)
    blocked: bool = False
    policy: restart.RestartPolicy = field(default_factory=restart.RestartPolicy)
    waiting: list[str] = field(default_factory=list)
    waiting_stop: list[str] = field(default_factory=list)
    waiting_node: list[str] = field(default_factory=list)
    desired_count: int = 0
    global_mode: bool = False
    # Slot (or node) -> retired containers that still run on a ready node.
    stopping: dict[Key, list[pb.Container]] = field(default_factory=lambda: defaultdict(list))
    # UNHEALTHY containers: the pass's account of them.
    unhealthy: unhealthy.Book = field(default_factory=unhealthy.Book)

    @property
    def name(self) -> str:
        return str(self.service.meta.name)

    def run(self, containers: Sequence[pb.Container], global_nodes: Sequence[str] | None) -> None:
        spec = self.service.spec
        self.global_mode = spec.mode == pb.SERVICE_MODE_GLOBAL
        running = self.target == pb.DESIRED_STATE_RUNNING
        if self.global_mode and global_nodes is None and not running:
            # Stopping or removing needs no eligibility: act on the nodes the containers are on.
            global_nodes = sorted({c.node for c in containers if c.node in self.nodes})
        keys = self._keys(global_nodes)
        wanted = set(keys)
        self.desired_count = len(keys) if running else 0
        if running:
            self.policy = restart.resolve_policy(self.name, spec)
            self.unhealthy.rules = unhealthy.resolve_rules(self.name, spec)
            self.waiting = waiting_for(self.name, spec.depends_on, self.deps)

        groups: dict[Key, list[pb.Container]] = defaultdict(list)
        for c in sorted(containers, key=lambda c: c.meta.id):
            if c.node and c.node not in self.nodes:
                self._delete(c, f"its node {c.node} no longer exists")
            elif is_gone(c):
                self.unhealthy.gone(c.node if self.global_mode else c.slot, c)
                if c.status.state == pb.CONTAINER_STATE_REMOVED or not c.node:
                    self._delete(c, "removed")
                elif self._still_running(c):
                    self.stopping[c.node if self.global_mode else c.slot].append(c)
            elif self.target == pb.DESIRED_STATE_REMOVED:
                self._retire(c, "application or service removed")
            else:
                groups[c.node if self.global_mode else c.slot].append(c)
                self._note_node_wait(c)

        for key in sorted(groups, key=str):
            if key not in wanted:
                for c in groups[key]:
                    self._retire(c, f"{self._label(key)} is no longer wanted ({self._why_unwanted()})")
        if self.target == pb.DESIRED_STATE_STOPPED:
            for key in sorted((k for k in groups if k in wanted), key=str):
                self._stop(groups[key])
        elif running:
            self.unhealthy.count_in_flight(groups, keys, spec)
            for key in keys:
                self._converge(key, groups.get(key, []))

    def _keys(self, global_nodes: Sequence[str] | None) -> list[Key]:
        if not self.global_mode:
            return list(range(1, self.service.spec.replicas + 1))
        if global_nodes is None:
            raise PlanError(f"service {self.name}: global_nodes is required for a global service")
        missing = [n for n in global_nodes if n not in self.nodes]
        if missing:
            raise PlanError(f"global_nodes: {', '.join(missing)} not among the cluster's nodes")
        # A draining node never gets a new global container, whatever the caller computed.
        return list(dict.fromkeys(n for n in global_nodes if not node_is_draining(self.nodes[n])))

    def _why_unwanted(self) -> str:
        if self.global_mode:
            return "node not eligible or draining"
        return f"replicas={self.service.spec.replicas}"

    def _label(self, key: Key) -> str:
        return f"node {key}" if self.global_mode else f"slot {key}"

    def _still_running(self, c: pb.Container) -> bool:
        node = self.nodes.get(c.node)
        return (
            c.status.state in RUNNING_STATES
            and node is not None
            and node.status.state == pb.NODE_STATE_READY
        )

    def _note_node_wait(self, c: pb.Container) -> None:
        """A live container on a DOWN node that the node planner leaves there: say so."""
        node = self.nodes.get(c.node)
        if (is_live(c) and node is not None and node.status.state == pb.NODE_STATE_DOWN
                and waits_for_its_node(c.spec)):
            where = self._label(c.node if self.global_mode else c.slot)
            self.waiting_node.append(
                f"{where} waits for its node {c.node} to return ({why_it_waits(c.spec)})")

    def _home(self, dead: pb.Container) -> tuple[tuple[str, str], ...]:
        """The replacement of ``dead`` stays on its node when the service waits for its node."""
        if self.global_mode or not dead.node or self._on_draining(dead):
            return ()
        return ((LABEL_HOME_NODE, dead.node),) if waits_for_its_node(self.service.spec) else ()

    def _on_draining(self, c: pb.Container) -> bool:
        return bool(c.node) and node_is_draining(self.nodes.get(c.node))

    # ------------------------------------------------------------------ application stopped
    def _stop(self, group: list[pb.Container]) -> None:
        for c in group:
            if self._on_draining(c):
                self._retire(c, f"node {c.node} is draining")
            elif desired(c) == pb.DESIRED_STATE_RUNNING:
                self._emit(SetDesired(c.meta.id, pb.DESIRED_STATE_STOPPED, "application stopped"))

    # ------------------------------------------------------------------ application running
    def _converge(self, key: Key, group: list[pb.Container]) -> None:
        leaving = [c for c in group if self._on_draining(c) and is_live(c)]
        for c in group:
            if self._on_draining(c) and not is_live(c):
                self._retire(c, f"node {c.node} is draining")
        candidates = [c for c in group if not self._on_draining(c)]
        spec = self.service.spec

        if len({c.spec_generation for c in group}) > 1:
            # A release is replacing this slot; only finish drains, never fight the release.
            if any(is_ready(c, spec) for c in candidates):
                for c in leaving:
                    self._retire(c, f"node {c.node} is draining and the slot has a ready container")
            return

        primary = min(candidates, key=slot_rank) if candidates else None
        kept = None  # an UNHEALTHY container kept beside its start-first replacement
        if (replacement := unhealthy.pair(candidates, spec)) is not None:
            primary, kept = replacement
        for c in candidates:
            if primary is not None and c is not primary and c is not kept:
                why = "replaced" if unhealthy.replaces(primary) == c.meta.id else "duplicate"
                self._retire(c, f"{why} in {self._label(key)}; keeping {primary.meta.id}")
        if primary is None and self.stopping.get(key) and not leaving:
            # Stop-first: the slot's old container is still shutting down on a healthy node;
            # its replacement starts once the agent reports it gone. (A container on a DOWN
            # node does not hold its slot, so node failure still reschedules at once.)
            self.waiting_stop.append(f"{self._label(key)} waits for {self.stopping[key][0].meta.id} to stop")
            return
        if primary is None:
            labels: tuple[tuple[str, str], ...] = ()
            if leaving:
                why = f"replaces {leaving[0].meta.id} on draining node {leaving[0].node}"
            elif (after_stop := self.unhealthy.after_stop(key, self.policy)) is not None:
                labels, why = after_stop
            elif self.global_mode:
                why = f"node {key} has no container of this global service"
            else:
                why = f"slot {key} of {self.desired_count} is missing"
            self._create(key, labels, why)
        elif is_parked(primary):
            if self._may_start():
                self._emit(SetDesired(primary.meta.id, pb.DESIRED_STATE_RUNNING, "application started"))
        elif outcome(primary):
            if outcome(primary) == OUTCOME_FAILED:
                self.problems.append(
                    f"{self._label(key)}: {primary.meta.labels.get(LABEL_OUTCOME_MESSAGE, 'failed')}"
                )
        elif is_dead(primary):
            self._restart(key, primary)
        elif reported_unhealthy(primary):
            self._replace_unhealthy(key, primary)

        for c in leaving:
            if primary is not None and is_ready(primary, spec):
                self._retire(c, f"node {c.node} is draining; replacement {primary.meta.id} is ready")
            else:
                self.draining.append(c.meta.id)

    def _restart(self, key: Key, dead: pb.Container) -> None:
        decision = restart.decide(self.policy, dead, self.now)
        if isinstance(decision, restart.Finish):
            self._emit(MarkFinished(dead.meta.id, decision.outcome, decision.message))
            if decision.outcome == OUTCOME_FAILED:
                self.problems.append(f"{self._label(key)}: {decision.message}")
        elif isinstance(decision, restart.Wait):
            self.waits.append(decision.seconds)
        elif self._may_start():
            self._retire(dead, f"replaced: {decision.reason}")
            home = self._home(dead)
            reason = f"{decision.reason}; on its node {dead.node}" if home else decision.reason
            self._create(key, (*decision.labels, *home), reason)

    def _replace_unhealthy(self, key: Key, sick: pb.Container) -> None:
        """Replace ``sick`` if its service, the release, the restart policy, the backoff and the
        parallelism allow it (see :mod:`controlplane.planner.unhealthy`)."""
        decision = self.unhealthy.consider(self.policy, sick, self.now, self._label(key))
        if decision is None or not self._may_start():
            return
        action = self.unhealthy.replacement(sick, decision)
        if isinstance(action, unhealthy.StartBeside):
            self._create(key, action.labels, action.reason, action.event)
        else:
            self._emit(action)  # stop-first: retire it

    # ------------------------------------------------------------------ emitting
    def _may_start(self) -> bool:
        """Whether dependencies allow starting a container; remembers that something waited."""
        if self.waiting:
            self.blocked = True
            return False
        return True

    def _create(self, key: Key, labels: tuple[tuple[str, str], ...], reason: str,
                event: ActionEvent | None = None) -> None:
        if not self._may_start():
            return
        svc = self.service
        self._emit(
            CreateContainer(
                service=self.name,
                slot=0 if self.global_mode else int(key),
                node=str(key) if self.global_mode else None,
                spec_generation=svc.generation,
                app_revision=svc.app_revision,
                labels=labels,
                reason=reason,
                event=event,
            )
        )

    def _retire(self, c: pb.Container, reason: str) -> None:
        """Remove a container: delete the record outright if no agent ever had it."""
        if not c.node:
            self._delete(c, f"{reason} (never placed)")
        elif desired(c) != pb.DESIRED_STATE_REMOVED:
            self._emit(SetDesired(c.meta.id, pb.DESIRED_STATE_REMOVED, reason))

    def _delete(self, c: pb.Container, reason: str) -> None:
        self.deleted.add(c.meta.id)
        self._emit(DeleteContainer(c.meta.id, reason))

    def _emit(self, action: Action) -> None:
        self.actions.append(action)

    def notes(self, counts: Counts) -> list[str]:
        out: list[str] = []
        if self.target == pb.DESIRED_STATE_STOPPED:
            out.append("application stopped")
        elif self.target == pb.DESIRED_STATE_REMOVED:
            out.append("removing")
        if self.blocked:
            out.extend(self.waiting)
        out.extend(self.waiting_node)
        out.extend(self.problems)
        if self.waits:
            out.append(f"restart pending in {min(self.waits):.1f}s")
        out.extend(self.unhealthy.notes())
        if self.draining:
            out.append(f"draining: {len(self.draining)} container(s) wait for a ready replacement")
        if self.waiting_stop:
            out.append(f"{len(self.waiting_stop)} slot(s) wait for the old container to stop")
        if counts.completed:
            out.append(f"{counts.completed} completed")
        return out

