"""ApplicationService: an application and its services are written together or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc
import structlog

from ccs.labels import apply_label_changes
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.app_delete import delete_application
from controlplane.api.app_diff import diff_application
from controlplane.api.app_policy import check_policy
from controlplane.api.app_specs import TemplateCache, resolve, resolve_all, same_template, stored_app
from controlplane.api.app_update import UpdateSeen, apply_update, check_fits, new_service, snapshot, template_digest
from controlplane.api.cached_lists import bounded, list_page
from controlplane.api.common import CacheReader, read_modify_write
from controlplane.api.image_pins import ImagePinner
from controlplane.api.list_memo import list_answer
from controlplane.api.networks import check_external, guard_networks, refusal_for
from controlplane.api.release_options import check_release_options
from controlplane.api.secret_refs import keep_out, stored_values
from controlplane.api.secret_refs import resolve as resolve_files
from controlplane.api.template_parse import parse_checked
from controlplane.compose import DEFAULT_PARSE_CPU_SECONDS, ParsedTemplate
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.informer import Informer
from controlplane.names import MAX_VERSION, check_labels, check_name, check_text, shown
from controlplane.registry.logins import Logins
from controlplane.release import ReleaseOptions
from controlplane.secrets.store import SecretStore
from controlplane.store import NotFound, keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, touch
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.api")
STRATEGIES = ("", "rolling", "blue-green", "canary")


def _apply_parsed(app: pb.Application, parsed: ParsedTemplate) -> None:
    del app.volumes[:]
    del app.networks[:]
    del app.warnings[:]
    app.volumes.extend(parsed.volumes)
    app.networks.extend(parsed.networks)
    app.warnings.extend(parsed.warnings)
    app.status.services = len(parsed.services)


@map_errors
class ApplicationServicer(api_pb2_grpc.ApplicationServiceServicer):
    def __init__(
        self,
        etcd: Etcd,
        informer: Informer | None = None,
        parse_cpu_seconds: float = DEFAULT_PARSE_CPU_SECONDS,
        secrets: SecretStore | None = None,
        pinner: ImagePinner | None = None,
    ) -> None:
        self.etcd = etcd
        self.secrets = secrets
        self.pinner = pinner or ImagePinner(Logins(secrets) if secrets is not None else None)
        self.cache = CacheReader(etcd, informer)
        self.templates = TemplateCache()
        self.parse_cpu_seconds = parse_cpu_seconds

    async def _get(self, cluster: str, name: str) -> pb.Application:
        return await reads.get(self.etcd, keys.app(cluster, name), pb.Application, "application", name)

    async def CreateApplication(
        self, request: api_pb2.CreateApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Application:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        check_text("version", request.version, MAX_VERSION)
        if not request.template.strip():
            raise InvalidArgument("template", "is empty")
        profiles = _profiles(request.profiles)
        parsed = await parse_checked(request.template, request.env, request.files, name, self.parse_cpu_seconds,
                                     profiles, await stored_values(self.secrets, cluster, name))
        own_values = await resolve_files(self.secrets, cluster, name, parsed)
        policy_rv = await check_policy(self.etcd, cluster, parsed)
        networks = await check_external(self.etcd, cluster, parsed)
        app = pb.Application(
            meta=new_meta(name, request.labels),
            cluster=cluster,
            spec=pb.ApplicationSpec(
                template=request.template,
                env=request.env,
                files=request.files,
                version=request.version,
                desired_state=pb.DESIRED_STATE_RUNNING,
                template_revision=1,
                profiles=profiles,
            ),
            revision=1,
        )
        app.status.phase = "Deployed"
        await self.pinner.pin(cluster, parsed, app.spec)  # registry tags -> digests (api.image_pins)
        keep_out(app.spec, parsed)
        _apply_parsed(app, parsed)
        services = [new_service(cluster, name, s, spec, 1) for s, spec in parsed.services.items()]
        # Guarded by the cluster's revision when the policy had a say (see app_policy).
        txn = Txn().require_revision(keys.cluster(cluster), "cluster", cluster, policy_rv)
        guard_networks(txn, networks)  # the cluster networks it joins exist (see api.networks)
        own_values(txn)  # its own secret and config values (api.secret_refs)
        txn.create(keys.app(cluster, name), stored_app(app), "application", name)
        # One guard for all services (not one each): a guard counts against --max-txn-ops.
        txn.require_empty(keys.services(cluster, name), "services", f"application {name!r}")
        for svc in services:
            txn.put(keys.service(cluster, name, svc.meta.name), svc)
        snapshot(txn, app, "deploy")
        record_event(
            txn,
            cluster,
            "application",
            name,
            "Created",
            f"application {name} created with {len(services)} service(s)"
            + (f", version {request.version}" if request.version else ""),
        )
        check_fits(self.etcd, txn, len(services))
        try:
            if request.dry_run:
                await txn.check(self.etcd)  # the write's guards, evaluated; nothing written
                return app
            app.meta.resource_version = await txn.commit(self.etcd)
        except NotFound as exc:
            raise refusal_for(cluster, parsed, exc) or exc from None
        return app

    async def GetApplication(
        self, request: api_pb2.GetApplicationRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.GetApplicationResponse:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        state = await self.cache.state(cluster)
        if state is not False:
            self.cache.check_decodes(state, f"application {name!r}", keys.app(cluster, name),
                                     keys.services(cluster, name))
            cached = state.apps.get(name) if state is not None else None
            if state is None or cached is None:
                raise NotFound("application", name)
            mine = [svc for (a, _), svc in sorted(state.services.items()) if a == name]
            answer = api_pb2.GetApplicationResponse(application=cached, services=mine)  # a copy
            await self.templates.resolve(self.etcd, cluster, answer.application)
            return answer
        app = await self._get(cluster, name)
        await self.templates.resolve(self.etcd, cluster, app)
        services, _ = await reads.list_all(self.etcd, keys.services(cluster, name), pb.Service)
        return api_pb2.GetApplicationResponse(application=app, services=services)

    async def ListApplications(
        self, request: api_pb2.ListApplicationsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListApplicationsResponse:
        cluster = check_name("cluster", request.cluster)
        return await list_answer(self.cache, request, lambda: list_page(
            self.cache, cluster, ("cluster", cluster), keys.apps(cluster), pb.Application,
            lambda state: bounded(((keys.app(cluster, n), a) for n, a in state.apps.items()), len(state.apps)),
            page_size=request.page_size, page_token=request.page_token), lambda page: api_pb2.ListApplicationsResponse(
            applications=page.items, next_page_token=page.next_page_token, revision=page.revision))

    async def UpdateApplication(
        self, request: api_pb2.UpdateApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Application:
        return await read_modify_write(request.resource_version, lambda: self._UpdateApplication(request))

    async def refresh(self, cluster: str, name: str) -> pb.Application:
        """Re-apply the application's template as it stands, as ``ccs app update`` with no change
        would: a secret or config it mounts unpinned has a new version (controlplane.api.secrets)."""
        request = api_pb2.UpdateApplicationRequest(cluster=cluster, name=name)
        return await read_modify_write(0, lambda: self._UpdateApplication(request))

    async def DiffApplication(
        self, request: api_pb2.UpdateApplicationRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DiffApplicationResponse:
        return await read_modify_write(request.resource_version, lambda: diff_application(
            request, lambda dry, observe: self._UpdateApplication(dry, observe)))

    async def _UpdateApplication(
        self, request: api_pb2.UpdateApplicationRequest, observe: Callable[[UpdateSeen], object] | None = None
    ) -> pb.Application:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        check_text("version", request.version, MAX_VERSION)
        if request.strategy not in STRATEGIES:
            raise InvalidArgument(
                "strategy", f"{shown(request.strategy)} is not one of rolling, blue-green, canary"
            )
        app = await self._get(cluster, name)
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            raise FailedPrecondition(f"application {name!r} is being deleted")
        rv = request.resource_version or app.meta.resource_version
        await self.templates.resolve(self.etcd, cluster, app)
        old_spec = pb.ApplicationSpec()
        old_spec.CopyFrom(app.spec)
        if request.template:
            app.spec.template = request.template
            app.spec.ClearField("files")
            app.spec.files.update(request.files)
        if request.replace_env:
            app.spec.ClearField("env")
        app.spec.env.update(request.env)
        if request.version:
            app.spec.version = request.version
        if request.clear_profiles and request.profiles:
            raise InvalidArgument("clear_profiles", "cannot be combined with profiles")
        if request.clear_profiles or request.profiles:
            app.spec.ClearField("profiles")
            app.spec.profiles.extend(_profiles(request.profiles))
        apply_label_changes(app.meta.labels, request.labels)
        parsed = await parse_checked(app.spec.template, app.spec.env, app.spec.files, name, self.parse_cpu_seconds,
                                     app.spec.profiles, await stored_values(self.secrets, cluster, name))
        own_values = await resolve_files(self.secrets, cluster, name, parsed)
        await self.pinner.pin(cluster, parsed, app.spec)  # a tag that moved is a change
        keep_out(app.spec, parsed)
        policy_rv = await check_policy(self.etcd, cluster, parsed)
        networks = await check_external(self.etcd, cluster, parsed)
        if app.spec != old_spec:
            app.revision += 1
            if not same_template(app.spec, old_spec) or not app.spec.template_revision:
                app.spec.template_revision = app.revision  # this revision's snapshot holds it
        _apply_parsed(app, parsed)
        touch(app.meta)
        options = ReleaseOptions(
            strategy=request.strategy,
            canary_replicas=request.canary_replicas,
            canary_steps=list(request.canary_steps),
            canary_analysis=request.canary_analysis if request.HasField("canary_analysis") else None,
            match_header=request.match_header,
            match_cookie=request.match_cookie,
            match_value=request.match_value,
        )
        check_release_options(options)
        return await apply_update(self.etcd, app, old_spec, parsed, rv, options, dry_run=request.dry_run,
                                  policy_rv=policy_rv, networks=networks, riders=own_values, observe=observe)

    async def RollbackApplication(
        self, request: api_pb2.RollbackApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Application:
        return await read_modify_write(0, lambda: self._rollback(request))

    async def _rollback(self, request: api_pb2.RollbackApplicationRequest) -> pb.Application:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        if request.strategy not in STRATEGIES:
            raise InvalidArgument(
                "strategy", f"{shown(request.strategy)} is not one of rolling, blue-green, canary"
            )
        app = await self._get(cluster, name)
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            raise FailedPrecondition(f"application {name!r} is being deleted")
        target = request.to_revision or app.revision - 1
        if target < 1 or target >= app.revision:
            raise InvalidArgument(
                "to_revision",
                f"must be an earlier revision, 1..{app.revision - 1} (current is {app.revision})",
            )
        kv = await self.etcd.get(keys.revision(cluster, name, target))
        if kv is None:
            raise NotFound("revision", f"{name}@{target}")
        snap = decode(kv, pb.ApplicationRevision)
        await resolve(self.etcd, cluster, name, app.spec)
        old_spec = pb.ApplicationSpec()
        old_spec.CopyFrom(app.spec)
        desired = app.spec.desired_state
        app.spec.CopyFrom(snap.spec)
        app.spec.desired_state = desired
        await resolve(self.etcd, cluster, name, app.spec)
        parsed = await parse_checked(app.spec.template, app.spec.env, app.spec.files, name, self.parse_cpu_seconds,
                                     app.spec.profiles, await stored_values(self.secrets, cluster, name))
        own_values = await resolve_files(self.secrets, cluster, name, parsed)
        await self.pinner.pin(cluster, parsed, app.spec, reuse=True)  # the revision's recorded digests
        keep_out(app.spec, parsed)
        policy_rv = await check_policy(self.etcd, cluster, parsed)
        networks = await check_external(self.etcd, cluster, parsed)
        app.revision += 1
        if not app.spec.template_revision:  # a snapshot from before template_revision
            app.spec.template_revision = app.revision
        _apply_parsed(app, parsed)
        touch(app.meta)
        options = ReleaseOptions(strategy=request.strategy, is_rollback=True)
        return await apply_update(self.etcd, app, old_spec, parsed, app.meta.resource_version, options,
                                  policy_rv=policy_rv, networks=networks, riders=own_values)

    async def ListRevisions(
        self, request: api_pb2.ListRevisionsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListRevisionsResponse:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        await self._get(cluster, name)
        revisions, _ = await reads.list_all(self.etcd, keys.revisions(cluster, name), pb.ApplicationRevision)
        await resolve_all(self.etcd, cluster, name, revisions)
        for rev in revisions:
            rev.template_digest = template_digest(rev.spec.template)
        return api_pb2.ListRevisionsResponse(revisions=revisions)

    async def DeleteApplication(
        self, request: api_pb2.DeleteApplicationRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteApplicationResponse:
        return await read_modify_write(
            request.resource_version, lambda: delete_application(self.etcd, self.secrets, request)
        )

    async def _set_desired(
        self, cluster: str, name: str, state: pb.DesiredState, reason: str
    ) -> pb.Application:
        return await read_modify_write(0, lambda: self._set_desired_once(cluster, name, state, reason))

    async def _set_desired_once(
        self, cluster: str, name: str, state: pb.DesiredState, reason: str
    ) -> pb.Application:
        app = await self._get(cluster, name)
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            raise FailedPrecondition(f"application {name!r} is being deleted")
        if app.spec.desired_state == state:
            await self.templates.resolve(self.etcd, cluster, app)
            return app
        app.spec.desired_state = state
        app.status.phase = "Running" if state == pb.DESIRED_STATE_RUNNING else "Stopped"
        touch(app.meta)
        txn = Txn().update(keys.app(cluster, name), app, "application", name, app.meta.resource_version)
        record_event(txn, cluster, "application", name, reason, f"application {name} {reason.lower()}")
        app.meta.resource_version = await txn.commit(self.etcd)
        await self.templates.resolve(self.etcd, cluster, app)
        return app

    async def StartApplication(
        self, request: api_pb2.StartApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Application:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        return await self._set_desired(cluster, name, pb.DESIRED_STATE_RUNNING, "Started")

    async def StopApplication(
        self, request: api_pb2.StopApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Application:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        return await self._set_desired(cluster, name, pb.DESIRED_STATE_STOPPED, "Stopped")


def _profiles(requested: Iterable[str]) -> list[str]:
    """The chosen profiles, each once, in the order given (the parser checks the names)."""
    return list(dict.fromkeys(requested))
