"""Turn a plan's effect on one service's container records into writes, placements and events.

:func:`apply_plan` gives every planned action its meaning (:func:`~controlplane.planner.apply_actions`,
the only definition of each action) on copies of the records and remembers which action changed
which container; :func:`write_diff` then writes only what differs between the records before and
after, asks the scheduler to place new and still-pending containers, gives placed containers
their node's subnet, and records one Event per action that changed a record, with the
planner's reason (:func:`~controlplane.planner.event_of` says which deserve one), in the
transaction that writes the change. A no-op writes nothing and so tells nothing.

The service pass (:mod:`.service_pass`) writes into the pass's own transactions; a release
(:mod:`.release_pass`) into its own, so its status and its containers land together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ccs.labels import KEEP_VOLUMES
from ccs.v1 import resources_pb2 as pb
from controlplane.planner import Action, CreateContainer, SetNodeState, apply_actions, event_of
from controlplane.planner.containers import is_dead
from controlplane.planner.node_loss import home_node
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.writes import Writes
from controlplane.scheduler import PlacementResult, ServiceRef


def container_name(service: str, slot: int, node: str, cid: str) -> str:
    where = str(slot) if slot else node
    return f"{service}-{where}-{cid[:6]}"


def apply_plan(
    p: ClusterPass, records: Sequence[pb.Container], actions: Sequence[Action], service: pb.Service
) -> tuple[list[pb.Container], dict[str, Action]]:
    """The records after ``actions`` (new containers get fresh ids), and the action behind each
    container id it touched: what :func:`write_diff` records as the reason."""
    why: dict[str, Action] = {}

    def new_id(action: CreateContainer) -> str:
        cid = uuid.uuid4().hex
        why[cid] = action
        return cid

    after = apply_actions(records, actions, service, p.now, new_id=new_id)
    for a in actions:
        if not isinstance(a, CreateContainer | SetNodeState):
            why[a.container] = a
    return after, why


def write_diff(
    p: ClusterPass, writes: Writes, app: str, svc: str, service: pb.Service, before: Sequence[pb.Container],
    after: Sequence[pb.Container], why: Mapping[str, Action], *, keep_volumes: bool = False,
) -> dict[str, str]:
    """Write the difference into ``writes``; place new and still-pending containers. Returns
    the reasons of those left unplaced, by container name.

    Replicated containers without a node are placed in ONE scheduler call per service (in
    slot order), which is what keeps a 500-replica service from rebuilding the spread tree
    500 times; containers pinned to a node (global mode) are checked one by one.
    """
    ref = ServiceRef(app, svc, service.spec)
    return _Diff(p, writes, ref, why, keep_volumes).run(before, after)


@dataclass
class _Diff:
    p: ClusterPass
    writes: Writes
    ref: ServiceRef
    why: Mapping[str, Action]
    keep_volumes: bool
    unplaced: dict[str, str] = field(default_factory=dict)

    def run(self, before: Sequence[pb.Container], after: Sequence[pb.Container]) -> dict[str, str]:
        old = {c.meta.id: c for c in before}
        new = {c.meta.id: c for c in after}
        for cid, c in old.items():
            if cid not in new:
                self._delete(c)
        for cid, c in new.items():  # dead containers retired now: their place is free at once
            prior = old.get(cid)
            if prior is not None and is_dead(prior) and c.desired_state != pb.DESIRED_STATE_RUNNING:
                self.p.view.release(prior)
        to_place: list[pb.Container] = []
        to_write: list[pb.Container] = []
        for cid, c in new.items():
            prior = old.get(cid)
            if prior is None:
                self._add_new(c, to_place)
            else:
                self._sort_changed(c, prior, to_place, to_write)
        if to_place:
            to_write += self._place(to_place, old)
        for c in self.p.subnets.attach(self.ref.application, to_write, self.writes):  # the pod range is full
            self.unplaced[c.meta.name] = c.status.message
        for c in to_write:
            if c.meta.id in old:
                c.meta.updated_at.CopyFrom(self.p.now_ts)
            self._put(c, old.get(c.meta.id))
        return self.unplaced

    def _key(self, c: pb.Container) -> tuple[str, str, str]:
        return (self.ref.application, self.ref.name, c.meta.name)

    def _put(self, c: pb.Container, prior: pb.Container | None) -> None:
        self.p.put_container(self._key(c), c, self.writes)
        self._tell(c, prior)

    def _delete(self, c: pb.Container) -> None:
        self.p.delete_container(self._key(c), self.writes)
        self._tell(c, c)

    def _tell(self, c: pb.Container, prior: pb.Container | None) -> None:
        """The event for the action that changed ``c``, in the transaction of its write."""
        action = self.why.get(c.meta.id)
        ev = event_of(action, prior) if action is not None else None
        if ev is not None:
            self.p.container_event(self._key(c), ev, self.writes)

    def _add_new(self, c: pb.Container, to_place: list[pb.Container]) -> None:
        """Name and stamp a new container; write it now if pinned to a node, else queue it for placing."""
        c.meta.name = container_name(self.ref.name, c.slot, c.node, c.meta.id)
        c.meta.created_at.CopyFrom(self.p.now_ts)
        c.meta.updated_at.CopyFrom(self.p.now_ts)
        c.cluster = self.p.cluster
        if not c.node:
            to_place.append(c)
            return
        # Global: pinned; if its node cannot take it now, write nothing yet.
        result = self.p.view.place(self.ref, [c.meta.name], on=c.node)
        if c.meta.name not in result.assigned:
            self.unplaced[c.meta.name] = result.unplaced.get(c.meta.name, "cannot be placed")
            return
        c.status.state = pb.CONTAINER_STATE_ASSIGNED
        c.status.updated_at.CopyFrom(self.p.now_ts)
        if self.p.subnets.attach(self.ref.application, [c], self.writes):  # the pod range is full
            self.unplaced[c.meta.name] = c.status.message
            return
        self._put(c, None)

    def _sort_changed(self, c: pb.Container, prior: pb.Container, to_place: list[pb.Container],
                      to_write: list[pb.Container]) -> None:
        """An existing container: still to be placed, to be written, or unchanged."""
        changed = pb.Container()
        changed.CopyFrom(c)
        if self.keep_volumes and changed.desired_state == pb.DESIRED_STATE_REMOVED:
            changed.meta.labels[KEEP_VOLUMES] = "true"
        if not changed.node and changed.desired_state == pb.DESIRED_STATE_RUNNING:
            to_place.append(changed)
        elif changed != prior:
            to_write.append(changed)

    def _place(self, to_place: list[pb.Container], old: dict[str, pb.Container]) -> list[pb.Container]:
        """Place the containers without a node: each homed one on its home node (a restart of a
        service that waits for its node), the others in one scheduler call; return those that
        changed."""
        to_place.sort(key=lambda c: (c.slot, c.meta.name))
        homes = {c.meta.name: home for c in to_place if (home := home_node(c, self.p.state.nodes))}
        result = PlacementResult()
        for name, home in homes.items():
            placed = self.p.view.place(self.ref, [name], on=home)
            result.assigned.update(placed.assigned)
            result.unplaced.update({n: f"waits for its node {home}: {why}" for n, why in placed.unplaced.items()})
        free = self.p.view.place(self.ref, [c.meta.name for c in to_place if c.meta.name not in homes])
        result.assigned.update(free.assigned)
        result.unplaced.update(free.unplaced)
        changed = []
        for c in to_place:
            node = result.assigned.get(c.meta.name)
            if node is not None:
                c.node = node
                c.status.state = pb.CONTAINER_STATE_ASSIGNED
                c.status.message = ""
            else:
                c.status.state = pb.CONTAINER_STATE_PENDING
                c.status.message = result.unplaced.get(c.meta.name, "cannot be placed")
                self.unplaced[c.meta.name] = c.status.message
            prior = old.get(c.meta.id)
            if prior is None or c != prior:
                c.status.updated_at.CopyFrom(self.p.now_ts)
                changed.append(c)
        return changed
