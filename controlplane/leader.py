"""Leader election with an etcd lease: one API server runs the reconcilers.

The candidate that creates ``/ccs/leader`` (attached to its lease) in a transaction that
requires the key to be absent is the leader until its lease expires. It keeps the lease
alive at a third of the TTL; if a keep-alive fails past the TTL it steps down *before*
another replica can take over. Followers retry every second, so a dead leader is replaced
within about one TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

import structlog
from aetcd import rpc

from controlplane.store.etcd import Etcd

log = structlog.get_logger("ccs.leader")

LEADER_KEY = "/ccs/leader"


class LeaderElector:
    def __init__(
        self,
        etcd: Etcd,
        on_elected: Callable[[], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
        *,
        ttl: int = 10,
        identity: str | None = None,
    ) -> None:
        self.etcd = etcd
        self.ttl = ttl
        self.identity = identity or f"{socket.gethostname()}/{os.getpid()}"
        self._on_elected, self._on_lost = on_elected, on_lost
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None
        self._lease = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leader-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.is_leader:
            await self._step_down("shutting down")
            # Hand over at once instead of making the others wait for the TTL.
            with contextlib.suppress(Exception):
                await self.etcd.client.revoke_lease(self._lease)

    async def _try_acquire(self) -> bool:
        self._lease = await self.etcd.grant_lease(self.ttl)
        key = LEADER_KEY.encode()
        cmp = rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)
        put = rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=self.identity.encode(),
                                                       lease=self._lease))
        ok, _ = await self.etcd.txn([cmp], [put])
        if not ok:
            with contextlib.suppress(Exception):
                await self.etcd.client.revoke_lease(self._lease)
        return ok

    async def _step_down(self, why: str) -> None:
        if self.is_leader:
            self.is_leader = False
            log.warning("leadership lost", identity=self.identity, reason=why)
            await self._on_lost()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not await self._try_acquire():
                    await asyncio.sleep(1.0)
                    continue
            except Exception as e:
                log.warning("leader election attempt failed", error=str(e))
                await asyncio.sleep(1.0)
                continue
            self.is_leader = True
            log.info("elected leader", identity=self.identity, ttl=self.ttl)
            await self._on_elected()
            last_ok = loop.time()
            while True:
                await asyncio.sleep(self.ttl / 3)
                try:
                    await self.etcd.client.refresh_lease(self._lease)
                    kv = await self.etcd.get(LEADER_KEY)
                    if kv is None or kv.value.decode() != self.identity:
                        await self._step_down("leader key gone")
                        break
                    last_ok = loop.time()
                except Exception as e:
                    if loop.time() - last_ok > self.ttl * 2 / 3:
                        await self._step_down(f"cannot renew lease: {e}")
                        break
