"""A tiny pure simulator of a cluster for the release planner's tests, and tests of the simulator.

Each ``World.step()`` is one reconcile pass followed by time passing:

1. the routers have applied the routing table as it was at the end of the previous step (one step
   of propagation lag), which gives ``routing_applied``;
2. traffic of the last step is counted per container by its routing weight (100 requests a step
   per route), with a 5xx rate per generation, and summed with ``release_stats``;
3. ``plan_release`` runs; every Retire is checked against the table the routers hold;
4. the plan is applied (the reference meaning: create beside, retire = desired REMOVED + stop_after,
   revert = services back to previous specs/generations), optionally followed by the real service
   planner;
5. ``dt`` passes: containers become RUNNING ``ready_after`` steps after their creation (a number,
   or a function of the container), or FAILED per ``fails``; retired ones stop once ``stop_after`` passed and their record is deleted a step
   later (as the agent reports REMOVED and the service planner deletes it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import CreateContainer, SetDesired, plan_service
from controlplane.planner.actions import DeleteContainer, MarkFinished
from controlplane.planner.containers import is_ready
from controlplane.release import (
    TERMINAL,
    ReleasePlan,
    Retire,
    describe_action,
    plan_release,
    release_stats,
)
from controlplane.routing import routing_table

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PHASE = {v: k.removeprefix("RELEASE_PHASE_") for k, v in pb.ReleasePhase.items()}


def spec(image: str, replicas: int = 3, **kw: Any) -> pb.ServiceSpec:
    s = pb.ServiceSpec(image=image, replicas=replicas, routes=[pb.Route(port=80, domain="web.test")])
    for k, v in kw.items():
        if isinstance(v, pb.UpdateConfig):
            getattr(s, k).CopyFrom(v)
        else:
            setattr(s, k, v)
    return s


@dataclass
class Trace:
    """What happened at one step, for assertions and readable failure output."""

    step: int
    phase: str
    weight: int
    actions: list[str]
    ready_old: int
    ready_new: int
    routing_applied: bool


@dataclass
class World:
    release: pb.Release
    services: dict[str, pb.Service]
    containers: dict[str, pb.Container]
    now: datetime = T0
    dt: timedelta = timedelta(seconds=5)
    ready_after: int | Callable[[pb.Container], int] = 1
    fails: Callable[[pb.Container], bool] = lambda c: False
    error_rate: Callable[[int], float] = lambda generation: 0.0
    service_planner: bool = False
    unstoppable: set[str] = field(default_factory=set)  # container ids that never stop
    app: pb.Application = field(default_factory=lambda: pb.Application(cluster="c1"))
    applied_table: pb.RoutingTable = field(default_factory=pb.RoutingTable)
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)
    trace: list[Trace] = field(default_factory=list)
    plans: list[ReleasePlan] = field(default_factory=list)
    _born: dict[str, int] = field(default_factory=dict)
    _serial: int = 0
    _step: int = 0

    # ------------------------------------------------------------------ building
    @classmethod
    def deploy(
        cls, strategy: str, old: pb.ServiceSpec, new: pb.ServiceSpec, *, release_spec: pb.ReleaseSpec | None = None,
        **kw: object,
    ) -> World:
        """Service ``web`` at generation 1 with every slot ready, then updated to generation 2."""
        svc = pb.Service(cluster="c1", application="app", spec=new, generation=2, last_generation=2,
                         app_revision=2)
        svc.meta.name = "web"
        rel = pb.Release(cluster="c1", application="app", number=1)
        rel.meta.name = "r1"
        if release_spec is not None:
            rel.spec.CopyFrom(release_spec)
        rel.spec.strategy = strategy
        rel.spec.services.append("web")
        rel.spec.previous_specs["web"].CopyFrom(old)
        rel.spec.previous_generations["web"] = 1
        rel.status.phase = pb.RELEASE_PHASE_PROGRESSING
        rel.status.phase_since.FromDatetime(T0)
        world = cls(release=rel, services={"web": svc}, containers={}, **kw)  # type: ignore[arg-type]
        for slot in range(1, old.replicas + 1):
            c = world._new_container("web", slot, "n1", 1, old)
            world._run(c)
        world.applied_table = world.table()
        return world

    def _new_container(self, svc: str, slot: int, node: str, gen: int, s: pb.ServiceSpec) -> pb.Container:
        self._serial += 1
        cid = f"{svc}-g{gen}-{self._serial:02d}"
        c = pb.Container(cluster="c1", application="app", service=svc, node=node, slot=slot,
                         spec_generation=gen, app_revision=gen, desired_state=pb.DESIRED_STATE_RUNNING,
                         spec=s)
        c.meta.id = c.meta.name = cid
        c.meta.created_at.FromDatetime(self.now)
        c.status.state = pb.CONTAINER_STATE_PENDING
        self.containers[cid] = c
        self._born[cid] = self._step
        return c

    def _run(self, c: pb.Container) -> None:
        c.status.state = pb.CONTAINER_STATE_RUNNING
        c.status.updated_at.FromDatetime(self.now)
        c.status.endpoints.append(pb.Endpoint(container=c.meta.id, node=c.node, address="10.0.0.1",
                                              published=30000 + self._serial_of(c), target=80))

    @staticmethod
    def _serial_of(c: pb.Container) -> int:
        return int(c.meta.id.rsplit("-", 1)[1])

    # ------------------------------------------------------------------ observing
    def table(self) -> pb.RoutingTable:
        services = {("app", n): s for n, s in self.services.items()}
        return routing_table("c1", services, self.containers.values(), {"app": self.release})

    def by_service(self) -> dict[str, list[pb.Container]]:
        out: dict[str, list[pb.Container]] = {n: [] for n in self.services}
        for c in sorted(self.containers.values(), key=lambda c: c.meta.id):
            out.setdefault(c.service, []).append(c)
        return out

    def serving(self, generation: int) -> int:
        """Ready containers of ``generation`` that are desired RUNNING and not draining."""
        return sum(
            1 for c in self.containers.values()
            if c.spec_generation == generation and is_ready(c, c.spec) and not c.HasField("stop_after")
        )

    @property
    def phase(self) -> str:
        return PHASE[self.release.status.phase]

    def request(self, *requests: str) -> None:
        self.release.status.requests.extend(requests)

    # ------------------------------------------------------------------ stepping
    def plan(self) -> ReleasePlan:
        """The plan for the current state, without applying it (for idempotence checks)."""
        routing_applied = self.applied_table.version == self.table().version
        stats = release_stats(self.release, self.containers.values(), [self._router_stats()])
        return plan_release(self.release, self.app, self.services, self.by_service(), stats,
                            routing_applied, self.now)

    def step(self) -> ReleasePlan:
        self._step += 1
        current = self.table()
        routing_applied = self.applied_table.version == current.version
        self._count_traffic()
        plan = self.plan()
        for action in plan.actions:
            if isinstance(action, Retire):
                self._check_retire(action.container, routing_applied)
        self._apply(plan)
        if self.service_planner:
            self._plan_services()
        self.trace.append(Trace(self._step, self.phase, self.release.status.weight,
                                [describe_action(a) for a in plan.actions], self.serving(1), self.serving(2),
                                routing_applied))
        self.plans.append(plan)
        self.applied_table = current
        self._advance()
        return plan

    def run(self, until: Callable[[World], bool] | None = None, max_steps: int = 200) -> World:
        for _ in range(max_steps):
            if self.release.status.phase in TERMINAL or (until is not None and until(self)):
                return self
            self.step()
        raise AssertionError(f"no end after {max_steps} steps: {self.phase}\n{self.dump()}")

    def settle(self, until: Callable[[World], bool], max_steps: int = 20) -> World:
        """Keep stepping (also after the release ended) until ``until`` holds."""
        for _ in range(max_steps):
            if until(self):
                return self
            self.step()
        raise AssertionError(f"not settled after {max_steps} steps\n{self.dump()}")

    def phases(self) -> list[str]:
        """Distinct consecutive phases seen, starting with the initial one."""
        out = ["PROGRESSING"]
        for t in self.trace:
            if t.phase != out[-1]:
                out.append(t.phase)
        return out

    def dump(self) -> str:
        return "\n".join(f"{t.step:3} {t.phase:14} w={t.weight:3} old={t.ready_old} new={t.ready_new} "
                         f"routed={t.routing_applied} {t.actions}" for t in self.trace)

    # ------------------------------------------------------------------ internals
    def _ready_after(self, c: pb.Container) -> int:
        return self.ready_after(c) if callable(self.ready_after) else self.ready_after

    def _router_stats(self) -> pb.RouterStats:
        stats = pb.RouterStats(node="n1")
        for cid, (req, err) in sorted(self.counters.items()):
            c = self.containers.get(cid)
            if c is not None:
                stats.backends.append(pb.BackendStats(application="app", service=c.service, container=cid,
                                                      requests=req, responses_5xx=err))
        return stats

    def _count_traffic(self) -> None:
        for route in self.applied_table.routes:
            total = sum(b.weight for b in route.backends)
            for b in route.backends:
                if not total or not b.weight:
                    continue
                n = round(100 * b.weight / total)
                err = round(n * self.error_rate(b.spec_generation))
                req0, err0 = self.counters.get(b.container, (0, 0))
                self.counters[b.container] = (req0 + n, err0 + err)

    def _check_retire(self, cid: str, routing_applied: bool) -> None:
        """No container leaves while the routers may still send it traffic (weight/group > 0)."""
        if self.release.spec.strategy == "rolling":
            return  # a retired container drops to weight 0 at once; stop_after is its drain
        for route in self.applied_table.routes:
            for b in route.backends:
                if b.container == cid and b.weight > 0:
                    raise AssertionError(f"step {self._step}: retired {cid} with weight {b.weight}\n{self.dump()}")
        c = self.containers[cid]
        if is_ready(c, c.spec) and not routing_applied and self.release.spec.strategy != "rolling":
            raise AssertionError(f"step {self._step}: retired {cid} before routing was applied\n{self.dump()}")

    def _apply(self, plan: ReleasePlan) -> None:
        for action in plan.actions:
            match action:
                case CreateContainer():
                    svc = self.services[action.service]
                    assert action.spec_generation == svc.generation
                    self._new_container(action.service, action.slot, action.node or "n1", action.spec_generation,
                                        svc.spec)
                case Retire(container=cid, drain_seconds=drain):
                    c = self.containers[cid]
                    c.desired_state = pb.DESIRED_STATE_REMOVED
                    c.stop_after.FromDatetime(self.now + timedelta(seconds=drain))
                case SetDesired(container=cid, desired_state=state):
                    self.containers[cid].desired_state = state
                case _:
                    raise AssertionError(f"unexpected action {action}")
        self.release.status.CopyFrom(plan.status)
        if plan.revert:
            for name in self.release.spec.services:
                svc = self.services[name]
                svc.spec.CopyFrom(self.release.spec.previous_specs[name])
                svc.generation = self.release.spec.previous_generations[name]

    def _plan_services(self) -> None:
        nodes = {"n1": pb.Node(meta=pb.Meta(id="n1", name="n1"), status=pb.NodeStatus(state=pb.NODE_STATE_READY))}
        for name, svc in self.services.items():
            records = self.by_service()[name]
            plan = plan_service(self.app, svc, records, nodes, {}, self.now)
            for action in plan.actions:
                match action:
                    case CreateContainer():
                        self._new_container(name, action.slot, action.node or "n1", action.spec_generation,
                                            svc.spec)
                    case SetDesired(container=cid, desired_state=state):
                        self.containers[cid].desired_state = state
                    case DeleteContainer(container=cid):
                        self.containers.pop(cid, None)
                    case MarkFinished(container=cid):
                        self.containers[cid].desired_state = pb.DESIRED_STATE_STOPPED

    def _advance(self) -> None:
        self.now += self.dt
        for cid, c in list(self.containers.items()):
            state = c.status.state
            if c.desired_state == pb.DESIRED_STATE_REMOVED:
                if state == pb.CONTAINER_STATE_REMOVED:
                    if not self.service_planner:
                        del self.containers[cid]
                elif c.stop_after.ToDatetime(tzinfo=UTC) <= self.now and cid not in self.unstoppable:
                    c.status.state = pb.CONTAINER_STATE_REMOVED
                    c.status.updated_at.FromDatetime(self.now)
                    del c.status.endpoints[:]
            elif state == pb.CONTAINER_STATE_PENDING and self._step - self._born[cid] >= self._ready_after(c) - 1:
                if self.fails(c):
                    c.status.state = pb.CONTAINER_STATE_FAILED
                    c.status.message = "exited with code 1"
                    c.status.updated_at.FromDatetime(self.now)
                else:
                    self._run(c)


# ---------------------------------------------------------------------- tests of the simulator


def test_world_starts_with_every_old_slot_serving_and_routed() -> None:
    world = World.deploy("rolling", spec("v1"), spec("v2"))
    assert world.serving(1) == 3
    assert [b.weight > 0 for b in world.table().routes[0].backends] == [True, True, True]


def test_world_retire_stops_after_drain_and_forgets_the_record() -> None:
    world = World.deploy("rolling", spec("v1"), spec("v2"))
    victim = world.containers["web-g1-01"]
    world._apply(ReleasePlan((Retire(victim.meta.id, 2.0, "test"),), world.release.status))
    world._advance()
    assert victim.status.state == pb.CONTAINER_STATE_REMOVED
    world._advance()
    assert victim.meta.id not in world.containers
