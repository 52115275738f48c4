"""Releases, routes and application rollback (``client.releases``, ``client.routes``).

Design choices:

- A release is a resource the control plane drives (rolling window, blue-green traffic
  shifts, canary steps); the operator verbs (shift, confirm, rollback, promote, abort) are
  requests the release planner acts on, so the ``Release`` they return may not show their
  effect yet. ``wait`` is how a caller learns the outcome.
- ``wait`` uses the cluster watch as a *trigger* and ``GetRelease`` as the *read*: every
  change of kind ``release`` causes one re-read. That keeps it correct whether or not a watch
  event carries the object, and the watch is pinned to a revision read *before* the first
  ``GetRelease``, so no change between the two is missed. A server that rejects the kind
  (INVALID_ARGUMENT: older servers) makes it poll ``GetRelease`` every ``poll_interval``.
- A wait started without a name pins the latest release at the start, so a newer release
  created meanwhile does not change what is being waited for (that one ends SUPERSEDED).
- ``parse_steps`` (the canary step syntax of the CLI) is pure and raises ``StepsError``, a
  ``ValueError`` naming the token and why: it is input validation, not an API error.
- Rollback of a whole application and its revision list are module functions here
  (``rollback_application``, ``list_revisions``) over ``Releases`` methods, so they exist
  before ``client.applications`` grows them.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc.aio

from ccs._transport import Listing, Transport
from ccs.errors import InvalidArgument, ReleaseFailed, WaitTimeout
from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import api_pb2, api_pb2_grpc, resources_pb2

if TYPE_CHECKING:
    from ccs.client import AsyncClient

__all__ = [
    "TERMINAL_PHASES",
    "CanaryOptions",
    "Releases",
    "Routes",
    "StepsError",
    "list_revisions",
    "parse_duration_ms",
    "parse_steps",
    "phase_name",
    "rollback_application",
    "update_application",
]

P = resources_pb2.ReleasePhase

ProgressCallback = Callable[[resources_pb2.Release], None]


def phase_name(phase: int) -> str:
    """``RELEASE_PHASE_ROLLED_BACK`` -> ``rolled-back`` (``-`` when unset)."""
    if phase not in P.values() or phase == resources_pb2.RELEASE_PHASE_UNSPECIFIED:
        return "-" if phase == 0 else str(phase)
    return str(P.Name(phase)).removeprefix("RELEASE_PHASE_").lower().replace("_", "-")


class Releases:
    """Releases of an application: read them, steer them, wait for them."""

    def __init__(self, transport: Transport, channel: grpc.aio.Channel) -> None:
        self._t = transport
        self._stub = api_pb2_grpc.ReleaseServiceStub(channel)
        self._events = api_pb2_grpc.EventServiceStub(channel)

    async def list(self, cluster: str, application: str) -> Listing[resources_pb2.Release]:
        """Every release of the application, oldest first."""
        req = api_pb2.ListReleasesRequest(cluster=cluster, application=application)
        resp = await self._t.unary(self._stub.ListReleases, req, api_pb2.ListReleasesResponse)
        out: Listing[resources_pb2.Release] = Listing(sorted(resp.releases, key=lambda r: r.number))
        return out

    async def get(self, cluster: str, application: str, name: str = "") -> resources_pb2.Release:
        """The named release (``r<N>``), or the application's latest when ``name`` is empty."""
        req = api_pb2.GetReleaseRequest(cluster=cluster, application=application, name=name)
        return await self._t.unary(self._stub.GetRelease, req, resources_pb2.Release)

    async def shift(self, cluster: str, application: str, weight: int) -> resources_pb2.Release:
        """Blue-green and canary: send ``weight`` percent (0..100) of traffic to the new
        revision; checked here so the error names the argument."""
        if not 0 <= weight <= 100:
            raise InvalidArgument(f"weight: must be 0..100 (percent), got {weight}")
        req = api_pb2.ShiftTrafficRequest(cluster=cluster, application=application, weight=weight)
        return await self._t.unary(self._stub.ShiftTraffic, req, resources_pb2.Release)

    async def _action(self, method: object, cluster: str, application: str) -> resources_pb2.Release:
        req = api_pb2.ReleaseActionRequest(cluster=cluster, application=application)
        return await self._t.unary(method, req, resources_pb2.Release)

    async def confirm(self, cluster: str, application: str) -> resources_pb2.Release:
        """Blue-green: all traffic to the new revision, then remove the old one."""
        return await self._action(self._stub.ConfirmRelease, cluster, application)

    async def rollback(self, cluster: str, application: str) -> resources_pb2.Release:
        """Any strategy: all traffic back to the old revision, then remove the new one."""
        return await self._action(self._stub.RollbackRelease, cluster, application)

    async def promote(self, cluster: str, application: str) -> resources_pb2.Release:
        """Canary: go to the next step now (or finish); rolling: resume after a pause."""
        return await self._action(self._stub.PromoteRelease, cluster, application)

    async def abort(self, cluster: str, application: str) -> resources_pb2.Release:
        """Canary: stop and roll back."""
        return await self._action(self._stub.AbortRelease, cluster, application)

    async def rollback_application(
        self, cluster: str, application: str, to_revision: int = 0, strategy: str = ""
    ) -> resources_pb2.Application:
        """Restore every service to revision ``to_revision`` (0: the one before the
        current) in one step; the control plane releases it with ``strategy``."""
        if to_revision < 0:
            raise InvalidArgument(f"to_revision: must be >= 0 (0: the previous), got {to_revision}")
        req = api_pb2.RollbackApplicationRequest(
            cluster=cluster, name=application, to_revision=to_revision, strategy=strategy
        )
        return await self._t.unary(
            self._t.applications.RollbackApplication, req, resources_pb2.Application
        )

    async def revisions(
        self, cluster: str, application: str
    ) -> builtins.list[resources_pb2.ApplicationRevision]:
        """The application's stored revisions, oldest first."""
        req = api_pb2.ListRevisionsRequest(cluster=cluster, name=application)
        resp = await self._t.unary(
            self._t.applications.ListRevisions, req, api_pb2.ListRevisionsResponse
        )
        return sorted(resp.revisions, key=lambda r: r.revision)

    async def wait(
        self,
        cluster: str,
        application: str,
        name: str = "",
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 1.0,
    ) -> resources_pb2.Release:
        """Follow a release until it ends and return it when it SUCCEEDED.

        Raises ``ReleaseFailed`` (with ``.phase``, ``.message``, ``.release``) when it ends
        rolled back, failed or superseded, and ``WaitTimeout`` after ``timeout`` seconds
        (None: no limit). ``on_progress`` gets the release on the first read and after
        every change (on the blocking ``Client``, it runs on the client's loop thread).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        revision = await self._current_revision(cluster)
        release = await self.get(cluster, application, name)
        name = release.meta.name
        seen = -1
        triggers = self._triggers(cluster, revision + 1, poll_interval)
        try:
            while True:
                if release.meta.resource_version != seen:
                    seen = release.meta.resource_version
                    if on_progress is not None:
                        on_progress(release)
                if release.status.phase in TERMINAL_PHASES:
                    return _outcome(release)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeout(_timeout_message(release, timeout))
                try:
                    await asyncio.wait_for(anext(triggers), remaining)
                except TimeoutError:
                    raise WaitTimeout(_timeout_message(release, timeout)) from None
                release = await self.get(cluster, application, name)
        finally:
            await triggers.aclose()

    async def _current_revision(self, cluster: str) -> int:
        req = api_pb2.ListEventsRequest(cluster=cluster, page_size=1)
        resp = await self._t.unary(self._events.ListEvents, req, api_pb2.ListEventsResponse)
        return resp.revision

    async def _triggers(self, cluster: str, from_revision: int, poll: float) -> AsyncGenerator[None, None]:
        """Yield whenever a release of the cluster may have changed: on each watch response
        of kind ``release``, or every ``poll`` seconds when the server rejects the kind."""
        req = api_pb2.WatchRequest(cluster=cluster, from_revision=from_revision, kinds=["release"])
        try:
            async for _ in self._t.stream(self._events.Watch, req, api_pb2.WatchResponse):
                yield
        except InvalidArgument:
            pass  # the server does not know the kind: fall back to polling
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
    return (f"release {release.meta.name} still {phase_name(st.phase)} after {timeout:g}s "
            f"({st.updated}/{st.total} updated, weight {st.weight}%)")


class Routes:
    """The cluster's routing table, as every node's router applies it."""

    def __init__(self, transport: Transport, channel: grpc.aio.Channel) -> None:
        self._t = transport
        self._stub = api_pb2_grpc.RouteServiceStub(channel)

    async def list(self, cluster: str) -> resources_pb2.RoutingTable:
        """Every route of the cluster with its backends and their weights."""
        req = api_pb2.ListRoutesRequest(cluster=cluster)
        return await self._t.unary(self._stub.ListRoutes, req, resources_pb2.RoutingTable)


# ---------------------------------------------------------------- application-level helpers


async def rollback_application(
    client: AsyncClient, cluster: str, app: str, to_revision: int = 0, strategy: str = ""
) -> resources_pb2.Application:
    """``ccs app rollback``: see ``Releases.rollback_application``."""
    return await client.releases.rollback_application(cluster, app, to_revision, strategy)


async def list_revisions(
    client: AsyncClient, cluster: str, app: str
) -> list[resources_pb2.ApplicationRevision]:
    """``ccs app revisions``: see ``Releases.revisions``."""
    return await client.releases.revisions(cluster, app)


@dataclass
class CanaryOptions:
    """The canary fields of an application update (``--strategy canary``)."""

    replicas: int = 0
    steps: Sequence[resources_pb2.CanaryStep] = field(default_factory=list)
    max_5xx_ratio: float = 0.0
    min_requests: int = 0
    max_unhealthy: int = 0
    match_header: str = ""
    match_cookie: str = ""
    match_value: str = ""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when an option is out of range."""
        if self.replicas < 0:
            raise ValueError(f"canary_replicas: must be >= 0, got {self.replicas}")
        if not 0.0 <= self.max_5xx_ratio <= 1.0:
            raise ValueError(f"max_5xx_ratio: must be 0.0..1.0, got {self.max_5xx_ratio}")
        if self.min_requests < 0 or self.max_unhealthy < 0:
            raise ValueError("min_requests, max_unhealthy: must be >= 0")
        if self.match_header and self.match_cookie:
            raise ValueError("match_header, match_cookie: set at most one")
        if bool(self.match_header or self.match_cookie) != bool(self.match_value):
            raise ValueError("match_value: needed with match_header/match_cookie, and only then")

    def apply(self, req: api_pb2.UpdateApplicationRequest) -> None:
        self.validate()
        req.canary_replicas = self.replicas
        req.canary_steps.extend(self.steps)
        req.canary_analysis.CopyFrom(resources_pb2.CanaryAnalysis(
            max_5xx_ratio=self.max_5xx_ratio, min_requests=self.min_requests,
            max_unhealthy=self.max_unhealthy,
        ))
        req.match_header, req.match_cookie = self.match_header, self.match_cookie
        req.match_value = self.match_value


