"""Container statuses reported by agents, written to etcd in bounded, guarded batches.

Apart from the dispatcher servicer because it has rules of its own: only the latest report
per container counts, a record that does not decode loses its status and not the batch, a
status equal to the stored one is not written, only the node a container is assigned to
may report on it, and a status is written or the call fails: never answered OK and dropped
(the agent would not send it again until it reconnects).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random

import grpc
import structlog

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.auth import Principal
from controlplane.grpc_errors import InvalidArgument
from controlplane.informer import Informer
from controlplane.store import Conflict, Corrupt, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.meta import now
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.dispatcher")
MAX_BATCH = 100  # etcd refuses transactions of more than 128 operations by default
#: How long one report keeps retrying through conflicts before the call fails (see _write_batch).
RETRY_FOR = 10.0
MAX_BACKOFF = 0.5
DEADLINE_MARGIN = 1.0


class ContainerStatusWriter:
    def __init__(self, etcd: Etcd, informer: Informer, *, retry_for: float = RETRY_FOR) -> None:
        self.etcd, self.informer = etcd, informer
        self.retry_for = retry_for
        # (key, mod_revision) of undecodable container records already logged.
        self._corrupt_logged: set[tuple[str, int]] = set()

    async def write(self, p: Principal, request: agent_pb2.UpdateStatusRequest,
                    context: grpc.aio.ServicerContext) -> None:
        check_addresses(request)
        latest: dict[str, agent_pb2.ContainerStatusUpdate] = {}
        for u in request.updates:
            latest[keys.container(p.cluster, u.application, u.service, u.container)] = u
        items = list(latest.items())
        for i in range(0, len(items), MAX_BATCH):
            await self._write_batch(p, items[i : i + MAX_BATCH], context)

    async def _write_batch(
        self, p: Principal, items: list[tuple[str, agent_pb2.ContainerStatusUpdate]],
        context: grpc.aio.ServicerContext,
    ) -> None:
        """Write ``items`` in one guarded transaction; on a conflict (the control plane or an
        earlier report wrote a record meanwhile) re-read them and apply the statuses again.

        A status is never dropped while the call answers OK: the agent remembers what it sent
        and sends an unchanged status again only after it reconnects, so a status given up here
        would be lost until then. Retries back off (capped at ``MAX_BACKOFF``) for as long as
        ``retry_for`` and the call's deadline allow; past that the call fails (ABORTED) and the
        agent puts the batch back and sends it again on its next session."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._budget(context)
        state = self.informer.clusters.get(p.cluster)
        attempt = 0
        while True:
            txn = Txn()
            for key, u in items:
                cached = state.containers.get((u.application, u.service, u.container)) if state else None
                if state is not None and key in state.undecodable:
                    cached = None  # the last good copy: a write guarded by it could only conflict
                if cached is None or attempt > 0:
                    kv = await self.etcd.get(key)
                    if kv is None:
                        continue  # deleted meanwhile: nothing to report on
                    try:
                        current = decode(kv, pb.Container)
                    except Corrupt as e:
                        self._skip_corrupt(p, kv.key, kv.mod_revision, e)
                        continue
                else:
                    current = cached
                if current.node != p.node:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"container {u.container!r} is not assigned to node {p.node!r}",
                    )
                status = pb.ContainerStatus()
                status.CopyFrom(u.status)
                if not status.HasField("updated_at"):
                    status.updated_at.CopyFrom(now())
                probe = pb.ContainerStatus()
                probe.CopyFrom(current.status)
                probe.updated_at.CopyFrom(status.updated_at)
                if probe == status:
                    continue
                new = pb.Container()
                new.CopyFrom(current)
                new.status.CopyFrom(status)
                txn.update(key, new, "container", u.container, current.meta.resource_version)
            if not len(txn):
                return
            try:
                await txn.commit(self.etcd)
                return
            except Conflict:
                attempt += 1
            pause = min(MAX_BACKOFF, 0.01 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)
            if loop.time() + pause >= give_up:
                break
            await asyncio.sleep(pause)  # let the concurrent writer finish, then read it afresh
        log.warning("status update kept conflicting; the agent sends it again", node=p.node,
                    containers=len(items), attempts=attempt)
        await context.abort(grpc.StatusCode.ABORTED,
                            f"{len(items)} container status(es) kept conflicting with concurrent writes "
                            f"({attempt} attempts); send them again")

    def _budget(self, context: grpc.aio.ServicerContext) -> float:
        """Seconds this call may spend retrying: ``retry_for``, less if the call's deadline is
        sooner (keeping a margin for the answer to get back before it)."""
        remaining = context.time_remaining()
        if remaining is None:
            return self.retry_for
        return max(0.0, min(self.retry_for, float(remaining) - DEADLINE_MARGIN))

    def _skip_corrupt(self, p: Principal, key: str, mod_revision: int, error: Corrupt) -> None:
        """A container record that does not decode loses this status, not the whole batch.

        The agent's other containers still report; this one's status is dropped (the agent
        resends it when it changes again) until the record is rewritten or deleted. The
        reconciler already reports the record as an event, so this logs once per stored value.
        """
        if (key, mod_revision) in self._corrupt_logged:
            return
        if len(self._corrupt_logged) >= 1024:  # bounded: a flood of damage must not grow memory
            self._corrupt_logged.clear()
        self._corrupt_logged.add((key, mod_revision))
        log.warning("status dropped: the container record does not decode", node=p.node, key=key,
                    error=str(error))


def check_addresses(request: agent_pb2.UpdateStatusRequest) -> None:
    """Refuse the whole report if an address is not an IPv4 address of a named network: every
    node's resolver answers these, so a bad one must not be stored (nothing is written)."""
    for i, u in enumerate(request.updates):
        for network, address in u.status.addresses.items():
            where = f"updates[{i}].status.addresses[{network!r}]"
            if not network or len(network) > 63:
                raise InvalidArgument(where, "the network name must be 1 to 63 characters")
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise InvalidArgument(where, f"{address!r} is not an IPv4 address") from None
