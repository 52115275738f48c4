"""The in-memory servicer behind ``ccs.testing`` (see its docstring); private so that the
public testing surface stays small."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias

import grpc
import grpc.aio
import yaml
from google.protobuf.message import Message

from ccs._fake_releases import ReleasesFake
from ccs.v1 import api_pb2, api_pb2_grpc, resources_pb2

__all__ = ["FakeApi"]

Ctx: TypeAlias = Any  # grpc.aio.ServicerContext; grpc ships no type information
_KINDS = {
    resources_pb2.Cluster: "cluster",
    resources_pb2.Node: "node",
    resources_pb2.Application: "application",
    resources_pb2.Service: "service",
    resources_pb2.Container: "container",
    resources_pb2.Event: "event",
    resources_pb2.Release: "release",  # WatchEvent has no field for it: sent without object
}
_EVENT_FIELDS = frozenset(f.name for f in api_pb2.WatchEvent.DESCRIPTOR.fields)


class FakeApi(
    ReleasesFake,  # first: its methods override the servicers' UNIMPLEMENTED stubs
    api_pb2_grpc.ClusterServiceServicer,
    api_pb2_grpc.NodeServiceServicer,
    api_pb2_grpc.ApplicationServiceServicer,
    api_pb2_grpc.ServiceServiceServicer,
    api_pb2_grpc.ContainerServiceServicer,
    api_pb2_grpc.EventServiceServicer,
    api_pb2_grpc.ReleaseServiceServicer,
    api_pb2_grpc.RouteServiceServicer,
):
    """Every ccs API service over dicts keyed by the resource's path."""

    def __init__(self, token: str | None = "test-token", page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size
        self.revision = 1
        self.objects: dict[tuple[str, ...], Message] = {}  # (kind, cluster, ...names)
        self.history: list[api_pb2.WatchEvent] = []
        self.compacted = 0  # revisions <= this are gone from history
        self.watch_faults: list[int] = []
        self.watch_fault_code = grpc.StatusCode.UNAVAILABLE
        self.watch_requests: list[api_pb2.WatchRequest] = []
        self.watch_kinds: frozenset[str] | None = None  # set: other kinds are INVALID_ARGUMENT
        self.history_clusters: list[str] = []  # the cluster of each history entry
        self.revisions: dict[tuple[str, str], list[resources_pb2.ApplicationRevision]] = {}
        self.routes: dict[str, resources_pb2.RoutingTable] = {}
        # Called as hook(api, cluster, app) after an application create/update is written: a
        # test's stand-in for the reconciler and agents (e.g. to seed containers).
        self.reconcile_hook: Callable[[FakeApi, str, str], None] | None = None
        self._changed: asyncio.Event | None = None

    # ------------------------------------------------------------ state helpers

    def commit(
        self, puts: Sequence[tuple[tuple[str, ...], Message]] = (),
        deletes: Sequence[tuple[str, ...]] = (),
    ) -> int:
        """Apply puts and deletes at one new revision, as one etcd transaction would."""
        self.revision += 1
        for key, obj in puts:
            meta = obj.meta  # type: ignore[attr-defined]
            if not meta.id:
                meta.id = uuid.uuid4().hex[:12]
                meta.created_at.GetCurrentTime()
            meta.updated_at.GetCurrentTime()
            meta.resource_version = self.revision
            self.objects[key] = obj
            self._record(api_pb2.WatchEvent.TYPE_PUT, obj)
        for key in deletes:
            self._record(api_pb2.WatchEvent.TYPE_DELETE, self.objects.pop(key))
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return self.revision

    def _record(self, type_: int, obj: Message) -> None:
        kind = _KINDS[type(obj)]
        ev = api_pb2.WatchEvent(revision=self.revision, type=type_, kind=kind)  # type: ignore[arg-type]
        if kind in _EVENT_FIELDS:
            getattr(ev, kind).CopyFrom(obj)
        self.history.append(ev)
        self.history_clusters.append(_cluster_of(obj))

    def add_node(self, cluster: str, name: str, **status: Any) -> resources_pb2.Node:
        """Seed a ready, active worker node (nodes join through agents, not the API)."""
        node = resources_pb2.Node(
            meta=resources_pb2.Meta(name=name), cluster=cluster,
            spec=resources_pb2.NodeSpec(
                role=resources_pb2.NODE_ROLE_WORKER,
                availability=resources_pb2.NODE_AVAILABILITY_ACTIVE,
            ),
            status=resources_pb2.NodeStatus(state=resources_pb2.NODE_STATE_READY, **status),
        )
        self.commit([(("node", cluster, name), node)])
        return node

    def add_container(
        self, cluster: str, app: str, service: str, slot: int, node: str = "",
        state: int = resources_pb2.CONTAINER_STATE_RUNNING, *, generation: int = 1,
        message: str = "", exit_code: int = 0, labels: dict[str, str] | None = None,
        desired: int = resources_pb2.DESIRED_STATE_RUNNING, reason: int = 0,
    ) -> resources_pb2.Container:
        """Seed or replace a container (the control plane and agents write them, not the API);
        one per (service, generation, slot). `reason` is the FailureReason of a FAILED one."""
        name = f"{app}-{service}-{slot}" + (f"-g{generation}" if generation > 1 else "")
        c = resources_pb2.Container(
            meta=resources_pb2.Meta(name=name, labels=labels), cluster=cluster, application=app,
            service=service, node=node, slot=slot, spec_generation=generation,
            desired_state=desired,  # type: ignore[arg-type]
            status=resources_pb2.ContainerStatus(
                state=state, message=message, exit_code=exit_code,  # type: ignore[arg-type]
                failure_reason=reason),  # type: ignore[arg-type]
        )
        self.commit([(("container", cluster, app, service, name), c)])
        return c

    def set_service_status(
        self, cluster: str, app: str, service: str, running: int, healthy: int, message: str = "",
        desired: int | None = None,
    ) -> resources_pb2.Service:
        """Write a service's status as the reconciler would (``desired`` defaults to the spec's)."""
        svc = resources_pb2.Service()
        old = self.objects[("service", cluster, app, service)]
        assert isinstance(old, resources_pb2.Service)
        svc.CopyFrom(old)
        want = svc.spec.replicas if desired is None else desired
        svc.status.CopyFrom(resources_pb2.ServiceStatus(
            desired=want, running=running, healthy=healthy,
            message=message or f"{running}/{want} running"))
        self.commit([(("service", cluster, app, service), svc)])
        return svc

    def add_event(self, cluster: str, obj_kind: str, obj: str, reason: str, msg: str) -> int:
        name = f"{obj}.{self.revision + 1}"
        ev = resources_pb2.Event(
            meta=resources_pb2.Meta(name=name), cluster=cluster, kind=obj_kind, object=obj,
            type="Normal", reason=reason, message=msg,
        )
        return self.commit([(("event", cluster, name), ev)])

    def _items(self, kind: str, *prefix: str) -> list[Any]:
        n = len(prefix)
        return [o for k, o in sorted(self.objects.items()) if k[0] == kind and k[1 : 1 + n] == prefix]

    async def _get(self, ctx: Ctx, key: tuple[str, ...], what: str) -> Any:
        if key not in self.objects:
            await ctx.abort(grpc.StatusCode.NOT_FOUND, f"{what} not found")
        return self.objects[key]

    async def _page(self, ctx: Ctx, items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
        await self._auth(ctx)
        start = int(token or 0)
        end = start + (size or self.page_size)
        return items[start:end], (str(end) if end < len(items) else "")

    async def _auth(self, ctx: Ctx) -> None:
        if self.token is None:
            return
        md = dict(ctx.invocation_metadata() or ())
        if md.get("authorization") != f"Bearer {self.token}":
            await ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

    async def _cluster(self, ctx: Ctx, name: str) -> resources_pb2.Cluster:
        await self._auth(ctx)
        obj: resources_pb2.Cluster = await self._get(ctx, ("cluster", name), f"cluster {name!r}")
        return obj

    # ------------------------------------------------------------ clusters and nodes

    async def CreateCluster(self, request: Any, context: Ctx) -> resources_pb2.Cluster:
        await self._auth(context)
        if not request.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name: must not be empty")
        if ("cluster", request.name) in self.objects:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"cluster {request.name!r} exists")
        c = resources_pb2.Cluster(
            meta=resources_pb2.Meta(name=request.name, labels=request.labels),
            description=request.description, pod_cidr=request.pod_cidr or "10.128.0.0/12",
        )
        self.commit([(("cluster", request.name), c)])
        return c

    async def GetCluster(self, request: Any, context: Ctx) -> resources_pb2.Cluster:
        return await self._cluster(context, request.name)

    async def ListClusters(self, request: Any, context: Ctx) -> api_pb2.ListClustersResponse:
        items, nxt = await self._page(context, self._items("cluster"), request.page_size, request.page_token)
        return api_pb2.ListClustersResponse(clusters=items, next_page_token=nxt, revision=self.revision)

    async def DeleteCluster(self, request: Any, context: Ctx) -> api_pb2.DeleteClusterResponse:
        await self._cluster(context, request.name)
        children = [k for k in self.objects if k[0] != "cluster" and k[1] == request.name]
        if any(k[0] != "event" for k in children) and not request.force:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"cluster {request.name!r} is not empty: remove its applications or use force",
            )
        self.commit(deletes=[*children, ("cluster", request.name)])
        return api_pb2.DeleteClusterResponse()

    async def GetJoinToken(self, request: Any, context: Ctx) -> api_pb2.GetJoinTokenResponse:
        await self._cluster(context, request.cluster)
        return api_pb2.GetJoinTokenResponse(token=f"join-{request.cluster}-{int(request.rotate)}")

    async def GetNode(self, request: Any, context: Ctx) -> resources_pb2.Node:
        await self._cluster(context, request.cluster)
        node: resources_pb2.Node = await self._get(
            context, ("node", request.cluster, request.name), f"node {request.name!r}")
        return node

    async def ListNodes(self, request: Any, context: Ctx) -> api_pb2.ListNodesResponse:
        items, nxt = await self._page(
            context, self._items("node", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListNodesResponse(nodes=items, next_page_token=nxt, revision=self.revision)

    async def UpdateNode(self, request: Any, context: Ctx) -> resources_pb2.Node:
        node = resources_pb2.Node()
        node.CopyFrom(await self.GetNode(request, context))
        if request.resource_version and request.resource_version != node.meta.resource_version:
            await context.abort(grpc.StatusCode.ABORTED, "node changed: stale resource_version")
        if request.availability:
            node.spec.availability = request.availability
        if request.role:
            node.spec.role = request.role
        for k, v in request.labels.items():
            if v:
                node.meta.labels[k] = v
            else:
                node.meta.labels.pop(k, None)
        self.commit([(("node", request.cluster, request.name), node)])
        return node

    async def DeleteNode(self, request: Any, context: Ctx) -> api_pb2.DeleteNodeResponse:
        await self.GetNode(request, context)
        self.commit(deletes=[("node", request.cluster, request.name)])
        return api_pb2.DeleteNodeResponse()

    # ------------------------------------------------------------ applications

    async def _parse(self, context: Ctx, template: str) -> dict[str, int]:
        """``{service: replicas}``, or INVALID_ARGUMENT naming the field path."""
        try:
            doc = yaml.safe_load(template)
        except yaml.YAMLError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"template: not YAML: {exc}")
        services = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(services, dict) or not services:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "services: at least one required")
            raise AssertionError("unreachable: abort raises")
        out: dict[str, int] = {}
        for name, svc in services.items():
            if not isinstance(svc, dict) or not isinstance(svc.get("image"), str):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"services.{name}.image: required string")
            replicas = (svc.get("deploy") or {}).get("replicas", 1)
            if not isinstance(replicas, int) or replicas < 0:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"services.{name}.deploy.replicas: must be a non-negative integer")
            out[name] = replicas
        return out

    def _service_puts(
        self, app: resources_pb2.Application, replicas: dict[str, int], template: str
    ) -> list[tuple[tuple[str, ...], Message]]:
        images = {n: s["image"] for n, s in yaml.safe_load(template)["services"].items()}
        puts: list[tuple[tuple[str, ...], Message]] = []
        for name, count in replicas.items():
            svc = resources_pb2.Service(
                meta=resources_pb2.Meta(name=name), cluster=app.cluster,
                application=app.meta.name, generation=1, app_revision=app.revision,
                spec=resources_pb2.ServiceSpec(image=images[name], replicas=count),
                status=resources_pb2.ServiceStatus(desired=count),
            )
            puts.append((("service", app.cluster, app.meta.name, name), svc))
        return puts

    async def CreateApplication(self, request: Any, context: Ctx) -> resources_pb2.Application:
        await self._cluster(context, request.cluster)
        key = ("application", request.cluster, request.name)
        if key in self.objects:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"application {request.name!r} exists")
        replicas = await self._parse(context, request.template)
        app = resources_pb2.Application(
            meta=resources_pb2.Meta(name=request.name, labels=request.labels),
            cluster=request.cluster, revision=1,
            spec=resources_pb2.ApplicationSpec(
                template=request.template, env=request.env, files=request.files,
                version=request.version, desired_state=resources_pb2.DESIRED_STATE_RUNNING),
            status=resources_pb2.ApplicationStatus(phase="Deploying", services=len(replicas)),
        )
        if not request.dry_run:
            self.commit([(key, app), *self._service_puts(app, replicas, request.template)])
            self.revisions[(request.cluster, request.name)] = []
            self.snapshot_revision(app, "created")
            self.add_event(request.cluster, "application", request.name, "Created", "deployed")
            if self.reconcile_hook is not None:
                self.reconcile_hook(self, request.cluster, request.name)
        return app

    async def GetApplication(self, request: Any, context: Ctx) -> api_pb2.GetApplicationResponse:
        await self._cluster(context, request.cluster)
        app = await self._get(
            context, ("application", request.cluster, request.name), f"application {request.name!r}")
        services = self._items("service", request.cluster, request.name)
        return api_pb2.GetApplicationResponse(application=app, services=services)

    async def ListApplications(self, request: Any, context: Ctx) -> api_pb2.ListApplicationsResponse:
        items, nxt = await self._page(
            context, self._items("application", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListApplicationsResponse(
            applications=items, next_page_token=nxt, revision=self.revision)

    async def _set_app(
        self, request: Any, context: Ctx, change: Callable[[resources_pb2.Application], None]
    ) -> resources_pb2.Application:
        app = resources_pb2.Application()
        app.CopyFrom((await self.GetApplication(request, context)).application)
        change(app)
        self.commit([(("application", request.cluster, request.name), app)])
        return app

    async def UpdateApplication(self, request: Any, context: Ctx) -> resources_pb2.Application:
        if request.template:
            await self._parse(context, request.template)

        def change(app: resources_pb2.Application) -> None:
            if request.template:
                app.spec.template = request.template
            if request.version:
                app.spec.version = request.version
            if request.replace_env:
                app.spec.env.clear()
            app.spec.env.update(request.env)
            app.revision += 1

        app = await self._set_app(request, context, change)
        if request.template:
            self._update_services(app)
        self.snapshot_revision(app, "update")
        self.start_release(app, request)
        if self.reconcile_hook is not None:
            self.reconcile_hook(self, request.cluster, request.name)
        return app

    def _update_services(self, app: resources_pb2.Application) -> None:
        """As the server does: a changed spec bumps the service's generation and resets
        ``status.desired``; services that left the template are deleted."""
        replicas = {n: (s.get("deploy") or {}).get("replicas", 1)
                    for n, s in yaml.safe_load(app.spec.template)["services"].items()}
        current = {k[3]: o for k, o in self.objects.items()
                   if k[0] == "service" and k[1:3] == (app.cluster, app.meta.name)}
        puts: list[tuple[tuple[str, ...], Message]] = []
        for key, new in self._service_puts(app, replicas, app.spec.template):
            assert isinstance(new, resources_pb2.Service)
            old: Any = current.pop(key[3], None)
            if old is not None and old.spec == new.spec:
                continue
            if old is not None:
                new.meta.CopyFrom(old.meta)
                new.generation = old.generation + 1
                new.status.CopyFrom(old.status)
                new.status.desired = new.spec.replicas
            puts.append((key, new))
        self.commit(puts, [("service", app.cluster, app.meta.name, n) for n in current])

    async def DeleteApplication(self, request: Any, context: Ctx) -> api_pb2.DeleteApplicationResponse:
        await self.GetApplication(request, context)
        keys = [k for k in self.objects if k[1:3] == (request.cluster, request.name)
                and k[0] in ("application", "service", "container", "release")]
        self.commit(deletes=keys)
        return api_pb2.DeleteApplicationResponse()

    async def StartApplication(self, request: Any, context: Ctx) -> resources_pb2.Application:
        def change(app: resources_pb2.Application) -> None:
            app.spec.desired_state = resources_pb2.DESIRED_STATE_RUNNING
        return await self._set_app(request, context, change)

    async def StopApplication(self, request: Any, context: Ctx) -> resources_pb2.Application:
        def change(app: resources_pb2.Application) -> None:
            app.spec.desired_state = resources_pb2.DESIRED_STATE_STOPPED
        return await self._set_app(request, context, change)

    # ------------------------------------------------------------ services and containers

    async def GetService(self, request: Any, context: Ctx) -> resources_pb2.Service:
        await self._cluster(context, request.cluster)
        svc: resources_pb2.Service = await self._get(
            context, ("service", request.cluster, request.application, request.name),
            f"service {request.application}/{request.name}")
        return svc

    async def ListServices(self, request: Any, context: Ctx) -> api_pb2.ListServicesResponse:
        prefix = (request.cluster, request.application) if request.application else (request.cluster,)
        items, nxt = await self._page(
            context, self._items("service", *prefix), request.page_size, request.page_token)
        return api_pb2.ListServicesResponse(services=items, next_page_token=nxt, revision=self.revision)

    async def ScaleService(self, request: Any, context: Ctx) -> resources_pb2.Service:
        svc = resources_pb2.Service()
        svc.CopyFrom(await self.GetService(request, context))
        svc.spec.replicas = request.replicas
        svc.status.desired = request.replicas
        self.commit([(("service", request.cluster, request.application, request.name), svc)])
        return svc

    async def GetContainer(self, request: Any, context: Ctx) -> resources_pb2.Container:
        await self._cluster(context, request.cluster)
        key = ("container", request.cluster, request.application, request.service, request.name)
        c: resources_pb2.Container = await self._get(context, key, f"container {request.name!r}")
        return c

    async def ListContainers(self, request: Any, context: Ctx) -> api_pb2.ListContainersResponse:
        if request.service and not request.application:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "service: needs application")
        items = [c for c in self._items("container", request.cluster)
                 if (not request.application or c.application == request.application)
                 and (not request.service or c.service == request.service)
                 and (not request.node or c.node == request.node)]
        page, nxt = await self._page(context, items, request.page_size, request.page_token)
        return api_pb2.ListContainersResponse(containers=page, next_page_token=nxt, revision=self.revision)

    # ------------------------------------------------------------ events and watch

    async def ListEvents(self, request: Any, context: Ctx) -> api_pb2.ListEventsResponse:
        items, nxt = await self._page(
            context, self._items("event", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListEventsResponse(events=items, next_page_token=nxt, revision=self.revision)

    async def Watch(self, request: Any, context: Ctx) -> AsyncIterator[api_pb2.WatchResponse]:
        await self._auth(context)
        self.watch_requests.append(request)
        for i, k in enumerate(request.kinds):
            if self.watch_kinds is not None and k not in self.watch_kinds:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"kinds[{i}]: {k!r} unknown")
        if request.from_revision and request.from_revision <= self.compacted:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "from_revision: compacted")
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

    async def Logs(self, request: Any, context: Ctx) -> AsyncIterator[api_pb2.LogsResponse]:
        """One line per matching container (``hello from NAME``), then the end."""
        await self._cluster(context, request.cluster)
        for c in self._items("container", request.cluster, request.application, request.service):
            if not request.container or c.meta.name == request.container:
                yield api_pb2.LogsResponse(container=c.meta.name, data=f"hello from {c.meta.name}\n".encode())


def _cluster_of(obj: Any) -> str:
    return str(getattr(obj, "cluster", obj.meta.name))
