"""Object metadata: a new ``Meta`` (id, name, timestamps, labels) and its ``updated_at``.

Every writer of a record needs these: the API servicers, the dispatcher (node
registration, heartbeats) and the reconcilers. They live with the store, below all
three, so that none of those packages imports another for them (they sat in
``controlplane.api.common`` and made the dispatcher import the API).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import resources_pb2 as pb


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
