"""The triggers' parts put together for ``ccs-server``: the gRPC service and the HTTPS port."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import structlog

from ccs.v1 import triggers_pb2, triggers_pb2_grpc
from controlplane.api.apps import ApplicationServicer
from controlplane.api.services import ServiceServicer
from controlplane.http.server import HttpsEndpoint, build_app, parse_listen
from controlplane.pki.server_tls import ServerTls
from controlplane.replicas import advertised_host, join_host_port
from controlplane.secrets.store import SecretStore
from controlplane.store.etcd import Etcd
from controlplane.triggers.actions import Actions
from controlplane.triggers.invoke import Invoker
from controlplane.triggers.records import TriggerStore
from controlplane.triggers.routes import routes
from controlplane.triggers.servicer import TriggerServicer

log = structlog.get_logger("ccs.triggers")


class Triggers:
    SERVICE_NAME = triggers_pb2.DESCRIPTOR.services_by_name["TriggerService"].full_name

    def __init__(self, etcd: Etcd, secrets: SecretStore, apps: ApplicationServicer, services: ServiceServicer,
                 http_listen: str, advertise: Sequence[str], interfaces: Sequence[str],
                 tls: ServerTls | None) -> None:
        self.listen = parse_listen(http_listen)
        self.advertise, self.interfaces, self.tls = list(advertise), list(interfaces), tls
        self.store = TriggerStore(etcd, secrets)
        self.invoker = Invoker(self.store, Actions(etcd, apps, services), secrets.keyring)
        self.servicer = TriggerServicer(etcd, secrets, self.invoker)
        self.endpoint: HttpsEndpoint | None = None

    def add_to(self, server: grpc.aio.Server) -> None:
        triggers_pb2_grpc.add_TriggerServiceServicer_to_server(self.servicer, server)

    async def start(self) -> int:
        """Listen on ``--http-listen`` (unless off); the port bound, 0 when off."""
        if self.listen is None:
            log.info("HTTPS endpoint off (--http-listen off): triggers can be managed, not called over HTTPS")
            return 0
        host, port = self.listen
        pems = self.tls.api_key_and_chain if self.tls is not None else None
        self.endpoint = HttpsEndpoint(build_app(routes(self.invoker)), host, port, pems)
        bound = await self.endpoint.start()
        scheme = "https" if self.tls is not None else "http"
        public = advertised_host(f"{host}:{bound}", self.advertise, self.interfaces)
        self.invoker.base_url = f"{scheme}://{join_host_port(public, bound)}"
        log.info("HTTPS endpoint listening", address=f"{host}:{bound}", url=self.invoker.base_url)
        return bound

    async def stop(self) -> None:
        await self.invoker.stop()
        if self.endpoint is not None:
            await self.endpoint.stop()
