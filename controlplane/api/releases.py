"""ReleaseService: read releases; operator requests (shift, confirm, rollback, promote, abort).

The API never moves a release itself: it appends the request to ``status.requests`` in a
guarded write, and the release reconciler (the only writer of phases) acts on it at its
next pass. So a request made during a control-plane restart or a leader change is never
lost, and two operators cannot interleave half-applied transitions.
"""

from __future__ import annotations

import re

import grpc

from ccs.models import phase_name
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.common import read_modify_write
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.informer import Informer
from controlplane.names import check_name, shown
from controlplane.release import TERMINAL
from controlplane.store import NotFound, keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.txn import Txn

RELEASE_NAME = re.compile(r"r[0-9]{1,18}")


@map_errors
class ReleaseServicer(api_pb2_grpc.ReleaseServiceServicer):
    def __init__(self, etcd: Etcd, informer: Informer) -> None:
        self.etcd, self.informer = etcd, informer

    async def _latest(self, cluster: str, app: str, name: str = "") -> pb.Release:
        await reads.get(self.etcd, keys.app(cluster, app), pb.Application, "application", app)
        if name:
            # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
            if not RELEASE_NAME.fullmatch(name):
                raise InvalidArgument("name", f"{shown(name)} is not a release name like r000003")
            return await reads.get(self.etcd, keys.release(cluster, app, int(name[1:])), pb.Release,
                                   "release", name)
        res = await self.etcd.range(keys.releases(cluster, app))
        if not res.kvs:
            raise NotFound("release", f"{app} (the application has had no release yet)")
        return decode(res.kvs[-1], pb.Release)

    async def ListReleases(
        self, request: api_pb2.ListReleasesRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListReleasesResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        await reads.get(self.etcd, keys.app(cluster, app), pb.Application, "application", app)
        releases, _ = await reads.list_all(self.etcd, keys.releases(cluster, app), pb.Release)
        return api_pb2.ListReleasesResponse(releases=releases)

    async def GetRelease(self, request: api_pb2.GetReleaseRequest, context: grpc.aio.ServicerContext) -> pb.Release:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        return await self._latest(cluster, app, request.name)

    async def _request(self, cluster: str, app: str, what: str, strategies: tuple[str, ...]) -> pb.Release:
        cluster = check_name("cluster", cluster)
        app = check_name("application", app)

        async def attempt() -> pb.Release:
            release = await self._latest(cluster, app)
            if release.status.phase in TERMINAL:
                raise FailedPrecondition(
                    f"release {release.meta.name} of {app} is {phase_name(release.status.phase)}; nothing to "
                    f"{what.split(':')[0]}"
                )
            if release.spec.strategy not in strategies:
                raise FailedPrecondition(
                    f"{what.split(':')[0]} applies to {' and '.join(strategies)} releases; "
                    f"{release.meta.name} is {release.spec.strategy}"
                )
            release.status.requests.append(what)
            txn = Txn().update(keys.release(cluster, app, release.number), release, "release",
                               release.meta.name, release.meta.resource_version)
            record_event(txn, cluster, "release", f"{app}/{release.meta.name}", "Requested", what)
            release.meta.resource_version = await txn.commit(self.etcd)
            return release

        return await read_modify_write(0, attempt)

    async def ShiftTraffic(self, request: api_pb2.ShiftTrafficRequest, context: grpc.aio.ServicerContext) -> pb.Release:
        if request.weight > 100:
            raise InvalidArgument("weight", f"{request.weight} is not a percentage (0-100)")
        return await self._request(request.cluster, request.application, f"shift:{request.weight}",
                                   ("blue-green", "canary"))

    async def ConfirmRelease(
        self, request: api_pb2.ReleaseActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Release:
        return await self._request(request.cluster, request.application, "confirm", ("blue-green",))

    async def RollbackRelease(
        self, request: api_pb2.ReleaseActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Release:
        return await self._request(request.cluster, request.application, "rollback",
                                   ("rolling", "blue-green", "canary"))

    async def PromoteRelease(
        self, request: api_pb2.ReleaseActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Release:
        return await self._request(request.cluster, request.application, "promote", ("rolling", "canary"))

    async def AbortRelease(
        self, request: api_pb2.ReleaseActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Release:
        return await self._request(request.cluster, request.application, "abort", ("canary",))
