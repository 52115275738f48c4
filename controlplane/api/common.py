"""Helpers shared by the API servicers.

- The request limits (``MAX_REPLICAS``; the template's size limit is compose's
  ``MAX_TEMPLATE_BYTES``): bad input is refused with the field named before anything is written.
- ``read_modify_write``: retry a write that met a concurrent change, unless the request named
  the ``resource_version`` it wants (then the conflict is the answer).
- ``CacheReader``: gets (and, through :mod:`controlplane.api.cached_lists`, list pages) from
  the informer cache, with read-your-writes.

What the dispatcher's servicer and the reconcile pass need too lives below all of them, so that
no package imports another for it: name and label rules in :mod:`controlplane.names`, the error
boundary in :mod:`controlplane.grpc_errors`, timestamps and new ``Meta`` records in
:mod:`controlplane.store.meta`, events (``record_event`` adds one to the transaction of the
change it describes; ``new_event`` for a writer with its own transactions) in
:mod:`controlplane.store.events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, TypeVar

from controlplane.api.list_memo import ListMemo
from controlplane.store import Conflict, Corrupt

if TYPE_CHECKING:
    from controlplane.informer import ClusterState, Informer
    from controlplane.store.etcd import Etcd

MAX_REPLICAS = 1000


T = TypeVar("T")


async def read_modify_write(requested_rv: int, attempt: Callable[[], Awaitable[T]], tries: int = 8) -> T:
    """Run a read-modify-write; retry it on a conflict unless the caller asked for a revision.

    Objects also change under the user's feet when the control plane records status (as
    in Kubernetes, every write bumps ``resource_version``). A request that names a
    ``resource_version`` wants exactly that version and fails with ABORTED; one that does
    not is applied to the latest version, so it re-reads and tries again.
    """
    for i in range(tries):
        try:
            return await attempt()
        except Conflict:
            if requested_rv or i == tries - 1:
                raise
            await asyncio.sleep(0.005 * 2**i)
    raise AssertionError("unreachable")


class CacheReader:
    """Serve single-object reads from the watch cache, with read-your-writes.

    A get from the cache costs no etcd round trip. It waits until the cache has applied
    the newest write this server made (usually already true), so a client never reads
    older data than it just wrote through this server; if the cache lags by more than a
    moment, the caller falls back to etcd. A write made through *another* API server can
    be seen a few milliseconds late (the watch delay). Lists use it too
    (:mod:`controlplane.api.cached_lists`).
    """

    def __init__(self, etcd: Etcd, informer: Informer | None) -> None:
        self.etcd, self.informer = etcd, informer
        self.memo = ListMemo()  # list answers made at the cache's revision (controlplane.api.list_memo)

    def current_revision(self) -> int | None:
        """The revision a read from the cache would be at now, without waiting; None when the
        cache is not synced or has not applied this server's last write yet."""
        informer = self.informer
        if informer is None or not informer.synced.is_set() or informer.revision < self.etcd.last_write_revision:
            return None
        return informer.revision

    async def state(self, cluster: str) -> ClusterState | Literal[False] | None:
        """The cluster's cached state (None if it has no resources), or False: read etcd."""
        if self.informer is None or not await self.informer.caught_up(self.etcd.last_write_revision):
            return False
        return self.informer.clusters.get(cluster)

    async def snapshot(self, cluster: str) -> tuple[ClusterState | None, int] | Literal[False]:
        """As :meth:`state`, with the revision the cached state is the etcd snapshot of (read
        with the state, no await between: a watch batch cannot land in between)."""
        state = await self.state(cluster)
        if state is False or self.informer is None:
            return False
        return state, self.informer.revision

    @staticmethod
    def check_decodes(state: ClusterState | None, what: str, key: str, prefix: str = "") -> None:
        """Raise :class:`Corrupt` if the record at ``key`` (or one under ``prefix``) does not decode.

        The cache keeps the last good copy of such a record for the reconcilers (see
        :mod:`controlplane.informer`); answering a read with it would hide the damage.
        """
        if state is None or not state.undecodable:
            return
        bad = {k: b.error for k, b in state.undecodable.items()
               if k == key or (prefix and k.startswith(prefix))}
        if bad:
            raise Corrupt(bad, what)
