"""EventService: recorded events, and Watch over a cluster's whole subtree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import structlog

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import InvalidArgument, map_errors
from controlplane.names import check_name
from controlplane.store import keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import KV, Etcd, WatchedChange

log = structlog.get_logger("ccs.watch")

_CLASSES: dict[str, type] = {
    "node": pb.Node,
    "application": pb.Application,
    "service": pb.Service,
    "container": pb.Container,
    "event": pb.Event,
    "release": pb.Release,
}
KINDS = ("cluster", *_CLASSES)


@map_errors
class EventServicer(api_pb2_grpc.EventServiceServicer):
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    async def ListEvents(
        self, request: api_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListEventsResponse:
        cluster = check_name("cluster", request.cluster)
        await reads.get(self.etcd, keys.cluster(cluster), pb.Cluster, "cluster", cluster)
        page = await reads.list_page(
            self.etcd,
            keys.events(cluster),
            pb.Event,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return api_pb2.ListEventsResponse(
            events=page.items, next_page_token=page.next_page_token, revision=page.revision
        )

    async def Watch(
        self, request: api_pb2.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api_pb2.WatchResponse]:
        cluster = check_name("cluster", request.cluster)
        for i, k in enumerate(request.kinds):
            if k not in KINDS:
                raise InvalidArgument(f"kinds[{i}]", f"{k!r} is not one of {', '.join(KINDS)}")
        if request.from_revision < 0:
            raise InvalidArgument("from_revision", "must not be negative")
        kv, revision = await self.etcd.get_with_revision(keys.cluster(cluster))
        if kv is None:
            await reads.get(self.etcd, keys.cluster(cluster), pb.Cluster, "cluster", cluster)
        start = request.from_revision or revision + 1
        wanted = set(request.kinds)
        async for batch in self.etcd.watch(keys.subtree(cluster), start):
            resp = api_pb2.WatchResponse(revision=batch[0].revision)
            for change in batch:
                ev = _event(change)
                if ev is not None and (not wanted or ev.kind in wanted):
                    resp.events.append(ev)
            if resp.events:
                yield resp


def _event(change: WatchedChange) -> api_pb2.WatchEvent | None:
    kind = keys.kind_of(change.kv.key)
    cls = _CLASSES.get(kind or "")
    if kind is None or cls is None:
        return None
    if change.deleted:
        if change.prev_value is None:
            return None
        raw = KV(change.kv.key, change.prev_value, change.revision, 0)
        typ = api_pb2.WatchEvent.TYPE_DELETE
    else:
        raw = change.kv
        typ = api_pb2.WatchEvent.TYPE_PUT
    ev = api_pb2.WatchEvent(revision=change.revision, type=typ, kind=kind)
    getattr(ev, kind).CopyFrom(decode(raw, cls))
    return ev