async def update_application(
    client: AsyncClient, cluster: str, name: str, *, canary: CanaryOptions | None = None,
    **update: Any,
) -> resources_pb2.Application:
    """``ccs app update --strategy ...``: the same as ``client.applications.update``."""
    return await client.applications.update(cluster, name, canary=canary, **update)


# ---------------------------------------------------------------- canary step syntax


class StepsError(ValueError):
    """A canary step list that does not parse; the message names the token and why."""


_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_WEIGHT = re.compile(r"^(\d+)%$")


def parse_duration_ms(text: str) -> int:
    """``500ms``, ``30s``, ``2m``, ``1h`` -> milliseconds (> 0); ``ValueError`` otherwise."""
    m = _DURATION.match(text.strip().lower())
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a positive duration like 30s, 2m, 1h or 500ms")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_steps(text: str) -> list[resources_pb2.CanaryStep]:
    """``"10%,pause 30s,50%,pause,100%"`` -> canary steps.

    ``N%`` starts a step with N percent of traffic on the new revision (0..100, increasing);
    ``pause D`` after it holds the step for D (and analyses it) before the next one; a bare
    ``pause`` waits for a manual promote. Every step but the last needs a pause, so that
    "hold until promoted" is always written out; the last may omit it.
    """
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip():
        raise StepsError("steps: at least one step is required, e.g. '10%,pause 30s,100%'")
    steps: list[resources_pb2.CanaryStep] = []
    paused = True  # whether the latest step has its pause
    for i, tok in enumerate(tokens, 1):
        where = f"steps: token {i} {tok!r}"
        if not tok:
            raise StepsError(f"steps: token {i} is empty (a stray comma?)")
        words = tok.split()
        if words[0].lower() == "pause":
            if not steps:
                raise StepsError(f"{where}: a pause needs a weight step before it")
            if paused:
                raise StepsError(f"{where}: step {len(steps)} already has a pause")
            if len(words) > 2:
                raise StepsError(f"{where}: expected 'pause' or 'pause DURATION'")
            if len(words) == 2:
                try:
                    steps[-1].pause_ms = parse_duration_ms(words[1])
                except ValueError as exc:
                    raise StepsError(f"{where}: {exc}") from None
            paused = True
            continue
        m = _WEIGHT.match(tok)
        if m is None:
            raise StepsError(f"{where}: expected a weight like 10% or 'pause [DURATION]'")
        weight = int(m.group(1))
        if weight > 100:
            raise StepsError(f"{where}: weight must be 0..100 percent")
        if steps and not paused:
            raise StepsError(
                f"{where}: step {len(steps)} ({steps[-1].weight}%) needs a pause before the "
                "next weight: 'pause 30s', or 'pause' to wait for a manual promote")
        if steps and weight <= steps[-1].weight:
            raise StepsError(f"{where}: weights must increase (previous {steps[-1].weight}%)")
        steps.append(resources_pb2.CanaryStep(weight=weight))
        paused = False
    return steps
