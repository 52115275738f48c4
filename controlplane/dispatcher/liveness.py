"""Node liveness without writing heartbeats to etcd (issue 15).

Heartbeats used to be an etcd read and a full Node record write each: 2,000 nodes at the 5 s
period made 400 writes/s, each fanned out to every watcher. Swarm's dispatcher keeps heartbeats in
memory and writes only state changes; ccs does the same while keeping several API replicas over
one etcd:

- Each replica holds one etcd lease of its own (:data:`LEASE_TTL`, kept alive at a third of it).
- When a node's session opens on a replica, the replica puts one small key,
  ``/ccs/c/{cluster}/alive/{node}/{replica}`` (:func:`controlplane.store.keys.alive`), attached
  to that lease (the dispatcher writes it in the transaction that marks the node READY).
- A heartbeat refreshes only the replica's in-memory "last heard" of the node: no etcd request.
- A replica that has not heard from a node for the deadline
  (:func:`controlplane.planner.liveness_deadline`, 11 s at the default 5 s period) deletes its
  key; so does a removal of the node. A session that closes leaves the key until the deadline:
  an agent that reconnects (to this replica or another) within it causes no write and no flap.
- A replica that dies stops keeping its lease alive: its keys vanish with it, at most
  :data:`LEASE_TTL` after. Its agents move to another replica meanwhile (they back off at most
  2 s) and that replica puts its own keys, so the node always has one and is never declared down.
  A replica that stops cleanly does *not* revoke the lease, for the same reason.
- A replica whose event loop stalled (a long synchronous burst of work under load) did not
  answer heartbeats meanwhile: they wait in its gRPC queue. The sweep that runs first after the
  stall must not take that silence for the nodes' (issue 15: at 500 hollow nodes under deploy
  load, nodes were declared down and their containers placed again while their heartbeats sat
  unread). So the sweep measures how late it woke; lateness beyond :data:`STALL_TOLERANCE` is
  time this replica could not hear anyone, and is not counted against any node.
- A replica whose lease lapsed (etcd unreachable past the TTL) refuses heartbeats
  (UNAVAILABLE) until it has a lease again, so its agents move to a replica that can vouch
  for them instead of being kept, unseen by the leader, on one that cannot.

The leader judges liveness from those keys only (watched by the informer:
``ClusterState.alive``; :mod:`controlplane.reconcile.node_pass`): a node with no key is unheard.
The Node record is written only when something in it changes (state, address, resources,
versions, features, the agent's message, an image collection's result), and once per session
opened (``last_heartbeat`` says when).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import grpc
import structlog

from controlplane.dispatcher.lease_keeper import LeaseKeeper
from controlplane.store import StoreUnavailable, keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.liveness")

LEASE_TTL = 10
"""Seconds a dead replica's alive keys outlive it (and the time its agents have to move)."""
LEASE_MARGIN = 1.0
"""Seconds before the lease would expire from which this replica stops vouching (see usable)."""
SWEEP_PERIOD = 0.5
"""Seconds between looks for nodes past their deadline (a key goes at most this late)."""
STALL_TOLERANCE = 1.0
"""Seconds a sweep may run late before the lateness counts as this replica's own stall (see sweep)."""
BATCH = 64
"""Keys put or deleted per transaction when many nodes change at once (within etcd's op limit)."""

NodeKey = tuple[str, str]  # (cluster, node)


class LivenessUnavailable(StoreUnavailable):
    """This replica has no live lease: it cannot vouch for nodes now (UNAVAILABLE: the agent
    moves to another replica)."""


