"""AuditService: read the audit log (``ccs audit ls [--since] [-f]``).

Records are written by :mod:`controlplane.access.audit`. A record that rode in the
transaction of the change it describes holds no revision of its own: that revision is its key's
``create_revision``, filled in here. ``WatchAudit`` follows the ``/ccs/audit/`` prefix from a
revision as ``Watch`` follows a cluster (resumable with no gap or duplicate; a compacted
revision answers ``OUT_OF_RANGE``); deletions (pruning) are not sent. A record corrected after
its call failed late arrives a second time, with the same id.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import grpc

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import InvalidArgument, map_errors
from controlplane.store import keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import KV, Etcd

# Record keys start with 20 digits of nanoseconds; a later time would not sort after them.
MAX_SINCE = 1e10


def fill_revision(kv: KV, rec: pb.AuditRecord) -> None:
    if rec.wrote and not rec.revision:
        rec.revision = kv.create_revision


@map_errors
class AuditServicer(api_pb2_grpc.AuditServiceServicer):
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    async def ListAudit(
        self, request: api_pb2.ListAuditRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListAuditResponse:
        if not math.isfinite(request.since) or not 0 <= request.since < MAX_SINCE:
            raise InvalidArgument("since", f"must be Unix seconds from 0 to {MAX_SINCE:.0f}, got {request.since}")
        start = keys.audit(f"{int(request.since * 1e9):020d}") if request.since else ""
        page = await reads.list_page(self.etcd, keys.AUDIT, pb.AuditRecord, page_size=request.page_size,
                                     page_token=request.page_token, start=start, each=fill_revision)
        return api_pb2.ListAuditResponse(records=page.items, next_page_token=page.next_page_token,
                                         revision=page.revision)

    async def WatchAudit(
        self, request: api_pb2.WatchAuditRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api_pb2.WatchAuditResponse]:
        if request.from_revision < 0:
            raise InvalidArgument("from_revision", "must not be negative")
        start = request.from_revision
        if not start:
            _, revision = await self.etcd.get_with_revision(keys.AUDIT)
            start = revision + 1
        async for batch in self.etcd.watch(keys.AUDIT, start):
            resp = api_pb2.WatchAuditResponse(revision=batch[0].revision)
            for change in batch:
                if not change.deleted:
                    rec = decode(change.kv, pb.AuditRecord)
                    fill_revision(change.kv, rec)
                    resp.records.append(rec)
            if resp.records:
                yield resp
