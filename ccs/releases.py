"""Releases and routes (``client.releases``, ``client.routes``).

Design choices:

- A release is a resource the control plane drives (rolling window, blue-green traffic
  shifts, canary steps); the operator verbs (shift, confirm, rollback, promote, abort) are
  requests the release planner acts on, so the ``Release`` they return may not show their
  effect yet. ``wait`` is how a caller learns the outcome.
- ``wait`` uses the cluster watch as a *trigger* and ``GetRelease`` as the *read*: every
  change of kind ``release`` causes one re-read. That keeps it correct whether or not a watch
  event carries the object, and the watch is pinned to a revision read *before* the first
  ``GetRelease``, so no change between the two is missed. The watch is ``client.events.watch``,
  so it reconnects exactly like ``applications.wait`` does (a server restart or a dropped
  connection resumes from the last revision seen), and a re-read that finds the server
  unavailable is retried with backoff until the wait's deadline. A server that rejects the
  kind (INVALID_ARGUMENT: older servers) makes it poll ``GetRelease`` every ``poll_interval``.
- A wait started without a name pins the latest release at the start, so a newer release
  created meanwhile does not change what is being waited for (that one ends SUPERSEDED).
- The pure pieces (``CanaryOptions``, the step syntax, phase names) live in ``ccs.models``;
  rollback and revisions of a whole application are ``client.applications`` calls.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Callable

from ccs._transport import Listing, Transport
from ccs.durations import format_duration
from ccs.errors import InvalidArgument, ReleaseFailed, Unavailable, WaitTimeout
from ccs.events import Events
from ccs.models import TERMINAL_PHASES, phase_name
from ccs.release_phases import awaits_operator
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["ProgressCallback", "Releases", "Routes"]

ProgressCallback = Callable[[resources_pb2.Release], None]


class Releases:
    """Releases of an application: read them, steer them, wait for them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._events = Events(transport)

    async def list(self, cluster: str, application: str) -> Listing[resources_pb2.Release]:
        """Every release of the application, oldest first."""
        req = api_pb2.ListReleasesRequest(cluster=cluster, application=application)
        resp = await self._t.unary(self._t.releases.ListReleases, req, api_pb2.ListReleasesResponse)
        out: Listing[resources_pb2.Release] = Listing(sorted(resp.releases, key=lambda r: r.number))
        return out

    async def get(self, cluster: str, application: str, name: str = "") -> resources_pb2.Release:
        """The named release (``r<N>``), or the application's latest when ``name`` is empty."""
        req = api_pb2.GetReleaseRequest(cluster=cluster, application=application, name=name)
        return await self._t.unary(self._t.releases.GetRelease, req, resources_pb2.Release)

    async def shift(self, cluster: str, application: str, weight: int) -> resources_pb2.Release:
        """Blue-green and canary: send ``weight`` percent (0..100) of traffic to the new
        revision; checked here too (with the server's message) so a bad weight is refused
        before anything is sent."""
        if not 0 <= weight <= 100:
            raise InvalidArgument(f"weight: {weight} is not a percentage (0-100)")
        req = api_pb2.ShiftTrafficRequest(cluster=cluster, application=application, weight=weight)
        return await self._t.unary(self._t.releases.ShiftTraffic, req, resources_pb2.Release)

    async def _action(self, method: object, cluster: str, application: str) -> resources_pb2.Release:
        req = api_pb2.ReleaseActionRequest(cluster=cluster, application=application)
        return await self._t.unary(method, req, resources_pb2.Release)

    async def confirm(self, cluster: str, application: str) -> resources_pb2.Release:
        """Blue-green: all traffic to the new revision, then remove the old one."""
        return await self._action(self._t.releases.ConfirmRelease, cluster, application)

    async def rollback(self, cluster: str, application: str) -> resources_pb2.Release:
        """Any strategy: all traffic back to the old revision, then remove the new one."""
        return await self._action(self._t.releases.RollbackRelease, cluster, application)

    async def promote(self, cluster: str, application: str) -> resources_pb2.Release:
        """Canary: go to the next step now (or finish); rolling: resume after a pause."""
        return await self._action(self._t.releases.PromoteRelease, cluster, application)

    async def abort(self, cluster: str, application: str) -> resources_pb2.Release:
        """Canary: stop and roll back."""
        return await self._action(self._t.releases.AbortRelease, cluster, application)

    async def wait(
        self,
        cluster: str,
        application: str,
        name: str = "",
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 1.0,
        until_awaiting_shift: bool = False,
    ) -> resources_pb2.Release:
        """Follow a release until it ends and return it when it SUCCEEDED.

        With ``until_awaiting_shift``, also return it (without raising) as soon as it waits
        for an operator (``ccs.release_phases.awaits_operator``): a blue-green release whose
        new side is up, AWAITING_SHIFT, which only a shift, confirm or rollback moves on.

        Raises ``ReleaseFailed`` (with ``.phase``, ``.message``, ``.release``) when it ends
        rolled back, failed or superseded, and ``WaitTimeout`` after ``timeout`` seconds
        (None: no limit). ``on_progress`` gets the release on the first read and after
        every change (on the blocking ``Client``, it runs on the client's loop thread).
        A server restart or a dropped connection during the wait is ridden out: the watch
        resumes where it stopped and re-reads are retried.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        revision = await self._events.current_revision(cluster)
        release = await self.get(cluster, application, name)
        name = release.meta.name
        seen = -1
        triggers = self._triggers(cluster, revision + 1, poll_interval)

        async def next_read() -> resources_pb2.Release:
            await anext(triggers)
            return await self._reread(cluster, application, name)

        try:
            while True:
                if release.meta.resource_version != seen:
                    seen = release.meta.resource_version
                    if on_progress is not None:
                        on_progress(release)
                if release.status.phase in TERMINAL_PHASES:
                    return _outcome(release)
                if until_awaiting_shift and awaits_operator(release.status):
                    return release
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeout(_timeout_message(release, timeout))
                try:
                    async with asyncio.timeout(remaining):
                        release = await next_read()
                except TimeoutError:
                    raise WaitTimeout(_timeout_message(release, timeout)) from None
        finally:
            await triggers.aclose()

    async def _reread(
        self, cluster: str, application: str, name: str, retry_initial: float = 0.2, retry_max: float = 5.0
    ) -> resources_pb2.Release:
        """``get``, retried with jittered backoff while the server is unavailable (the
        caller's deadline bounds it)."""
        failures = 0
        while True:
            try:
                return await self.get(cluster, application, name)
            except Unavailable:
                failures += 1
                await asyncio.sleep(random.uniform(0, min(retry_max, retry_initial * 2**failures)))

    async def _triggers(self, cluster: str, from_revision: int, poll: float) -> AsyncGenerator[None, None]:
        """Yield whenever a release of the cluster may have changed: on each watch response
        of kind ``release`` (the reconnecting ``Events.watch``), or every ``poll`` seconds
        when the server rejects the kind."""
        watch = self._events.watch(cluster, from_revision, ["release"])
        try:
            async for _ in watch:
                yield
        except InvalidArgument:
            pass  # the server does not know the kind: fall back to polling
        finally:
            await watch.aclose()
        while True:
            await asyncio.sleep(poll)
            yield


def _outcome(release: resources_pb2.Release) -> resources_pb2.Release:
    if release.status.phase == resources_pb2.RELEASE_PHASE_SUCCEEDED:
        return release
    phase = phase_name(release.status.phase)
    raise ReleaseFailed(phase, release.status.message or f"release {release.meta.name} {phase}",
                        release)


def _timeout_message(release: resources_pb2.Release, timeout: float | None) -> str:
    st = release.status
    return (f"release {release.meta.name} still {phase_name(st.phase)} after {format_duration(timeout or 0)} "
            f"({st.updated}/{st.total} updated, weight {st.weight}%)")


class Routes:
    """The cluster's routing table, as every node's router applies it."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def list(self, cluster: str) -> resources_pb2.RoutingTable:
        """Every route of the cluster with its backends and their weights."""
        req = api_pb2.ListRoutesRequest(cluster=cluster)
        return await self._t.unary(self._t.routes.ListRoutes, req, resources_pb2.RoutingTable)