class NodeLiveness:
    """This replica's alive keys and the in-memory "last heard" of the nodes it vouches for."""

    def __init__(
        self, etcd: Etcd, replica: str, deadline: float, *, ttl: int = LEASE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        blocking_channel: Callable[[], grpc.Channel] | None = None,
    ) -> None:
        """``blocking_channel``: makes the channel of the thread that keeps the lease alive beside
        the loop (:mod:`.lease_keeper`; the server passes ``Etcd.blocking_channel``); None: the
        loop alone keeps it (unit tests with a fake etcd)."""
        self.etcd, self.replica, self.deadline, self.ttl = etcd, replica, deadline, ttl
        self._monotonic = monotonic
        self._heard: dict[NodeKey, float] = {}  # last heartbeat or session open (monotonic)
        self._held: set[NodeKey] = set()  # keys written under the current lease
        self._lease = 0
        self._lease_ok_at = 0.0  # monotonic time of the last grant or keep-alive that succeeded
        self._sweep_due: float | None = None  # when the next sweep should run (monotonic)
        self._task: asyncio.Task[None] | None = None
        self._loop_seen = monotonic()  # the sweep's last run: the keeper's sign that the loop lives
        self.keeper = None if blocking_channel is None else LeaseKeeper(
            blocking_channel, lambda: self._lease, self._kept, lambda: self._loop_seen, period=ttl / 3,
            monotonic=monotonic)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Take a lease now if etcd answers (sessions opened before one exists are refused)."""
        with contextlib.suppress(Exception):
            await self._grant()
        self._task = asyncio.create_task(self._run(), name="node-liveness")
        if self.keeper is not None:
            self.keeper.start()

    async def stop(self) -> None:
        """Stop keeping the lease alive, without revoking it (see the module docstring)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.keeper is not None:
            await asyncio.to_thread(self.keeper.stop)

    def usable(self) -> bool:
        """Whether the lease is surely alive now: kept alive less than its TTL ago, with
        :data:`LEASE_MARGIN` to spare. Not two thirds of it, as the leader's lease: a busy event
        loop that delays one keep-alive must not make every agent of this replica reconnect."""
        return bool(self._lease) and self._monotonic() - self._lease_ok_at < self.ttl - LEASE_MARGIN

    # ------------------------------------------------------------------ sessions and heartbeats
    def vouch(self, txn: Txn, cluster: str, node: str) -> Txn:
        """Add this replica's alive key for ``node`` to ``txn`` (committed by the caller, then
        :meth:`vouched`). Raises :class:`LivenessUnavailable` without a usable lease."""
        if not self.usable():
            raise LivenessUnavailable("this API replica has no live etcd lease: try another replica")
        return txn.put(keys.alive(cluster, node, self.replica), self.replica.encode(), lease=self._lease)

    def vouched(self, cluster: str, node: str) -> None:
        """The key from :meth:`vouch` committed: the node is heard now."""
        self._heard[(cluster, node)] = self._monotonic()
        self._held.add((cluster, node))

    def heard(self, cluster: str, node: str) -> bool:
        """A heartbeat: remember it. False when the key is not held (the node went past its
        deadline, or the lease was renewed): the caller writes it again with :meth:`vouch`.
        Raises :class:`LivenessUnavailable` without a usable lease."""
        if not self.usable():
            raise LivenessUnavailable("this API replica has no live etcd lease: try another replica")
        self._heard[(cluster, node)] = self._monotonic()
        return (cluster, node) in self._held

    def holds(self, cluster: str, node: str) -> bool:
        return (cluster, node) in self._held

    def forget(self, cluster: str, node: str) -> None:
        """The node was removed (its keys go with its record): stop vouching for it."""
        self._heard.pop((cluster, node), None)
        self._held.discard((cluster, node))

    # ------------------------------------------------------------------ the background loop
    async def _grant(self) -> None:
        lease = await self.etcd.grant_lease(self.ttl)
        self._lease, self._lease_ok_at = lease, self._monotonic()
        self._held.clear()  # whatever was on an older lease is gone with it

    async def _keep_alive(self) -> None:
        if not self._lease:
            await self._grant()
            return
        lease, sent = self._lease, self._monotonic()
        alive = await self.etcd.client.refresh_lease(lease)
        if alive is None or alive.TTL <= 0:
            log.warning("liveness lease expired (etcd was out of reach); taking a new one")
            await self._grant()
            await self._vouch_again()
        else:
            self._kept(lease, sent)

    def _kept(self, lease: int, sent_at: float) -> None:
        """etcd confirmed a refresh of ``lease`` sent at ``sent_at`` (from the loop or the keeper's
        thread): the TTL restarted no earlier than that. A refresh of a lease since replaced counts
        for nothing."""
        if lease == self._lease and sent_at > self._lease_ok_at:
            self._lease_ok_at = sent_at

    async def _vouch_again(self) -> None:
        """Put the keys of the nodes heard within the deadline again, under the new lease (their
        old keys went with the old one)."""
        now = self._monotonic()
        nodes = [k for k, at in self._heard.items() if now - at <= self.deadline]
        for i in range(0, len(nodes), BATCH):
            txn = Txn()
            for cluster, node in nodes[i:i + BATCH]:
                self.vouch(txn, cluster, node)
            await txn.commit(self.etcd)
            self._held.update(nodes[i:i + BATCH])

    async def _run(self) -> None:
        """The keep-alive and the sweep, each its own task: a sweep slowed by a busy etcd (its
        deletes) must not delay the keep-alive past the lease."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._keep_alive_forever())
            tg.create_task(self._sweep_forever())

    async def _keep_alive_forever(self) -> None:
        while True:
            try:
                await self._keep_alive()
                await asyncio.sleep(self.ttl / 3)
            except Exception as exc:
                log.warning("liveness lease not kept alive", error=str(exc))
                await asyncio.sleep(1.0)

    async def _sweep_forever(self) -> None:
        while True:
            self._loop_seen = self._monotonic()
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("silent nodes' alive keys not deleted; trying again", error=str(exc))
            await asyncio.sleep(SWEEP_PERIOD)

    async def sweep(self) -> list[NodeKey]:
        """Delete the keys of the nodes not heard from within the deadline; returns them.

        The next sweep is due :data:`SWEEP_PERIOD` after this one ends; one that runs later than
        that by more than :data:`STALL_TOLERANCE` first forgives every node that lateness (see
        the module docstring): this replica's stall is not the nodes' silence."""
        now = self._monotonic()
        if self._sweep_due is not None and (stall := now - self._sweep_due - STALL_TOLERANCE) > 0:
            for k in self._heard:
                self._heard[k] += stall
            log.warning("event loop stalled; the stall is not counted against the nodes",
                        stall_seconds=round(stall + STALL_TOLERANCE, 2), nodes=len(self._heard))
        try:
            return await self._sweep_silent(now)
        finally:
            self._sweep_due = self._monotonic() + SWEEP_PERIOD

    async def _sweep_silent(self, now: float) -> list[NodeKey]:
        silent = [k for k, at in self._heard.items() if now - at > self.deadline]
        for i in range(0, len(silent), BATCH):
            batch = silent[i:i + BATCH]
            txn = Txn()
            for cluster, node in batch:
                if (cluster, node) in self._held:
                    txn.delete(keys.alive(cluster, node, self.replica))
            if len(txn):
                await txn.commit(self.etcd)
            for k in batch:
                self._held.discard(k)  # its key is gone: a heartbeat since puts it back
                if self._heard.get(k, now) <= now - self.deadline:  # not heard meanwhile
                    self._heard.pop(k, None)
            log.info("nodes unheard past the deadline", nodes=[f"{c}/{n}" for c, n in batch],
                     deadline_seconds=self.deadline)
        return silent
