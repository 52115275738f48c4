"""Which API replicas the control plane has now: each advertises itself in etcd under a lease.

Every ``ccs-server`` writes ``/ccs/replicas/{id}`` = JSON ``{"api": host:port, "node": host:port,
"version": its ccs version, "features": [what it does, ccs.features]}`` attached to a lease of
its own (TTL :data:`TTL`, refreshed at a third of it), and reads the prefix back every refresh.
A replica that dies stops refreshing and its record expires with the lease; one that stops
cleanly revokes its lease at once. The list goes to agents in every Register and
Heartbeat answer (``agent.proto`` ``Replica``) and into join tokens (``@a:7443,b:7443``), so an
agent knows every replica, including one added after it started, and fails over among them: the
shape of Swarm's agents, which learn the managers from their session, and of Nomad's clients, which
learn the servers from their heartbeat answers.

The version and features let the leader hold back what an older replica would mishandle should
it become leader during a rolling upgrade (a record without ``features`` is from a replica older
than every feature: ``controlplane.ipam.growth``); ``features()`` gives them.

Why a lease rather than the informer: the records must vanish by themselves when a process is
SIGKILLed, and the list is small and read-mostly (one range read per refresh per replica).

The address a replica advertises: its first ``--advertise`` host if given, else its listen host,
else (a wildcard listen) the first non-loopback IPv4 of the host — all names its certificate
carries (``controlplane.pki.server_tls.server_names``), so an agent verifies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Sequence

import structlog
from aetcd import rpc

from ccs.features import FEATURES
from ccs.v1 import agent_pb2
from ccs.version import version
from controlplane.pki.server_tls import strip_port
from controlplane.store.etcd import Etcd

log = structlog.get_logger("ccs.replicas")

PREFIX = "/ccs/replicas/"
TTL = 10

VERSION = version()  # what GetServerInfo says too


def advertised_host(listen: str, advertise: Sequence[str], interfaces: Sequence[str]) -> str:
    """The host agents reach this replica at (see the module docstring)."""
    if advertise:
        # --advertise may carry a port (its names are also the certificate's, port stripped):
        # the replica's own ports are added by the caller.
        return strip_port(advertise[0])
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host and host not in ("0.0.0.0", "::"):
        return host
    for address in interfaces:
        if not address.startswith("127."):
            return address
    return "127.0.0.1"


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def record_features(value: bytes) -> tuple[str, ...]:
    """The features a replica record declares; none for a record an older replica wrote (or
    one that is not a record)."""
    try:
        data = json.loads(value)
    except ValueError:
        return ()
    features = data.get("features") if isinstance(data, dict) else None
    return tuple(f for f in features if isinstance(f, str)) if isinstance(features, list) else ()


def parse_record(value: bytes) -> agent_pb2.Replica | None:
    """A replica record, or None for a value that is not one (skipped, never fatal)."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("api"), str) or not data["api"]:
        return None
    node = data.get("node", "")
    return agent_pb2.Replica(api_address=data["api"], node_address=node if isinstance(node, str) else "")


class ReplicaRegistry:
    """This replica's record in etcd and the current list of all of them."""

    def __init__(self, etcd: Etcd, api_address: str, node_address: str, *, ttl: int = TTL) -> None:
        self.etcd = etcd
        self.ttl = ttl
        self.own = agent_pb2.Replica(api_address=api_address, node_address=node_address)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{api_address}".replace("/", "_")
        self._lease = 0
        self._replicas: list[agent_pb2.Replica] = [self.own]
        self._features: dict[str, tuple[str, ...]] = {api_address: FEATURES}
        self._task: asyncio.Task[None] | None = None

    def replicas(self) -> list[agent_pb2.Replica]:
        """Every replica known at the last refresh (this one always), sorted by API address."""
        return list(self._replicas)

    def features(self) -> dict[str, tuple[str, ...]]:
        """Every replica known at the last refresh (by API address) -> the features its record
        declares (this one's own always)."""
        return dict(self._features)

    async def current(self) -> list[agent_pb2.Replica]:
        """Read afresh from etcd (join tokens and registrations are rare; heartbeats, frequent,
        take :meth:`replicas`, at most a third of the TTL old); the last list if etcd fails."""
        with contextlib.suppress(Exception):
            await self._refresh()
        return self.replicas()

    async def start(self) -> None:
        """Advertise once now (so the first registrations carry the list), then keep it fresh."""
        with contextlib.suppress(Exception):
            await self._advertise()
            await self._refresh()
        self._task = asyncio.create_task(self._run(), name="replica-registry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lease:
            with contextlib.suppress(Exception):  # gone at once, not after the TTL
                await self.etcd.client.revoke_lease(self._lease)

    async def _advertise(self) -> None:
        """Grant a lease and write the record under it; only then is the lease kept, so a
        failed write is tried again on the next round (a kept lease with no record would be
        refreshed for ever while the record stayed missing)."""
        lease = await self.etcd.grant_lease(self.ttl)
        value = json.dumps({"api": self.own.api_address, "node": self.own.node_address, "version": VERSION,
                            "features": list(FEATURES)}).encode()
        put = rpc.RequestOp(request_put=rpc.PutRequest(key=(PREFIX + self.id).encode(), value=value, lease=lease))
        try:
            await self.etcd.txn([], [put])
        except BaseException:
            with contextlib.suppress(Exception):
                await self.etcd.client.revoke_lease(lease)
            raise
        self._lease = lease

    async def _refresh(self) -> None:
        found = {self.own.api_address: self.own}
        features = {self.own.api_address: FEATURES}
        for kv in (await self.etcd.range(PREFIX)).kvs:
            replica = parse_record(kv.value)
            if replica is not None:
                found.setdefault(replica.api_address, replica)
                features.setdefault(replica.api_address, record_features(kv.value))
        self._replicas = [found[k] for k in sorted(found)]
        self._features = features

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not self._lease:
                    await self._advertise()
                else:
                    alive = await self.etcd.client.refresh_lease(self._lease)
                    if alive is None or alive.TTL <= 0:
                        self._lease = 0  # expired (etcd was away past the TTL): advertise again
                        await self._advertise()
                await self._refresh()
            except Exception as exc:
                log.warning("replica record not refreshed", error=str(exc))
