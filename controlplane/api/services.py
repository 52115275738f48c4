"""ServiceService and ContainerService: reads, and scaling a service."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable

import grpc

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.cached_lists import bounded, list_page
from controlplane.api.common import MAX_REPLICAS, CacheReader, read_modify_write
from controlplane.api.container_exec import exec_stream
from controlplane.api.list_memo import list_answer
from controlplane.api.object_names import check_container_name, check_service_name
from controlplane.dispatcher.hub import AssignmentHub
from controlplane.dispatcher.logs_relay import AgentNotConnected, ClientTooSlow, LogBroker
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.informer import ClusterState, Informer
from controlplane.names import check_name
from controlplane.store import NotFound, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import touch
from controlplane.store.txn import Txn


@map_errors
class ServiceServicer(api_pb2_grpc.ServiceServiceServicer):
    def __init__(self, etcd: Etcd, informer: Informer | None = None) -> None:
        self.etcd = etcd
        self.cache = CacheReader(etcd, informer)

    async def GetService(
        self, request: api_pb2.GetServiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Service:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        name = check_service_name("name", request.name)
        state = await self.cache.state(cluster)
        if state is not False:
            self.cache.check_decodes(state, f"service '{app}/{name}'", keys.service(cluster, app, name))
            svc = state.services.get((app, name)) if state is not None else None
            if svc is None:
                raise NotFound("service", f"{app}/{name}")
            return svc
        return await reads.get(
            self.etcd, keys.service(cluster, app, name), pb.Service, "service", f"{app}/{name}"
        )

    async def ListServices(
        self, request: api_pb2.ListServicesRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListServicesResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application) if request.application else None
        return await list_answer(self.cache, request, lambda: list_page(
            self.cache, cluster, ("application", app) if app else ("cluster", cluster), keys.services(cluster, app),
            pb.Service,
            lambda state: bounded(((keys.service(cluster, a, n), svc) for (a, n), svc in state.services.items()
                                   if app is None or a == app), len(state.services)),
            page_size=request.page_size, page_token=request.page_token), lambda page: api_pb2.ListServicesResponse(
            services=page.items, next_page_token=page.next_page_token, revision=page.revision))

    async def ScaleService(
        self, request: api_pb2.ScaleServiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Service:
        return await read_modify_write(request.resource_version, lambda: self._ScaleService(request))

    async def _ScaleService(self, request: api_pb2.ScaleServiceRequest, seen: pb.Service | None = None) -> pb.Service:
        """``seen``: the service as a cache holds it, written back guarded on its revision (a
        stale copy fails with Conflict, and the caller's retry passes none: etcd is read)."""
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        name = check_service_name("name", request.name)
        if request.replicas > MAX_REPLICAS:
            raise InvalidArgument("replicas", f"{request.replicas} exceeds the limit of {MAX_REPLICAS}")
        key = keys.service(cluster, app, name)
        if seen is not None:
            svc = pb.Service()
            svc.CopyFrom(seen)  # the cache's own object is never changed
        else:
            svc = await reads.get(self.etcd, key, pb.Service, "service", f"{app}/{name}")
        if svc.spec.mode == pb.SERVICE_MODE_GLOBAL:
            raise FailedPrecondition(
                f"service {app}/{name} is global (one container per node); it cannot be scaled"
            )
        rv = request.resource_version or svc.meta.resource_version
        before = svc.spec.replicas
        svc.spec.replicas = request.replicas
        svc.status.desired = request.replicas
        touch(svc.meta)
        txn = Txn().update(key, svc, "service", f"{app}/{name}", rv)
        record_event(
            txn,
            cluster,
            "service",
            f"{app}/{name}",
            "Scaled",
            f"replicas {before} -> {request.replicas}",
        )
        svc.meta.resource_version = await txn.commit(self.etcd)
        return svc


@map_errors
class ContainerServicer(api_pb2_grpc.ContainerServiceServicer):
    def __init__(self, etcd: Etcd, informer: Informer, broker: LogBroker) -> None:
        self.etcd, self.informer, self.broker = etcd, informer, broker
        self.cache = CacheReader(etcd, informer)

    async def GetContainer(
        self, request: api_pb2.GetContainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Container:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        svc = check_service_name("service", request.service)
        check_container_name("name", request.name)
        state = await self.cache.state(cluster)
        if state is not False:
            self.cache.check_decodes(state, f"container {request.name!r}",
                                     keys.container(cluster, app, svc, request.name))
            found = state.containers.get((app, svc, request.name)) if state is not None else None
            if found is None:
                raise NotFound("container", request.name)
            return found
        return await reads.get(
            self.etcd,
            keys.container(cluster, app, svc, request.name),
            pb.Container,
            "container",
            request.name,
        )

    async def ListContainers(
        self, request: api_pb2.ListContainersRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListContainersResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application) if request.application else None
        svc = check_service_name("service", request.service) if request.service else None
        if svc and not app:
            raise InvalidArgument("service", "filtering by service needs application too")
        if request.offset < 0:
            raise InvalidArgument("offset", "must not be negative")
        if request.offset and request.page_token:
            raise InvalidArgument("offset", "not with page_token (the token goes on from where its page ended)")
        if request.node and (request.offset or request.with_total):
            raise InvalidArgument("node", "not with offset or with_total (they count keys; a container's node "
                                          "is in its record)")
        name = check_container_name("name", request.name) if request.name else ""
        if name and (request.offset or request.with_total):
            raise InvalidArgument("name", "not with offset or with_total (they count keys; the name is matched "
                                          "in each record)")
        node, prefix = request.node, keys.containers(cluster, app, svc)
        keep = ((lambda c: (not node or c.node == node) and (not name or c.meta.name == name))
                if node or name else None)
        return await list_answer(self.cache, request, lambda: list_page(
            self.cache, cluster, ("cluster", cluster), prefix, pb.Container,
            lambda state: _containers(state, cluster, app, svc),
            page_size=request.page_size, page_token=request.page_token, keep=keep,
            offset=request.offset, with_total=request.with_total), lambda page: api_pb2.ListContainersResponse(
            containers=page.items, next_page_token=page.next_page_token, revision=page.revision, total=page.total))

    async def Exec(
        self, request_iterator: AsyncIterator[api_pb2.ExecRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api_pb2.ExecResponse]:
        async for response in exec_stream(self.etcd, self.broker, request_iterator, context):
            yield response

    async def Logs(
        self, request: api_pb2.LogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api_pb2.LogsResponse]:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        svc = check_service_name("service", request.service)
        if not (math.isfinite(request.since) and request.since >= 0):
            raise InvalidArgument("since", f"{request.since} is not a time: Unix seconds, 0 or more")
        if request.container:
            check_container_name("container", request.container)
            one = await reads.get(
                self.etcd,
                keys.container(cluster, app, svc, request.container),
                pb.Container,
                "container",
                request.container,
            )
            targets = [one]
        else:
            await reads.get(self.etcd, keys.service(cluster, app, svc), pb.Service, "service", f"{app}/{svc}")
            state = self.informer.clusters.get(cluster)
            targets = [
                c for c in (state.containers_of(app, svc) if state else []) if c.node and c.status.docker_id
            ]
        placed = [c for c in targets if c.node]
        if not placed:
            raise FailedPrecondition(f"no container of {app}/{svc} has been placed on a node yet")
        queue: asyncio.Queue[api_pb2.LogsResponse | Exception | None] = asyncio.Queue(maxsize=256)
        tail = request.tail if request.tail > 0 else -1

        async def pump(c: pb.Container) -> None:
            try:
                async for data in self.broker.stream(
                    cluster, c.node, c.meta.id, follow=request.follow, tail=tail, since=request.since
                ):
                    await queue.put(api_pb2.LogsResponse(container=c.meta.name, data=data))
            except Exception as e:  # one container's failure ends the stream with its reason
                await queue.put(e)
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(c)) for c in placed]
        try:
            running = len(tasks)
            while running:
                item = await queue.get()
                if item is None:
                    running -= 1
                elif isinstance(item, Exception):
                    if isinstance(item, AgentNotConnected | ClientTooSlow):
                        raise FailedPrecondition(str(item)) from item
                    raise item
                else:
                    yield item
        finally:
            for t in tasks:
                t.cancel()


def _containers(state: ClusterState, cluster: str, app: str | None,
                svc: str | None) -> Iterable[tuple[str, pb.Container]] | None:
    """The cached containers under ``keys.containers(cluster, app, svc)`` with their keys (None
    past ``MAX_SCAN``): through the per-service index when the application is named."""
    if app is None:
        return bounded(((keys.container(cluster, *k), c) for k, c in state.containers.items()),
                       len(state.containers))
    sets = [ks for (a, s), ks in state.by_service.items() if a == app and (svc is None or s == svc)]
    return bounded(((keys.container(cluster, *k), state.containers[k]) for ks in sets for k in ks),
                   sum(len(ks) for ks in sets))


@map_errors
class RouteServicer(api_pb2_grpc.RouteServiceServicer):
    def __init__(self, etcd: Etcd, hub: AssignmentHub) -> None:
        self.etcd, self.hub = etcd, hub

    async def ListRoutes(
        self, request: api_pb2.ListRoutesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RoutingTable:
        """The table the routers are given, as of at least etcd's revision at this call.

        The hub keeps the table current from the watch cache, which may lag etcd (milliseconds;
        more on a loaded machine). A caller that saw a change elsewhere (the console's live
        stream watches etcd itself, then re-reads this list) must not be answered with the table
        from before it: with nothing changing afterwards, nothing would ever correct the page.
        So the read waits until the cache has applied etcd's revision read with the cluster's
        record (linearizable, also for writes through another API server); if the cache lags
        more than ``caught_up``'s bound, the hub's current table is the answer, as the routers
        have it."""
        cluster = check_name("cluster", request.cluster)
        _, revision = await reads.get_with_revision(self.etcd, keys.cluster(cluster), pb.Cluster, "cluster", cluster)
        await self.hub.informer.caught_up(revision)
        return self.hub.routing(cluster)
