"""TriggerService: make, list, rotate and remove an application's triggers; fire one with a token.

A trigger's record and its secret's first version are written in one transaction guarded on
the application (and, for update-image and scale, the service) existing; a rotation replaces
the secret's version and deletes the older ones in one transaction guarded on the record's
revision; a removal deletes the record, every version of its secret and its remembered
deliveries together. The secret is in an answer only where it is made (create, rotate).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc

from ccs.errors import REASON_KEY, REASON_RATE_LIMITED, RETRY_AFTER_KEY
from ccs.v1 import resources_pb2 as pb
from ccs.v1 import triggers_pb2 as tpb
from ccs.v1 import triggers_pb2_grpc
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.names import check_name
from controlplane.secrets.store import SecretStore, prefix, write_version
from controlplane.store import keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, now, touch
from controlplane.store.txn import Txn
from controlplane.triggers import records
from controlplane.triggers.actions import ACTION_NAMES
from controlplane.triggers.callback_target import CallbackRefused, checked_address
from controlplane.triggers.invoke import Invoker, Refused
from controlplane.triggers.rules import BodyError, params_from

MAX_URL = 2048
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 409: grpc.StatusCode.FAILED_PRECONDITION,
          429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


def check_callback(url: str) -> str:
    if not url:
        return ""
    if len(url) > MAX_URL:
        raise InvalidArgument("callback_url", f"is {len(url)} characters; the limit is {MAX_URL}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("callback_url", "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidArgument("callback_url", "must not carry credentials (the callback is signed instead)")
    return url


@map_errors
class TriggerServicer(triggers_pb2_grpc.TriggerServiceServicer):
    def __init__(self, etcd: Etcd, secrets: SecretStore, invoker: Invoker) -> None:
        self.etcd, self.secrets, self.invoker = etcd, secrets, invoker

    def _answer(self, t: tpb.Trigger) -> tpb.Trigger:
        t.url = self.invoker.trigger_url(t.cluster, t.application, t.meta.name)
        return t

    async def CreateTrigger(self, request: tpb.CreateTriggerRequest,
                            context: grpc.aio.ServicerContext) -> tpb.CreateTriggerResponse:
        cluster = check_name("cluster", request.cluster)
        app_name = check_name("application", request.application)
        name = check_name("name", request.name)
        if request.action not in ACTION_NAMES:
            raise InvalidArgument("action", f"must be one of {', '.join(ACTION_NAMES.values())}")
        action = ACTION_NAMES[request.action]
        if request.action == tpb.TRIGGER_ACTION_REDEPLOY:
            if request.service:
                raise InvalidArgument("service", "a redeploy trigger acts on the whole application; leave it out")
        else:
            check_name("service", request.service)
        callback = check_callback(request.callback_url)
        if callback:
            try:
                await checked_address(callback, self.invoker.allow_private_callbacks)
            except CallbackRefused as e:
                raise InvalidArgument("callback_url", str(e)) from None
        app = await reads.get(self.etcd, keys.app(cluster, app_name), pb.Application, "application", app_name)
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            raise FailedPrecondition(f"application {app_name!r} is being deleted")
        # Present, not at the revision read: the reconciler writes the application's status all the
        # time. Deleted and made again meanwhile, the trigger names the old one's id: it never acts.
        txn = Txn().require_present(keys.app(cluster, app_name), "application", app_name)
        if request.service:
            txn.require_present(keys.service(cluster, app_name, request.service), "service",
                                f"{app_name}/{request.service}")
        secret = records.new_secret()
        version, _ = await self.secrets.prepare(cluster, records.SECRET_KIND, records.secret_name(app_name, name),
                                                secret.encode(), "")
        trigger = tpb.Trigger(meta=new_meta(name), cluster=cluster, application=app_name, action=request.action,
                              service=request.service, callback_url=callback, secret_version=version.version,
                              application_id=app.meta.id)
        trigger.rotated_at.CopyFrom(now())
        key = records.key(cluster, app_name, name)
        txn.create(key, trigger, "trigger", f"{app_name}/{name}")
        txn.require_empty(prefix(cluster, records.SECRET_KIND, records.secret_name(app_name, name)), "trigger",
                          f"{app_name}/{name}")
        write_version(txn, version)
        record_event(txn, cluster, "application", app_name, "TriggerCreated",
                     f"trigger {name} ({action}{' ' + request.service if request.service else ''}) created")
        trigger.meta.resource_version = await txn.commit(self.etcd)
        return tpb.CreateTriggerResponse(trigger=self._answer(trigger), secret=secret)

    async def ListTriggers(self, request: tpb.ListTriggersRequest,
                           context: grpc.aio.ServicerContext) -> tpb.ListTriggersResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application) if request.application else ""
        found = await self.invoker.store.list(cluster, app)
        return tpb.ListTriggersResponse(triggers=[self._answer(t) for t in found])

    async def DeleteTrigger(self, request: tpb.DeleteTriggerRequest,
                            context: grpc.aio.ServicerContext) -> tpb.DeleteTriggerResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        name = check_name("name", request.name)
        t = await self.invoker.store.get(cluster, app, name)
        txn = Txn().require_revision(records.key(cluster, app, name), "trigger", f"{app}/{name}",
                                     t.meta.resource_version)
        txn.delete(records.key(cluster, app, name))
        txn.delete_prefix(prefix(cluster, records.SECRET_KIND, records.secret_name(app, name)))
        txn.delete_prefix(f"{keys.trigger_deliveries(cluster, app)}{name}/")
        if await self.etcd.get(keys.app(cluster, app)) is not None:
            record_event(txn, cluster, "application", app, "TriggerDeleted", f"trigger {name} removed")
        await txn.commit(self.etcd)
        return tpb.DeleteTriggerResponse()

    async def RotateTrigger(self, request: tpb.RotateTriggerRequest,
                            context: grpc.aio.ServicerContext) -> tpb.CreateTriggerResponse:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        name = check_name("name", request.name)
        t = await self.invoker.store.get(cluster, app, name)
        sname = records.secret_name(app, name)
        old = await self.secrets.versions(cluster, records.SECRET_KIND, sname)
        secret = records.new_secret()
        version, _ = await self.secrets.prepare(cluster, records.SECRET_KIND, sname, secret.encode(), "")
        txn = Txn()
        for v in old:  # only the latest signs: the old secrets go
            txn.require_revision(v.key, records.SECRET_KIND, f"{sname}@{v.version}", v.mod_revision).delete(v.key)
        write_version(txn, version)
        t.secret_version = version.version
        t.rotated_at.CopyFrom(now())
        touch(t.meta)
        txn.update(records.key(cluster, app, name), t, "trigger", f"{app}/{name}", t.meta.resource_version)
        if await self.etcd.get(keys.app(cluster, app)) is not None:
            record_event(txn, cluster, "application", app, "TriggerRotated",
                         f"trigger {name}: secret version {version.version}")
        t.meta.resource_version = await txn.commit(self.etcd)
        return tpb.CreateTriggerResponse(trigger=self._answer(t), secret=secret)

    async def InvokeTrigger(self, request: tpb.InvokeTriggerRequest,
                            context: grpc.aio.ServicerContext) -> tpb.TriggerResult:
        cluster = check_name("cluster", request.cluster)
        app = check_name("application", request.application)
        name = check_name("name", request.name)
        try:
            params = params_from({"tag": request.tag, "version": request.version,
                                  "replicas": request.replicas if request.has_replicas else None})
        except BodyError as e:
            field, _, why = str(e).partition(": ")
            raise InvalidArgument(field, why) from None
        try:
            done = await self.invoker.token_call(cluster, app, name, params)
        except Refused as r:
            # A rate limit shares RESOURCE_EXHAUSTED with gRPC's size limit: the reason trailer
            # tells the SDK which (ccs.errors.RateLimited, not MessageTooLarge), with the wait.
            trailers = ((REASON_KEY, REASON_RATE_LIMITED), (RETRY_AFTER_KEY, f"{r.retry_after:.1f}")
                        ) if r.status == 429 else ()
            await context.abort(r.code or _CODES.get(r.status, grpc.StatusCode.INTERNAL), r.message, trailers)
            raise AssertionError("unreachable") from None
        o = done.outcome
        return tpb.TriggerResult(trigger=name, result=o.result, release=o.release, status_url=done.status_url,
                                 revision=o.revision, message=o.message)
