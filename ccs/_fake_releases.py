"""Releases, routes and revisions for the in-memory fake (``ccs.testing``); a mixin of
``FakeApi`` kept apart so that neither module grows past a readable size.

The release state machine is a toy, good enough for SDK and CLI tests, not the control
plane's: operator verbs take effect at once (the real planner acts on them later), and
nothing else moves a release. Tests move it with ``set_release`` (any status fields), which
commits a new revision so watchers see the change. The routing table is whatever a test
stores with ``set_routes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

import grpc
from google.protobuf.message import Message

from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["ReleasesFake"]

Ctx: TypeAlias = Any
R = resources_pb2
_TERMINAL = TERMINAL_PHASES
_STRATEGIES = ("rolling", "blue-green", "canary")


class _Host(Protocol):
    """What the mixin uses of ``FakeApi``."""

    objects: dict[tuple[str, ...], Message]
    revisions: dict[tuple[str, str], list[resources_pb2.ApplicationRevision]]
    routes: dict[str, resources_pb2.RoutingTable]

    def commit(self, puts: Sequence[tuple[tuple[str, ...], Message]] = (),
               deletes: Sequence[tuple[str, ...]] = ()) -> int: ...

    def _items(self, kind: str, *prefix: str) -> list[Any]: ...

    async def _cluster(self, ctx: Ctx, name: str) -> resources_pb2.Cluster: ...

    async def _get(self, ctx: Ctx, key: tuple[str, ...], what: str) -> Any: ...

    def _releases(self, cluster: str, app: str) -> list[resources_pb2.Release]: ...

    async def _active(self, ctx: Ctx, request: Any) -> resources_pb2.Release: ...

    def _put_release(self, rel: resources_pb2.Release, line: str) -> resources_pb2.Release: ...

    def snapshot_revision(self, app: resources_pb2.Application, note: str) -> None: ...

    def start_release(self, app: resources_pb2.Application, request: Any,
                      is_rollback: bool = False) -> resources_pb2.Release: ...


async def _need(ctx: Ctx, rel: resources_pb2.Release, verb: str, *strategies: str) -> None:
    if rel.spec.strategy not in strategies:
        await ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                        f"release {rel.meta.name} is {rel.spec.strategy}: {verb} needs "
                        f"{' or '.join(strategies)}")


class ReleasesFake:
    """ReleaseService, RouteService and ApplicationService.RollbackApplication/ListRevisions."""

    # ------------------------------------------------------------ helpers for tests and hooks

    def snapshot_revision(self: _Host, app: resources_pb2.Application, note: str) -> None:
        """Remember the application's spec at its revision (called on create and update)."""
        rev = R.ApplicationRevision(
            meta=R.Meta(name=str(app.revision)), revision=app.revision, spec=app.spec, note=note)
        rev.meta.created_at.GetCurrentTime()
        self.revisions.setdefault((app.cluster, app.meta.name), []).append(rev)

    def _releases(self: _Host, cluster: str, app: str) -> list[resources_pb2.Release]:
        return sorted(self._items("release", cluster, app), key=lambda r: r.number)

    def _put_release(self: _Host, rel: resources_pb2.Release, line: str) -> resources_pb2.Release:
        rel.status.history.append(line)
        rel.status.phase_since.GetCurrentTime()
        if rel.status.phase in _TERMINAL:
            rel.status.finished_at.GetCurrentTime()
        self.commit([(("release", rel.cluster, rel.application, rel.meta.name), rel)])
        return rel

    def start_release(
        self: _Host, app: resources_pb2.Application, request: Any, is_rollback: bool = False
    ) -> resources_pb2.Release:
        """A new release from ``app.revision - 1`` to ``app.revision``; an unfinished older
        one is superseded. ``request`` is the Update/RollbackApplicationRequest."""
        strategy = request.strategy or "rolling"
        services = self._items("service", app.cluster, app.meta.name)
        total = sum(s.spec.replicas for s in services)
        for old in self._releases(app.cluster, app.meta.name):
            if old.status.phase not in _TERMINAL:
                older = R.Release()
                older.CopyFrom(old)
                older.status.phase = R.RELEASE_PHASE_SUPERSEDED
                older.status.message = f"superseded by revision {app.revision}"
                self._put_release(older, "superseded")
        number = max((r.number for r in self._releases(app.cluster, app.meta.name)), default=0) + 1
        spec = R.ReleaseSpec(
            strategy=strategy, from_revision=app.revision - 1, to_revision=app.revision,
            is_rollback=is_rollback, services=[s.meta.name for s in services])
        if strategy == "canary" and not is_rollback:
            spec.canary_replicas = request.canary_replicas
            spec.steps.extend(request.canary_steps or [R.CanaryStep(weight=100)])
            spec.analysis.CopyFrom(request.canary_analysis)
            spec.match_header, spec.match_cookie = request.match_header, request.match_cookie
            spec.match_value = request.match_value
        status = R.ReleaseStatus(phase=R.RELEASE_PHASE_PROGRESSING, total=total, slots=total)
        if strategy == "blue-green":
            status.phase, status.updated = R.RELEASE_PHASE_AWAITING_SHIFT, total
        elif strategy == "canary":
            first = spec.steps[0] if spec.steps else R.CanaryStep(weight=100)
            status.weight = 0 if spec.match_value else first.weight
            status.total = spec.canary_replicas or 1
        rel = R.Release(meta=R.Meta(name=f"r{number}"), cluster=app.cluster,
                        application=app.meta.name, number=number, spec=spec, status=status)
        return self._put_release(rel, f"{strategy} release of revision {app.revision} started")

    def set_release(self: _Host, cluster: str, app: str, name: str = "", **status: Any) -> int:
        """Move a release (the latest when ``name`` is empty): set status fields, e.g.
        ``phase=RELEASE_PHASE_SUCCEEDED, updated=2``; returns the new revision."""
        rels = [r for r in self._releases(cluster, app) if not name or r.meta.name == name]
        rel = R.Release()
        rel.CopyFrom(rels[-1])
        for key, value in status.items():
            setattr(rel.status, key, value)
        self._put_release(rel, ", ".join(f"{k}={v}" for k, v in status.items()))
        return int(rel.meta.resource_version)

    def set_routes(self: _Host, cluster: str, table: resources_pb2.RoutingTable) -> None:
        self.routes[cluster] = table

    async def _active(self: _Host, ctx: Ctx, request: Any) -> resources_pb2.Release:
        await self._cluster(ctx, request.cluster)
        await self._get(ctx, ("application", request.cluster, request.application),
                        f"application {request.application!r}")
        rels = self._releases(request.cluster, request.application)
        if not rels or rels[-1].status.phase in _TERMINAL:
            await ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"application {request.application!r} has no release in progress")
        rel = R.Release()
        rel.CopyFrom(rels[-1])
        return rel

    # ------------------------------------------------------------ ReleaseService

    async def ListReleases(self: _Host, request: Any, context: Ctx) -> api_pb2.ListReleasesResponse:
        await self._cluster(context, request.cluster)
        await self._get(context, ("application", request.cluster, request.application),
                        f"application {request.application!r}")
        return api_pb2.ListReleasesResponse(
            releases=self._releases(request.cluster, request.application))

    async def GetRelease(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        await self._cluster(context, request.cluster)
        rels = [r for r in self._releases(request.cluster, request.application)
                if not request.name or r.meta.name == request.name]
        if not rels:
            what = f"release {request.name!r}" if request.name else "releases"
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"application {request.application!r} has no {what}")
        return rels[-1]

    async def ShiftTraffic(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        if request.weight > 100:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"weight: must be 0..100, got {request.weight}")
        rel = await self._active(context, request)
        await _need(context, rel, "shift", "blue-green", "canary")
        rel.status.weight = request.weight
        return self._put_release(rel, f"traffic shifted to {request.weight}%")

    async def ConfirmRelease(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        rel = await self._active(context, request)
        await _need(context, rel, "confirm", "blue-green")
        rel.status.weight, rel.status.phase = 100, R.RELEASE_PHASE_SUCCEEDED
        rel.status.message = "confirmed: all traffic on the new revision"
        return self._put_release(rel, "confirmed")

    async def RollbackRelease(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        rel = await self._active(context, request)
        rel.status.weight, rel.status.phase = 0, R.RELEASE_PHASE_ROLLED_BACK
        rel.status.message = "rolled back by request"
        return self._put_release(rel, "rolled back by request")

    async def PromoteRelease(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        rel = await self._active(context, request)
        st = rel.status
        if rel.spec.strategy == "rolling" and st.phase == R.RELEASE_PHASE_PAUSED:
            st.phase = R.RELEASE_PHASE_PROGRESSING
            return self._put_release(rel, "resumed")
        await _need(context, rel, "promote", "canary")
        st.step += 1
        if st.step >= len(rel.spec.steps):
            st.phase, st.weight, st.message = R.RELEASE_PHASE_SUCCEEDED, 100, "promoted"
        else:
            st.phase, st.weight = R.RELEASE_PHASE_PROGRESSING, rel.spec.steps[st.step].weight
        return self._put_release(rel, f"promoted to step {st.step}")

    async def AbortRelease(self: _Host, request: Any, context: Ctx) -> resources_pb2.Release:
        rel = await self._active(context, request)
        await _need(context, rel, "abort", "canary")
        rel.status.weight, rel.status.phase = 0, R.RELEASE_PHASE_ROLLED_BACK
        rel.status.message = "aborted by request"
        return self._put_release(rel, "aborted")

    # ------------------------------------------------------------ RouteService

    async def ListRoutes(self: _Host, request: Any, context: Ctx) -> resources_pb2.RoutingTable:
        await self._cluster(context, request.cluster)
        return self.routes.get(request.cluster, R.RoutingTable(cluster=request.cluster))

    # ------------------------------------------------------------ application revisions

    async def ListRevisions(self: _Host, request: Any, context: Ctx) -> api_pb2.ListRevisionsResponse:
        await self._cluster(context, request.cluster)
        await self._get(context, ("application", request.cluster, request.name),
                        f"application {request.name!r}")
        return api_pb2.ListRevisionsResponse(
            revisions=self.revisions.get((request.cluster, request.name), []))

    async def RollbackApplication(
        self: _Host, request: Any, context: Ctx
    ) -> resources_pb2.Application:
        await self._cluster(context, request.cluster)
        key = ("application", request.cluster, request.name)
        app = R.Application()
        app.CopyFrom(await self._get(context, key, f"application {request.name!r}"))
        if request.strategy and request.strategy not in _STRATEGIES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"strategy: {request.strategy!r} is not one of {', '.join(_STRATEGIES)}")
        target = request.to_revision or app.revision - 1
        if not 1 <= target < app.revision:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"to_revision: must be an earlier revision (1..{app.revision - 1}), got {target}")
        snaps = [r for r in self.revisions.get((request.cluster, request.name), [])
                 if r.revision == target]
        if not snaps:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"revision {target} is not stored")
        app.spec.CopyFrom(snaps[0].spec)
        app.revision += 1
        self.commit([(key, app)])
        self.snapshot_revision(app, f"rollback to revision {target}")
        self.start_release(app, request, is_rollback=True)
        return app
