"""Events and the cluster watch (``client.events``).

``watch`` is a resumable stream of ``WatchResponse`` messages, one per etcd revision (every
change of one transaction together, e.g. an application and its services). When the
connection drops (``UNAVAILABLE``) or the server ends the stream, it reconnects with
jittered exponential backoff from the last received revision + 1, so the caller sees every
revision exactly once:

- The first watch is pinned to a revision. ``from_revision=0`` ("from now") becomes the
  cluster's current revision + 1 with one cheap list call; otherwise a reconnect before the
  first change could not know where "now" was, and a change in between would be lost.
- A response at or below the last revision received is dropped (defensive: a server that
  replays must not cause a duplicate).

``OutOfRange`` (the revision was compacted) is not retried: the caller must re-list, then
watch from the list's ``revision + 1``. Other errors propagate unchanged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Iterable

from ccs._transport import Listing, Transport, collect
from ccs.cancellation import raise_if_cancelled
from ccs.errors import Unavailable
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Events"]


class Events:
    """Cluster events (``list``) and every change to a cluster's resources (``watch``)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def list(self, cluster: str, *, page_size: int = 0) -> Listing[resources_pb2.Event]:
        async def page(token: str) -> api_pb2.ListEventsResponse:
            req = api_pb2.ListEventsRequest(cluster=cluster, page_size=page_size, page_token=token)
            return await self._t.unary(self._t.events.ListEvents, req, api_pb2.ListEventsResponse)

        return await collect(page, lambda r: r.events)

    async def current_revision(self, cluster: str) -> int:
        """The etcd revision a one-item list of the cluster's events was read at."""
        req = api_pb2.ListEventsRequest(cluster=cluster, page_size=1)
        resp = await self._t.unary(self._t.events.ListEvents, req, api_pb2.ListEventsResponse)
        return resp.revision

    async def watch(
        self,
        cluster: str,
        from_revision: int = 0,
        kinds: Iterable[str] = (),
        *,
        max_retries: int | None = None,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
    ) -> AsyncGenerator[api_pb2.WatchResponse, None]:
        """Yield one ``WatchResponse`` per revision with changes in ``cluster``, from
        ``from_revision`` (0: from now), reconnecting transparently.

        ``kinds`` limits it to cluster, node, application, service, container or event.
        After ``max_retries`` consecutive failed reconnects (None: never give up)
        ``Unavailable`` is raised. Close the iterator (``aclose``, or ``break`` out of
        ``async for``) to stop watching.
        """
        kind_list = list(kinds)
        if from_revision <= 0:
            from_revision = await self.current_revision(cluster) + 1
        next_rev = from_revision
        failures = 0
        while True:
            req = api_pb2.WatchRequest(cluster=cluster, from_revision=next_rev, kinds=kind_list)
            try:
                async for resp in self._t.stream(self._t.events.Watch, req, api_pb2.WatchResponse):
                    if resp.revision < next_rev:
                        continue
                    next_rev = resp.revision + 1
                    failures = 0
                    yield resp
            except Unavailable:
                if max_retries is not None and failures >= max_retries:
                    raise
            raise_if_cancelled()  # a cancel grpc ate must not turn into a reconnect
            failures += 1
            await asyncio.sleep(random.uniform(0, min(retry_max, retry_initial * 2**failures)))
