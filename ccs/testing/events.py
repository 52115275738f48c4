"""EventService of the fake: the event list and the watch, replayed from the history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from ccs.testing.secrets import SecretsFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2

__all__ = ["KINDS", "EventsFake"]

#: The kinds a watch may ask for, in the server's order (``controlplane/api/events.py``).
KINDS = ("cluster", "node", "application", "service", "container", "event", "release")


class EventsFake(SecretsFake):
    async def ListEvents(self, request: Any, context: Ctx) -> api_pb2.ListEventsResponse:
        await self._cluster(context, request.cluster)
        items, nxt = await self._page(
            context, self._items("event", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListEventsResponse(events=items, next_page_token=nxt, revision=self.revision)

    async def Watch(self, request: Any, context: Ctx) -> AsyncIterator[api_pb2.WatchResponse]:
        await self._auth(context)
        self.watch_requests.append(request)
        known = [k for k in KINDS if self.watch_kinds is None or k in self.watch_kinds]
        for i, k in enumerate(request.kinds):
            if k not in known:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                           f"kinds[{i}]: {k!r} is not one of {', '.join(known)}")
        if request.from_revision < 0:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "from_revision: must not be negative")
        if request.from_revision and request.from_revision <= self.compacted:
            await fail(context, grpc.StatusCode.OUT_OF_RANGE,
                       f"revision {request.from_revision} has been compacted (oldest available is "
                       f"{self.compacted + 1}); re-list and watch from the list's revision + 1")
        budget = self.watch_faults.pop(0) if self.watch_faults else None
        nxt = request.from_revision or self.revision + 1
        while True:
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            for rev in sorted({e.revision for e in self.history if e.revision >= nxt}):
                nxt = rev + 1
                resp = api_pb2.WatchResponse(revision=rev, events=[
                    e for e, cluster in zip(self.history, self.history_clusters, strict=True)
                    if e.revision == rev and cluster == request.cluster
                    and (not request.kinds or e.kind in request.kinds)
                ])
                if not resp.events:
                    continue
                if budget == 0:
                    await context.abort(self.watch_fault_code, "injected watch failure")
                if budget is not None:
                    budget -= 1
                yield resp
            await changed.wait()
