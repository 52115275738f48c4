"""TriggerService of the fake: triggers' records and the server's refusals.

What it models: create, list, rotate and remove, with the server's checks and messages, and
``InvokeTrigger`` for ``scale`` (the service's replicas) and ``redeploy`` (answered
``unchanged``: the fake's templates hold no moving tags). What it does not: the HTTPS
endpoint (a trigger's ``url`` is empty, as a server's with ``--http-listen off``), signatures,
replays, callbacks, and ``update-image`` (refused with FAILED_PRECONDITION saying so: the fake
does not rewrite templates). The rate limit is not counted: a test sets ``trigger_rate_limited``
and every ``InvokeTrigger`` is refused as the server refuses a call past it (RESOURCE_EXHAUSTED
with the ``rate-limited`` reason and the wait in its trailers).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.callback_addresses import refusal, refusal_message
from ccs.errors import REASON_KEY, REASON_RATE_LIMITED, RETRY_AFTER_KEY
from ccs.testing.apps import AppsFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as R
from ccs.v1 import triggers_pb2 as T

__all__ = ["TriggersFake"]

_ACTIONS = {T.TRIGGER_ACTION_REDEPLOY: "redeploy", T.TRIGGER_ACTION_UPDATE_IMAGE: "update-image",
            T.TRIGGER_ACTION_SCALE: "scale"}


class TriggersFake(AppsFake):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.triggers: dict[tuple[str, str, str], T.Trigger] = {}
        self.trigger_secrets: dict[tuple[str, str, str], str] = {}
        self.trigger_rate_limited = False

    async def _trigger(self, ctx: Ctx, request: Any) -> tuple[tuple[str, str, str], T.Trigger]:
        await self._auth(ctx)
        await self._name(ctx, "cluster", request.cluster)
        await self._name(ctx, "application", request.application)
        await self._name(ctx, "name", request.name)
        key = (request.cluster, request.application, request.name)
        if key not in self.triggers:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"trigger '{request.application}/{request.name}' not found")
        return key, self.triggers[key]

    async def CreateTrigger(self, request: Any, context: Ctx) -> T.CreateTriggerResponse:
        await self._auth(context)
        cluster = await self._name(context, "cluster", request.cluster)
        app = await self._name(context, "application", request.application)
        name = await self._name(context, "name", request.name)
        if request.action not in _ACTIONS:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"action: must be one of {', '.join(_ACTIONS.values())}")
        if request.action == T.TRIGGER_ACTION_REDEPLOY:
            if request.service:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                           "service: a redeploy trigger acts on the whole application; leave it out")
        else:
            await self._name(context, "service", request.service)
        url = request.callback_url
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                           "callback_url: must be an http:// or https:// URL with a host")
            why = await _address_refusal(parts.hostname or "", parts.port or 80)
            if why:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT, f"callback_url: {why}")
        found = await self._get(context, ("application", cluster, app), "application", app)
        if request.service:
            await self._get(context, ("service", cluster, app, request.service), "service",
                            f"{app}/{request.service}")
        key = (cluster, app, name)
        if key in self.triggers:
            await fail(context, grpc.StatusCode.ALREADY_EXISTS, f"trigger '{app}/{name}' already exists")
        now = Timestamp()
        now.GetCurrentTime()
        self.revision += 1
        trigger = T.Trigger(meta=R.Meta(id=secrets.token_hex(8), name=name, created_at=now, updated_at=now,
                                        resource_version=self.revision),
                            cluster=cluster, application=app, action=request.action, service=request.service,
                            callback_url=url, secret_version=1, application_id=found.meta.id, rotated_at=now)
        self.triggers[key] = trigger
        self.trigger_secrets[key] = secrets.token_urlsafe(32)
        return T.CreateTriggerResponse(trigger=trigger, secret=self.trigger_secrets[key])

    async def ListTriggers(self, request: Any, context: Ctx) -> T.ListTriggersResponse:
        await self._auth(context)
        await self._name(context, "cluster", request.cluster)
        if request.application:
            await self._name(context, "application", request.application)
        found = [t for (c, a, _), t in sorted(self.triggers.items())
                 if c == request.cluster and (not request.application or a == request.application)]
        return T.ListTriggersResponse(triggers=found)

    async def DeleteTrigger(self, request: Any, context: Ctx) -> T.DeleteTriggerResponse:
        key, _ = await self._trigger(context, request)
        del self.triggers[key], self.trigger_secrets[key]
        self.revision += 1
        return T.DeleteTriggerResponse()

    async def RotateTrigger(self, request: Any, context: Ctx) -> T.CreateTriggerResponse:
        key, trigger = await self._trigger(context, request)
        self.revision += 1
        trigger.secret_version += 1
        trigger.rotated_at.GetCurrentTime()
        trigger.meta.resource_version = self.revision
        self.trigger_secrets[key] = secrets.token_urlsafe(32)
        return T.CreateTriggerResponse(trigger=trigger, secret=self.trigger_secrets[key])

    async def InvokeTrigger(self, request: Any, context: Ctx) -> T.TriggerResult:
        await self._auth(context)
        for field in ("cluster", "application", "name"):
            await self._name(context, field, getattr(request, field))
        if self.trigger_rate_limited:  # the server counts it before anything is read
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"trigger {request.application}/{request.name}: more than 1 calls a second "
                                "(bursts of 10); retry in 1.0s",
                                ((REASON_KEY, REASON_RATE_LIMITED), (RETRY_AFTER_KEY, "1.0")))
        trigger = self.triggers.get((request.cluster, request.application, request.name))
        if trigger is None:
            await fail(context, grpc.StatusCode.NOT_FOUND,
                       f"no trigger {request.application}/{request.name} in cluster {request.cluster}")
        if trigger.action == T.TRIGGER_ACTION_UPDATE_IMAGE:
            await fail(context, grpc.StatusCode.FAILED_PRECONDITION,
                       "the fake does not run update-image triggers (it does not rewrite templates)")
        if trigger.action == T.TRIGGER_ACTION_SCALE:
            if not request.has_replicas:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "replicas: scale needs the number of replicas")
            scale = api_pb2.ScaleServiceRequest(cluster=request.cluster, application=request.application,
                                                name=trigger.service, replicas=request.replicas)
            svc = await self.ScaleService(scale, context)
            return T.TriggerResult(trigger=request.name, result="scaled", revision=svc.meta.resource_version,
                                   message=f"service {request.application}/{trigger.service}: "
                                           f"{request.replicas} replicas")
        app = await self._get(context, ("application", request.cluster, request.application), "application",
                              request.application)
        return T.TriggerResult(trigger=request.name, result="unchanged", revision=app.revision,
                               message=f"revision {app.revision}: no service changed, no release")


async def _address_refusal(host: str, port: int) -> str:
    """The server's check of a callback's addresses (as a server without
    ``--allow-private-callbacks``): the host resolved, every address judged by the shared rule."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            return f"host {host!r} does not resolve ({e.strerror or e})"
        addresses = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
    for ip in addresses:
        why = refusal(ip, allow_private=False)
        if why:
            return refusal_message(host, ip, why)
    return ""
