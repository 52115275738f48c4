"""The triggers' parts put together for ``ccs-server``: the gRPC service and the HTTPS routes.

The HTTPS port itself is the server's (:mod:`controlplane.http.server`), shared with whatever
else serves HTTP: this module only hands it its routes and learns the URL it is reached at.
"""

from __future__ import annotations

import grpc
from starlette.routing import BaseRoute

from ccs.v1 import triggers_pb2, triggers_pb2_grpc
from controlplane.api.apps import ApplicationServicer
from controlplane.api.services import ServiceServicer
from controlplane.informer import Informer
from controlplane.secrets.store import SecretStore
from controlplane.store.etcd import Etcd
from controlplane.triggers.actions import Actions
from controlplane.triggers.cache import TriggerCache
from controlplane.triggers.invoke import Invoker
from controlplane.triggers.records import TriggerStore
from controlplane.triggers.routes import routes
from controlplane.triggers.servicer import TriggerServicer


class Triggers:
    SERVICE_NAME = triggers_pb2.DESCRIPTOR.services_by_name["TriggerService"].full_name

    def __init__(self, etcd: Etcd, secrets: SecretStore, apps: ApplicationServicer,
                 services: ServiceServicer, informer: Informer | None = None, *,
                 allow_private_callbacks: bool = False) -> None:
        self.store = TriggerStore(etcd, secrets)
        self.cache = TriggerCache(etcd)
        self.invoker = Invoker(self.store, Actions(etcd, apps, services), secrets.keyring, cache=self.cache,
                               informer=informer, allow_private_callbacks=allow_private_callbacks)
        self.servicer = TriggerServicer(etcd, secrets, self.invoker)

    def add_to(self, server: grpc.aio.Server) -> None:
        triggers_pb2_grpc.add_TriggerServiceServicer_to_server(self.servicer, server)

    def routes(self) -> list[BaseRoute]:
        return list(routes(self.invoker))

    def served_at(self, base_url: str) -> None:
        """The HTTPS port's public URL (trigger and status URLs start with it); never called
        when ``--http-listen`` is off, so the answers then carry no URL."""
        self.invoker.base_url = base_url.rstrip("/")

    async def start(self) -> None:
        """List the triggers and their secrets into the cache, then follow them."""
        await self.cache.start()

    async def stop(self) -> None:
        await self.invoker.stop()
        await self.cache.stop()
