"""ReleaseService and RouteService of the fake, and the release a fake update starts.

Reads and operator requests answer as the server does (names ``r000001``, the same checks and
messages, the request recorded in ``status.requests``). The planner is a toy: it acts on a
request at once, in a second commit, and nothing else moves a release. Tests move it with
``set_release`` (any status fields), which commits a new revision so watchers see the change.
The routing table is whatever a test stores with ``set_routes``.
"""

from __future__ import annotations

from typing import Any

import grpc

from ccs.models import TERMINAL_PHASES, phase_name
from ccs.testing.events import EventsFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["ReleasesFake", "release_name"]

R = resources_pb2
DEFAULT_CANARY_STEPS = (R.CanaryStep(weight=10, pause_ms=30_000), R.CanaryStep(weight=50, pause_ms=30_000),
                        R.CanaryStep(weight=100))
#: Which strategies each operator request applies to (``controlplane/api/releases.py``).
REQUESTS = {
    "shift": ("blue-green", "canary"), "confirm": ("blue-green",),
    "rollback": ("rolling", "blue-green", "canary"), "promote": ("rolling", "canary"), "abort": ("canary",),
}


def release_name(number: int) -> str:
    return f"r{number:06d}"


class ReleasesFake(EventsFake):
    # ------------------------------------------------------------ helpers for tests and updates

    def _releases(self, cluster: str, app: str) -> list[resources_pb2.Release]:
        return sorted(self._items("release", cluster, app), key=lambda r: r.number)

    def _put_release(self, rel: resources_pb2.Release, line: str) -> resources_pb2.Release:
        rel.status.history.append(line)
        rel.status.phase_since.GetCurrentTime()
        if rel.status.phase in TERMINAL_PHASES:
            rel.status.finished_at.GetCurrentTime()
        self.commit([(("release", rel.cluster, rel.application, rel.meta.name), rel)])
        return rel

    def start_release(
        self, app: resources_pb2.Application, request: Any, services: list[str], is_rollback: bool = False
    ) -> resources_pb2.Release:
        """A new release from ``app.revision - 1`` to ``app.revision`` of the changed
        ``services``; an unfinished older one is superseded. ``request`` is the
        Update/RollbackApplicationRequest."""
        strategy = request.strategy or "rolling"
        number = max((r.number for r in self._releases(app.cluster, app.meta.name)), default=0) + 1
        name = release_name(number)
        for old in self._releases(app.cluster, app.meta.name):
            if old.status.phase not in TERMINAL_PHASES:
                older = R.Release()
                older.CopyFrom(old)
                older.status.phase = R.RELEASE_PHASE_SUPERSEDED
                older.status.message = f"superseded by {name}"
                self._put_release(older, f"superseded by {name}")
        spec = R.ReleaseSpec(strategy=strategy, from_revision=app.revision - 1, to_revision=app.revision,
                             is_rollback=is_rollback, services=services)
        if strategy == "canary" and not is_rollback:
            spec.canary_replicas = request.canary_replicas or 1
            spec.steps.extend(request.canary_steps or DEFAULT_CANARY_STEPS)
            spec.analysis.CopyFrom(request.canary_analysis if request.HasField("canary_analysis")
                                   else R.CanaryAnalysis(max_5xx_ratio=0.05, min_requests=20))
            spec.match_header, spec.match_cookie = request.match_header, request.match_cookie
            spec.match_value = request.match_value
        total = sum(s.spec.replicas for s in self._items("service", app.cluster, app.meta.name)
                    if s.meta.name in services)
        status = R.ReleaseStatus(phase=R.RELEASE_PHASE_PROGRESSING, total=total, slots=total)
        if strategy == "blue-green":  # the toy planner: the new revision is ready at once
            status.phase, status.updated = R.RELEASE_PHASE_AWAITING_SHIFT, total
        elif strategy == "canary":
            status.weight = 0 if spec.match_value else spec.steps[0].weight
            status.total = spec.canary_replicas
        rel = R.Release(meta=R.Meta(name=name), cluster=app.cluster, application=app.meta.name,
                        number=number, spec=spec, status=status)
        return self._put_release(
            rel, f"{strategy} release of revision {app.revision} ({', '.join(services)}) started")

    def set_release(self, cluster: str, app: str, name: str = "", **status: Any) -> int:
        """Move a release (the latest when ``name`` is empty): set status fields, e.g.
        ``phase=RELEASE_PHASE_SUCCEEDED, updated=2``; returns the new revision."""
        rels = [r for r in self._releases(cluster, app) if not name or r.meta.name == name]
        rel = R.Release()
        rel.CopyFrom(rels[-1])
        for key, value in status.items():
            setattr(rel.status, key, value)
        self._put_release(rel, ", ".join(f"{k}={v}" for k, v in status.items()))
        return int(rel.meta.resource_version)

    def set_routes(self, cluster: str, table: resources_pb2.RoutingTable) -> None:
        self.routes[cluster] = table

    async def _latest(self, ctx: Ctx, cluster: str, app: str, name: str = "") -> resources_pb2.Release:
        await self._cluster(ctx, cluster)
        await self._name(ctx, "application", app)
        await self._get(ctx, ("application", cluster, app), "application", app)
        if name and (not name.startswith("r") or not name[1:].isdigit()):
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"name: {name!r} is not a release name like r000003")
        rels = [r for r in self._releases(cluster, app) if not name or r.meta.name == release_name(int(name[1:]))]
        if not rels:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"release {name!r} not found" if name else
                       f"release '{app} (the application has had no release yet)' not found")
        rel = R.Release()
        rel.CopyFrom(rels[-1])
        return rel

    async def _request(self, ctx: Ctx, request: Any, what: str) -> resources_pb2.Release:
        """Record an operator request on the latest release, as the server does; then the toy
        planner acts on it (a second commit)."""
        rel = await self._latest(ctx, request.cluster, request.application)
        verb = what.split(":")[0]
        if rel.status.phase in TERMINAL_PHASES:
            await fail(ctx, grpc.StatusCode.FAILED_PRECONDITION,
                       f"release {rel.meta.name} of {request.application} is {phase_name(rel.status.phase)}; "
                       f"nothing to {verb}")
        strategies = REQUESTS[verb]
        if rel.spec.strategy not in strategies:
            await fail(ctx, grpc.StatusCode.FAILED_PRECONDITION,
                       f"{verb} applies to {' and '.join(strategies)} releases; "
                       f"{rel.meta.name} is {rel.spec.strategy}")
        rel.status.requests.append(what)
        self.commit([(("release", rel.cluster, rel.application, rel.meta.name), rel)])
        answer = R.Release()
        answer.CopyFrom(rel)
        self._act(rel, what)
        return answer

    def _act(self, rel: resources_pb2.Release, what: str) -> None:
        """The toy planner: the request's effect, at once."""
        st = rel.status
        del st.requests[:]
        verb, _, arg = what.partition(":")
        if verb == "shift":
            st.weight = int(arg)
            line = f"traffic shifted to {arg}%"
        elif verb == "confirm":
            st.weight, st.phase, st.message = 100, R.RELEASE_PHASE_SUCCEEDED, "confirmed"
            line = "confirmed"
        elif verb in ("rollback", "abort"):
            st.weight, st.phase = 0, R.RELEASE_PHASE_ROLLED_BACK
            st.message = line = f"{'aborted' if verb == 'abort' else 'rolled back'} by request"
        elif rel.spec.strategy == "rolling":  # promote: resume after a pause
            st.phase, line = R.RELEASE_PHASE_PROGRESSING, "resumed"
        else:  # promote a canary: the next step, or done
            st.step += 1
            if st.step >= len(rel.spec.steps):
                st.phase, st.weight, st.message = R.RELEASE_PHASE_SUCCEEDED, 100, "promoted"
            else:
                st.phase, st.weight = R.RELEASE_PHASE_PROGRESSING, rel.spec.steps[st.step].weight
            line = f"promoted to step {st.step}"
        self._put_release(rel, line)

    # ------------------------------------------------------------ ReleaseService

    async def ListReleases(self, request: Any, context: Ctx) -> api_pb2.ListReleasesResponse:
        await self._cluster(context, request.cluster)
        await self._get(context, ("application", request.cluster, request.application),
                        "application", request.application)
        return api_pb2.ListReleasesResponse(releases=self._releases(request.cluster, request.application))

    async def GetRelease(self, request: Any, context: Ctx) -> resources_pb2.Release:
        return await self._latest(context, request.cluster, request.application, request.name)

    async def ShiftTraffic(self, request: Any, context: Ctx) -> resources_pb2.Release:
        await self._auth(context)
        if request.weight > 100:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"weight: {request.weight} is not a percentage (0-100)")
        return await self._request(context, request, f"shift:{request.weight}")

    async def ConfirmRelease(self, request: Any, context: Ctx) -> resources_pb2.Release:
        return await self._request(context, request, "confirm")

    async def RollbackRelease(self, request: Any, context: Ctx) -> resources_pb2.Release:
        return await self._request(context, request, "rollback")

    async def PromoteRelease(self, request: Any, context: Ctx) -> resources_pb2.Release:
        return await self._request(context, request, "promote")

    async def AbortRelease(self, request: Any, context: Ctx) -> resources_pb2.Release:
        return await self._request(context, request, "abort")

    # ------------------------------------------------------------ RouteService

    async def ListRoutes(self, request: Any, context: Ctx) -> resources_pb2.RoutingTable:
        await self._cluster(context, request.cluster)
        return self.routes.get(request.cluster, R.RoutingTable(cluster=request.cluster))
