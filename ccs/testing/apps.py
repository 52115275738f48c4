"""ApplicationService, ServiceService and ContainerService of the fake.

A template is read only as far as ``services.<name>.image`` and ``deploy.replicas``, with the
server's messages for what it checks (the field path and the line); the rest of Compose is the
server's business and is not modelled (chosen profiles are stored, but every service is
deployed, and the cluster's policy on privileged keys is not checked); top-level ``networks`` only
as far as ``external`` (see ``ccs.testing.networks``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import yaml
from google.protobuf.message import Message

from ccs.testing.releases import ReleasesFake
from ccs.testing.state import MAX_REPLICAS, Ctx, Key, fail
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["AppsFake"]

R = resources_pb2
CONTAINER_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")  # the server's bound (controlplane.api.object_names)
STRATEGIES = ("", "rolling", "blue-green", "canary")


def _line(node: yaml.Node) -> str:
    return f" (line {node.start_mark.line + 1})"


class AppsFake(ReleasesFake):
    # ------------------------------------------------------------ template and option checks

    async def _parse(self, ctx: Ctx, template: str) -> dict[str, tuple[str, int]]:
        """``{service: (image, replicas)}``, or INVALID_ARGUMENT naming the field path and line."""
        if not template.strip():
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, "template: is empty")
        try:
            root = yaml.compose(template)
        except yaml.YAMLError as exc:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"template: not YAML: {exc}")
        top = {k.value: (k, v) for k, v in root.value} if isinstance(root, yaml.MappingNode) else {}
        key, services = top.get("services", (None, None))
        if not isinstance(services, yaml.MappingNode) or not services.value:
            where = _line(key) if key is not None else ""
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT,
                       f"services: is required and must name at least one service{where}")
        out: dict[str, tuple[str, int]] = {}
        for name_node, svc_node in services.value:
            name, path = name_node.value, f"services.{name_node.value}"
            svc = {k.value: v for k, v in svc_node.value} if isinstance(svc_node, yaml.MappingNode) else {}
            image = svc.get("image")
            if not isinstance(image, yaml.ScalarNode) or not image.value:
                await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"{path}.image: is required{_line(name_node)}")
            deploy = svc.get("deploy")
            fields = {k.value: v for k, v in deploy.value} if isinstance(deploy, yaml.MappingNode) else {}
            replicas = 1
            if "replicas" in fields:
                node = fields["replicas"]
                try:
                    replicas = int(node.value)
                except (TypeError, ValueError):
                    await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT,
                               f"{path}.deploy.replicas: must be an integer{_line(node)}")
                if replicas < 0:
                    await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT,
                               f"{path}.deploy.replicas: must be >= 0{_line(node)}")
            out[name] = (image.value, replicas)
        return out

    @staticmethod
    async def _check_options(ctx: Ctx, request: Any) -> None:
        """The server's release-option checks (``controlplane/api/apps.py``), in its order."""
        bad = grpc.StatusCode.INVALID_ARGUMENT
        if request.strategy not in STRATEGIES:
            await fail(ctx, bad, f"strategy: {request.strategy!r} is not one of rolling, blue-green, canary")
        analysis = request.canary_analysis if request.HasField("canary_analysis") else None
        if request.strategy != "canary" and (request.canary_replicas or request.canary_steps
                                             or analysis is not None or request.match_header
                                             or request.match_cookie):
            await fail(ctx, bad, "strategy: canary options need strategy canary")
        if request.canary_replicas > MAX_REPLICAS:
            await fail(ctx, bad, f"canary_replicas: {request.canary_replicas} exceeds the limit of {MAX_REPLICAS}")
        for i, step in enumerate(request.canary_steps):
            if step.weight > 100:
                await fail(ctx, bad, f"canary_steps[{i}].weight: {step.weight} is not a percentage (0-100)")
        if request.canary_steps and request.canary_steps[-1].weight != 100:
            await fail(ctx, bad, "canary_steps: the last step must send 100% of traffic to the new revision")
        if analysis is not None and not 0 <= analysis.max_5xx_ratio <= 1:
            await fail(ctx, bad, f"canary_analysis.max_5xx_ratio: {analysis.max_5xx_ratio:g} is not a ratio "
                                 "between 0 and 1")
        if (request.match_header or request.match_cookie) and not request.match_value:
            await fail(ctx, bad, "match_value: A/B routing by header or cookie needs the value to match")
        if request.match_header and request.match_cookie:
            await fail(ctx, bad, "match_cookie: choose a header or a cookie, not both")

    # ------------------------------------------------------------ applications

    def _service_puts(self, app: R.Application, parsed: dict[str, tuple[str, int]]) -> list[tuple[Key, Message]]:
        return [(("service", app.cluster, app.meta.name, name), R.Service(
            meta=R.Meta(name=name), cluster=app.cluster, application=app.meta.name, generation=1,
            app_revision=app.revision, spec=R.ServiceSpec(image=image, replicas=count),
            status=R.ServiceStatus(desired=count),
        )) for name, (image, count) in parsed.items()]

    def snapshot_revision(self, app: R.Application, note: str) -> None:
        """Remember the application's spec at its revision (notes as the server's); the fake's one
        token is the server's bootstrap token, named ``admin``."""
        rev = R.ApplicationRevision(meta=R.Meta(name=str(app.revision)), revision=app.revision,
                                    spec=app.spec, note=note, author="admin")
        rev.meta.created_at.GetCurrentTime()
        self.revisions.setdefault((app.cluster, app.meta.name), []).append(rev)

    async def _app(self, ctx: Ctx, cluster: str, name: str) -> R.Application:
        await self._cluster(ctx, cluster)
        await self._name(ctx, "name", name)
        app = R.Application()
        app.CopyFrom(await self._get(ctx, ("application", cluster, name), "application", name))
        return app

    async def CreateApplication(self, request: Any, context: Ctx) -> R.Application:
        await self._cluster(context, request.cluster)
        name = await self._name(context, "name", request.name)
        key = ("application", request.cluster, name)
        await self._absent(context, key, "application", name)
        parsed = {n: (_interpolate(image, request.env), count)
                  for n, (image, count) in (await self._parse(context, request.template)).items()}
        joined = await self._check_external(context, request.cluster, request.template)
        app = R.Application(
            meta=R.Meta(name=name, labels=request.labels), cluster=request.cluster, revision=1,
            spec=R.ApplicationSpec(template=request.template, env=request.env, files=request.files,
                                   version=request.version, desired_state=R.DESIRED_STATE_RUNNING,
                                   template_revision=1, profiles=dict.fromkeys(request.profiles)),
            status=R.ApplicationStatus(phase="Deploying", services=len(parsed)),
            networks=joined,
        )
        if not request.dry_run:
            self.commit([(key, app), *self._service_puts(app, parsed)])
            self.snapshot_revision(app, "deploy")
            self.add_event(request.cluster, "application", name, "Created", "deployed")
            if self.reconcile_hook is not None:
                self.reconcile_hook(self, request.cluster, name)
        return app

    async def GetApplication(self, request: Any, context: Ctx) -> api_pb2.GetApplicationResponse:
        app = await self._app(context, request.cluster, request.name)
        services = self._items("service", request.cluster, request.name)
        return api_pb2.GetApplicationResponse(application=app, services=services)

    async def ListApplications(self, request: Any, context: Ctx) -> api_pb2.ListApplicationsResponse:
        await self._cluster(context, request.cluster)
        items, nxt = await self._page(
            context, self._items("application", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListApplicationsResponse(applications=items, next_page_token=nxt, revision=self.revision)

    async def _set_app(self, request: Any, context: Ctx, change: Callable[[R.Application], None]) -> R.Application:
        app = await self._app(context, request.cluster, request.name)
        change(app)
        self.commit([(("application", request.cluster, request.name), app)])
        return app

    async def _updated(self, request: Any, context: Ctx) -> R.Application:
        """The application as ``request`` (an UpdateApplicationRequest) would leave it, checked;
        nothing written."""
        await self._check_options(context, request)
        app = await self._app(context, request.cluster, request.name)
        await self._fresh(context, app, request.resource_version, "application", request.name)
        parsed = await self._parse(context, request.template) if request.template else None
        if parsed is not None:
            joined = await self._check_external(context, request.cluster, request.template)
            del app.networks[:]
            app.networks.extend(joined)
        app.revision += 1
        if parsed is not None and request.template != app.spec.template:
            app.spec.template, app.spec.template_revision = request.template, app.revision
        if request.version:
            app.spec.version = request.version
        if request.replace_env:
            app.spec.env.clear()
        app.spec.env.update(request.env)
        if request.clear_profiles and request.profiles:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "clear_profiles: cannot be combined with profiles")
        if request.clear_profiles or request.profiles:
            del app.spec.profiles[:]
            app.spec.profiles.extend(dict.fromkeys(request.profiles))
        return app

    async def DiffApplication(self, request: Any, context: Ctx) -> api_pb2.DiffApplicationResponse:
        """As the server: the update's checks, then each service before and after (as far as the
        fake models a spec: image and replicas); nothing written."""
        before = await self._app(context, request.cluster, request.name)
        app = await self._updated(request, context)
        if app.spec == before.spec:
            app.revision = before.revision
        resp = api_pb2.DiffApplicationResponse(
            application=app, version_before=before.spec.version, revision_before=before.revision)
        current = {k[3]: o for k, o in self.objects.items()
                   if k[0] == "service" and k[1:3] == (app.cluster, app.meta.name)}
        for _, new in self._service_puts(app, {n: (_interpolate(img, app.spec.env), count)
                                               for n, (img, count) in _services(app.spec.template)}):
            assert isinstance(new, R.Service)
            old: Any = current.pop(new.meta.name, None)
            change = "added" if old is None else "unchanged" if old.spec == new.spec else "changed"
            item = resp.services.add(name=new.meta.name, change=change, after=new.spec)
            if old is not None:
                item.before.CopyFrom(old.spec)
        for name, old in current.items():
            resp.services.add(name=str(name), change="removed", before=old.spec)
        if any(s.change == "changed" for s in resp.services):
            resp.release_strategy = request.strategy or "rolling"
        return resp

    async def UpdateApplication(self, request: Any, context: Ctx) -> R.Application:
        app = await self._updated(request, context)
        if request.dry_run:  # checked as the update, nothing written
            return app
        self.commit([(("application", request.cluster, request.name), app)])
        self.snapshot_revision(app, "update")
        changed = self._update_services(app)
        if changed:
            self.start_release(app, request, changed)
        if self.reconcile_hook is not None:
            self.reconcile_hook(self, request.cluster, request.name)
        return app

    def _update_services(self, app: R.Application) -> list[str]:
        """As the server does: a changed spec bumps the service's generation and resets
        ``status.desired``; services that left the template are deleted. Returns the changed
        services' names. ``${VAR:-default}`` in an image is the only interpolation modelled."""
        parsed = {n: (_interpolate(img, app.spec.env), count) for n, (img, count) in _services(app.spec.template)}
        current = {k[3]: o for k, o in self.objects.items()
                   if k[0] == "service" and k[1:3] == (app.cluster, app.meta.name)}
        puts: list[tuple[Key, Message]] = []
        for key, new in self._service_puts(app, parsed):
            assert isinstance(new, R.Service)
            old: Any = current.pop(key[3], None)
            if old is not None and old.spec == new.spec:
                continue
            if old is not None:
                new.meta.CopyFrom(old.meta)
                new.generation = old.generation + 1
                new.status.CopyFrom(old.status)
                new.status.desired = new.spec.replicas
            puts.append((key, new))
        if puts or current:
            self.commit(puts, [("service", app.cluster, app.meta.name, n) for n in current])
        return [str(k[3]) for k, _ in puts]

    async def DeleteApplication(self, request: Any, context: Ctx) -> api_pb2.DeleteApplicationResponse:
        app = await self._app(context, request.cluster, request.name)
        await self._fresh(context, app, request.resource_version, "application", request.name)
        keys = [k for k in self.objects if k[1:3] == (request.cluster, request.name)
                and k[0] in ("application", "service", "container", "release")]
        self.commit(deletes=keys)
        return api_pb2.DeleteApplicationResponse()

    async def StartApplication(self, request: Any, context: Ctx) -> R.Application:
        def change(app: R.Application) -> None:
            app.spec.desired_state = R.DESIRED_STATE_RUNNING
        return await self._set_app(request, context, change)

    async def StopApplication(self, request: Any, context: Ctx) -> R.Application:
        def change(app: R.Application) -> None:
            app.spec.desired_state = R.DESIRED_STATE_STOPPED
        return await self._set_app(request, context, change)

    async def ListRevisions(self, request: Any, context: Ctx) -> api_pb2.ListRevisionsResponse:
        await self._app(context, request.cluster, request.name)
        revisions = self.revisions.get((request.cluster, request.name), [])
        for rev in revisions:
            rev.template_digest = "sha256:" + hashlib.sha256(rev.spec.template.encode()).hexdigest()
        return api_pb2.ListRevisionsResponse(revisions=revisions)

    async def RollbackApplication(self, request: Any, context: Ctx) -> R.Application:
        await self._auth(context)
        if request.strategy not in STRATEGIES:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"strategy: {request.strategy!r} is not one of rolling, blue-green, canary")
        app = await self._app(context, request.cluster, request.name)
        target = request.to_revision or app.revision - 1
        if not 1 <= target < app.revision:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"to_revision: must be an earlier revision, 1..{app.revision - 1} (current is {app.revision})")
        snaps = [r for r in self.revisions.get((request.cluster, request.name), []) if r.revision == target]
        if not snaps:
            await fail(context, grpc.StatusCode.NOT_FOUND, f"revision '{request.name}@{target}' not found")
        app.spec.CopyFrom(snaps[0].spec)
        app.revision += 1
        self.commit([(("application", request.cluster, request.name), app)])
        self.snapshot_revision(app, "rollback")
        changed = self._update_services(app)
        if changed:
            self.start_release(app, request, changed, is_rollback=True)
        return app

    # ------------------------------------------------------------ services and containers

    async def GetService(self, request: Any, context: Ctx) -> R.Service:
        await self._cluster(context, request.cluster)
        svc: R.Service = await self._get(context, ("service", request.cluster, request.application, request.name),
                                         "service", f"{request.application}/{request.name}")
        return svc

    async def ListServices(self, request: Any, context: Ctx) -> api_pb2.ListServicesResponse:
        await self._cluster(context, request.cluster)
        prefix = (request.cluster, request.application) if request.application else (request.cluster,)
        items, nxt = await self._page(context, self._items("service", *prefix), request.page_size, request.page_token)
        return api_pb2.ListServicesResponse(services=items, next_page_token=nxt, revision=self.revision)

    async def ScaleService(self, request: Any, context: Ctx) -> R.Service:
        svc = R.Service()
        svc.CopyFrom(await self.GetService(request, context))
        if request.replicas > MAX_REPLICAS:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"replicas: {request.replicas} exceeds the limit of {MAX_REPLICAS}")
        await self._fresh(context, svc, request.resource_version, "service", f"{request.application}/{request.name}")
        svc.spec.replicas = request.replicas
        svc.status.desired = request.replicas
        self.commit([(("service", request.cluster, request.application, request.name), svc)])
        return svc

    async def GetContainer(self, request: Any, context: Ctx) -> R.Container:
        await self._cluster(context, request.cluster)
        key = ("container", request.cluster, request.application, request.service, request.name)
        c: R.Container = await self._get(context, key, "container", request.name)
        return c

    async def ListContainers(self, request: Any, context: Ctx) -> api_pb2.ListContainersResponse:
        await self._cluster(context, request.cluster)
        if request.service and not request.application:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "service: filtering by service needs application too")
        if request.offset < 0:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "offset: must not be negative")
        if request.offset and request.page_token:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       "offset: not with page_token (the token goes on from where its page ended)")
        if request.node and (request.offset or request.with_total):
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "node: not with offset or with_total (they "
                       "count keys; a container's node is in its record)")
        if request.name and not CONTAINER_NAME.fullmatch(request.name):
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"name: {request.name!r} is not a container name (like web-1-3f9a2b7c)")
        if request.name and (request.offset or request.with_total):
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "name: not with offset or with_total (they "
                       "count keys; the name is matched in each record)")
        items = [c for c in self._items("container", request.cluster)
                 if (not request.application or c.application == request.application)
                 and (not request.service or c.service == request.service)]
        token = str(request.offset) if request.offset else request.page_token
        page, nxt = await self._page(context, items, request.page_size, token)
        # node and name are matched after the page is cut, as the server does (a page may hold none)
        page = [c for c in page if (not request.node or c.node == request.node)
                and (not request.name or c.meta.name == request.name)]
        return api_pb2.ListContainersResponse(containers=page, next_page_token=nxt, revision=self.revision,
                                              total=len(items) if request.with_total else 0)

    async def Logs(self, request: Any, context: Ctx) -> AsyncIterator[api_pb2.LogsResponse]:
        """One line per matching container (``hello from NAME``), then the end."""
        await self._cluster(context, request.cluster)
        for c in self._items("container", request.cluster, request.application, request.service):
            if not request.container or c.meta.name == request.container:
                yield api_pb2.LogsResponse(container=c.meta.name, data=f"hello from {c.meta.name}\n".encode())

    async def Exec(self, request_iterator: Any, context: Ctx) -> AsyncIterator[api_pb2.ExecResponse]:
        """Checked as the server checks the first request, then refused: the fake has no
        containers to run a command in (``containers.exec`` needs a real server and agent)."""
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.command or not first.command[0]:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       "command: must name a program to run (ccs exec CONTAINER -- CMD...)")
        key = ("container", first.cluster, first.application, first.service, first.container)
        await self._get(context, key, "container", first.container)
        await fail(context, grpc.StatusCode.UNIMPLEMENTED,
                   "the in-process fake (ccs.testing) runs no commands in containers: exec needs a real "
                   "ccs-server and agent")
        yield api_pb2.ExecResponse()  # pragma: no cover - makes this a stream


def _services(template: str) -> list[tuple[str, tuple[str, int]]]:
    doc = yaml.safe_load(template)
    return [(n, (str(s["image"]), int((s.get("deploy") or {}).get("replicas", 1))))
            for n, s in doc["services"].items()]


def _interpolate(text: str, env: Any) -> str:
    """``${VAR:-default}`` and ``${VAR}`` from ``env`` (the rest of Compose interpolation is the
    server's)."""

    def sub(m: re.Match[str]) -> str:
        return str(env.get(m.group(1), "") or (m.group(3) or ""))

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", sub, text)
