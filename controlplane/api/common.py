"""Helpers shared by the API servicers, the dispatcher's servicer and the reconcile pass.

- ``check_name`` / ``check_labels`` and the request limits: bad input is refused with the
  field named before anything is written.
- ``now`` / ``new_meta`` / ``touch``: timestamps and new ``Meta`` records (a fresh uuid id).
- Events: ``record_event`` adds one to the transaction of the change it describes, so the
  change and its explanation land together or not at all; ``new_event`` gives the key and
  record for a writer with its own transactions (the reconcile pass).
- ``read_modify_write``: retry a write that met a concurrent change, unless the request named
  the ``resource_version`` it wants (then the conflict is the answer).
- ``CacheReader``: single-object gets from the informer cache, with read-your-writes.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import resources_pb2 as pb
from controlplane.api.errors import InvalidArgument
from controlplane.store import Conflict, Corrupt, keys
from controlplane.store.txn import Txn

if TYPE_CHECKING:  # reconcile imports this module (new_event): no import of reconcile at run time
    from controlplane.reconcile.cache import ClusterState, Informer
    from controlplane.store.etcd import Etcd

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")
MAX_LABELS = 64
MAX_LABEL_VALUE = 1024
MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_REPLICAS = 1000


def check_name(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not DNS_LABEL.match(value):
        raise InvalidArgument(
            field,
            f"{value!r} is not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        if not LABEL_KEY.match(k):
            raise InvalidArgument(f"{field}.{k}", "invalid label key")
        if len(v) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"{field}.{k}", f"value longer than {MAX_LABEL_VALUE} bytes")


def now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def new_meta(name: str, labels: Mapping[str, str] | None = None) -> pb.Meta:
    ts = now()
    return pb.Meta(
        id=uuid.uuid4().hex,
        name=name,
        created_at=ts,
        updated_at=ts,
        labels=dict(labels or {}),
    )


def touch(meta: pb.Meta) -> None:
    meta.updated_at.CopyFrom(now())


def event_id() -> str:
    """Sortable by time, unique across API servers."""
    return f"{time.time_ns():020d}-{os.urandom(4).hex()}"


def record_event(
    txn: Txn,
    cluster: str,
    kind: str,
    obj: str,
    reason: str,
    message: str,
    *,
    warning: bool = False,
) -> None:
    """Add an Event to the same transaction as the change it describes."""
    key, ev = new_event(cluster, kind, obj, reason, message, warning=warning)
    txn.put(key, ev)


def new_event(
    cluster: str, kind: str, obj: str, reason: str, message: str, *, warning: bool = False
) -> tuple[str, pb.Event]:
    """An Event and the key it is stored under."""
    eid = event_id()
    ev = pb.Event(
        meta=new_meta(eid),
        cluster=cluster,
        kind=kind,
        object=obj,
        type="Warning" if warning else "Normal",
        reason=reason,
        message=message,
    )
    return keys.event(cluster, eid), ev


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
    be seen a few milliseconds late (the watch delay); lists and pages still read etcd.
    """

    def __init__(self, etcd: Etcd, informer: Informer | None) -> None:
        self.etcd, self.informer = etcd, informer

    async def state(self, cluster: str) -> ClusterState | Literal[False] | None:
        """The cluster's cached state (None if it has no resources), or False: read etcd."""
        if self.informer is None or not await self.informer.caught_up(self.etcd.last_write_revision):
            return False
        return self.informer.clusters.get(cluster)

    @staticmethod
    def check_decodes(state: ClusterState | None, what: str, key: str, prefix: str = "") -> None:
        """Raise :class:`Corrupt` if the record at ``key`` (or one under ``prefix``) does not decode.

        The cache keeps the last good copy of such a record for the reconcilers (see
        :mod:`controlplane.reconcile.cache`); answering a read with it would hide the damage.
        """
        if state is None or not state.undecodable:
            return
        bad = {k: b.error for k, b in state.undecodable.items()
               if k == key or (prefix and k.startswith(prefix))}
        if bad:
            raise Corrupt(bad, what)
