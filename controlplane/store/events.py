"""Events: a record of what happened to an object, written in the transaction that did it.

The API servicers, the dispatcher and the reconcilers all record events; the helpers live
with the store, below all three (they sat in ``controlplane.api.common`` and made the
dispatcher and the reconcilers import the API).
"""

from __future__ import annotations

import os
import time

from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.meta import new_meta
from controlplane.store.txn import Txn


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
