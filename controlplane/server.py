"""Process wiring for ``ccs-server``: etcd, auth, servicers, health, reflection, signals."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ccs.interfaces import interface_addresses
from ccs.message_size import SERVER_OPTIONS
from ccs.metrics_endpoint import MetricsEndpoint
from ccs.v1 import agent_pb2, api_pb2, api_pb2_grpc
from controlplane import gc_tuning
from controlplane.access.audit import AuditLog
from controlplane.access.gate import AccessGate
from controlplane.api.apps import ApplicationServicer
from controlplane.api.audit import AuditServicer
from controlplane.api.clusters import ClusterServicer
from controlplane.api.events import EventServicer
from controlplane.api.networks import NetworkServicer
from controlplane.api.nodes import NodeServicer
from controlplane.api.registry import RegistryServicer
from controlplane.api.releases import ReleaseServicer
from controlplane.api.secrets import ConfigServicer, SecretServicer
from controlplane.api.services import ContainerServicer, RouteServicer, ServiceServicer
from controlplane.api.tokens import TokenServicer
from controlplane.auth import AuthInterceptor, TokenVerifier, bootstrap_admin
from controlplane.client_config import client_address, refresh_client_config, write_client_config, write_public
from controlplane.compose import DEFAULT_PARSE_CPU_SECONDS
from controlplane.console.wiring import Console
from controlplane.dispatcher.hub import MAP_DELAY, AssignmentHub
from controlplane.dispatcher.liveness import NodeLiveness
from controlplane.dispatcher.logs_relay import LogBroker
from controlplane.dispatcher.servicer import DispatcherServicer
from controlplane.dispatcher.servicer import add_to_server as add_dispatcher_to_server
from controlplane.embedded_etcd import EMBEDDED_MAX_TXN_OPS, PEER_PORT_OFFSET, EmbeddedEtcd
from controlplane.http.server import HttpsEndpoint, build_app, parse_listen, public_url
from controlplane.informer import Informer
from controlplane.janitor import AUDIT_RETENTION_SECONDS, prune_events_forever
from controlplane.leader import LeaderElector
from controlplane.metrics import MetricsInterceptor, ServerMetrics, StateCollector, StateSources, counting_placements
from controlplane.metrics.loop_lag import measure_loop_lag
from controlplane.pki import certs, cluster_ca
from controlplane.pki.issuer import NodeIssuer
from controlplane.pki.node_auth import NodeGuard
from controlplane.pki.server_tls import ServerTls, server_names, strip_port
from controlplane.planner import liveness_deadline
from controlplane.reconcile.orchestrator import Orchestrator
from controlplane.registry.login_cache import LoginCache
from controlplane.registry.logins import Logins
from controlplane.replicas import ReplicaRegistry, advertised_host, join_host_port
from controlplane.request_decoding import RequestDecodingInterceptor
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store.etcd import DEFAULT_MAX_TXN_OPS, Etcd
from controlplane.triggers.wiring import Triggers

log = structlog.get_logger("ccs.server")

SERVICE_NAMES = [
    api_pb2.DESCRIPTOR.services_by_name[n].full_name
    for n in (
        "ClusterService",
        "NodeService",
        "ApplicationService",
        "ServiceService",
        "ContainerService",
        "EventService",
        "NetworkService",
        "TokenService",
        "AuditService",
        "SecretService",
        "ConfigService",
        "RegistryService",
    )
] + [Triggers.SERVICE_NAME] + [agent_pb2.DESCRIPTOR.services_by_name["Dispatcher"].full_name]


@dataclass
class ServerOptions:
    listen: str = "0.0.0.0:7443"
    etcd_endpoints: list[str] = field(default_factory=list)
    state_dir: Path = Path("/var/lib/ccs")
    client_config: Path | None = None
    context_name: str = "local"
    embedded_etcd_port: int = 23790
    shutdown_grace: float = 10.0
    heartbeat_period: float = 5.0
    down_grace: float = 5.0
    leader_ttl: int = 10
    run_reconcilers: bool = True
    etcd_wait: float = 30.0
    # What the external etcd accepts in one transaction (its --max-txn-ops); the embedded
    # etcd is started with EMBEDDED_MAX_TXN_OPS instead.
    etcd_max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    template_cpu_seconds: float = DEFAULT_PARSE_CPU_SECONDS
    # TLS (controlplane/pki). insecure: plaintext API, bearer node credentials (development).
    insecure: bool = False
    node_listen: str = "0.0.0.0:7444"
    advertise: list[str] = field(default_factory=list)
    master_key_file: Path | None = None  # default: state_dir / "master.key"
    secrets_key_file: Path | None = None  # default: state_dir / "secrets.key"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    node_cert_ttl: float = certs.NODE_TTL.total_seconds()
    etcd_cacert: Path | None = None
    etcd_cert: Path | None = None
    etcd_key: Path | None = None
    audit_retention: float = AUDIT_RETENTION_SECONDS
    # The HTTPS port for triggers (controlplane.http): "HOST:PORT", ":PORT", or "off".
    http_listen: str = ":7480"
    # Trigger callbacks may go to private (not globally routable) addresses (triggers.callback_target).
    allow_private_callbacks: bool = False
    # Where Prometheus scrapes (host, port; port 0: a free one); None: no metrics endpoint. The
    # command line's default is 127.0.0.1:9464 (controlplane/main.py).
    metrics_listen: tuple[str, int] | None = None
    # The cyclic GC's young threshold (controlplane.gc_tuning); 0: CPython's own. Process-wide,
    # so only serve() (the ccs-server entry point) applies it, with the freeze after the first list.
    gc_young_threshold: int = gc_tuning.DEFAULT_YOUNG_THRESHOLD


class Server:
    def __init__(self, opts: ServerOptions) -> None:
        self.opts = opts
        self.embedded: EmbeddedEtcd | None = None
        self.etcd: Etcd | None = None
        self.grpc: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.node_port = 0
        self.tls: ServerTls | None = None
        self.informer: Informer | None = None
        self.orchestrator: Orchestrator | None = None
        self.elector: LeaderElector | None = None
        self.replicas: ReplicaRegistry | None = None
        self.liveness: NodeLiveness | None = None
        self.triggers: Triggers | None = None
        self.http: HttpsEndpoint | None = None
        self.http_port = 0
        self.console: Console | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics = ServerMetrics()
        self.metrics_endpoint: MetricsEndpoint | None = None

    async def start(self) -> None:
        opts = self.opts
        endpoints = opts.etcd_endpoints
        if not endpoints:
            self.embedded = EmbeddedEtcd(
                opts.state_dir / "etcd",
                client_port=opts.embedded_etcd_port,
                peer_port=opts.embedded_etcd_port + PEER_PORT_OFFSET,
            )
            await self.embedded.start()
            endpoints = [self.embedded.client_url]
        max_ops = EMBEDDED_MAX_TXN_OPS if self.embedded else opts.etcd_max_txn_ops
        self.etcd = Etcd(endpoints, max_txn_ops=max_ops, cacert=opts.etcd_cacert, cert=opts.etcd_cert,
                         key=opts.etcd_key)
        self.etcd.on_txn = self.metrics.observe_txn
        await self.etcd.wait_ready(opts.etcd_wait)
        log.info("etcd ready", endpoints=self.etcd.endpoints, tls=self.etcd.tls)
        master_key_file = opts.master_key_file or opts.state_dir / "master.key"
        keys = await cluster_ca.load_or_create(self.etcd, master_key_file, dt.datetime.now(dt.UTC))
        log.info("cluster CA " + ("created" if keys.created else "loaded"), fingerprint=keys.fingerprint,
                 master_key_file=str(master_key_file))
        secrets_key_file = opts.secrets_key_file or opts.state_dir / "secrets.key"
        self.secrets = SecretStore(self.etcd, await Keyring.load_or_create(self.etcd, secrets_key_file))
        log.info("secrets key loaded", secrets_key_file=str(secrets_key_file))
        if opts.insecure:
            log.warning("--insecure: the API listens in plaintext; tokens and node credentials cross the "
                        "network in clear. For development only.")
        else:
            listen_hosts = [strip_port(opts.listen), strip_port(opts.node_listen)]
            self.tls = ServerTls(keys, server_names(listen_hosts, opts.advertise), cert_file=opts.tls_cert,
                                 key_file=opts.tls_key, client_ca_file=opts.client_ca)
            log.info("TLS", names=self.tls.names, api_root_fingerprint=self.tls.api_root_fingerprint,
                     own_certificate=opts.tls_cert is not None, client_ca=opts.client_ca is not None)
            # Before any port is bound (grpc accepts connections from add_secure_port on, not
            # only from start): whoever sees the port open finds the file.
            await asyncio.to_thread(write_public, opts.state_dir / "ca.crt", self.tls.api_root_pem)

        self.informer = Informer(self.etcd)
        await self.informer.start()
        verifier = TokenVerifier(self.etcd)
        guard = NodeGuard(self.etcd) if self.tls is not None else None
        if guard is not None:
            guard.follow(self.informer.follow_keys)
        self.hub = AssignmentHub(self.informer, int(opts.heartbeat_period * 1000), map_delay=MAP_DELAY)
        self.broker = LogBroker()
        self._tasks.append(asyncio.create_task(verifier.follow_changes()))
        gate = AccessGate(AuditLog(self.etcd))
        # Message size limits: see ccs.message_size for the figures behind them.
        server = grpc.aio.server(
            # One server, both ports (API and node): the interceptors and the limits apply to each.
            # Metrics first: it counts what the others refuse, with the code they refuse with.
            interceptors=[MetricsInterceptor(self.metrics), AuthInterceptor(verifier, gate, guard),
                          RequestDecodingInterceptor()],
            options=[("grpc.so_reuseport", 0), *SERVER_OPTIONS],
        )
        etcd = self.etcd
        if self.tls is not None:  # both ports first: the node port goes into registrations
            self.port = server.add_secure_port(opts.listen, self.tls.api_credentials())
            self.node_port = server.add_secure_port(opts.node_listen, self.tls.node_credentials()) if self.port else 0
            if self.port and not self.node_port:
                raise RuntimeError(f"cannot listen on {opts.node_listen} (--node-listen)")
        else:
            self.port = server.add_insecure_port(opts.listen)
        if not self.port:
            raise RuntimeError(f"cannot listen on {opts.listen}")
        interfaces = await asyncio.to_thread(interface_addresses)
        api_host = advertised_host(opts.listen, opts.advertise, interfaces)
        node_host = advertised_host(opts.node_listen, opts.advertise, interfaces)
        self.replicas = ReplicaRegistry(etcd, join_host_port(api_host, self.port),
                                        join_host_port(node_host, self.node_port) if self.node_port else "")
        issuer = NodeIssuer(keys, self.tls.api_root_fingerprint if self.tls else keys.fingerprint,
                            node_port=self.node_port, ttl=dt.timedelta(seconds=opts.node_cert_ttl),
                            tls=self.tls is not None)
        self.liveness = NodeLiveness(etcd, self.replicas.id,
                                     liveness_deadline(dt.timedelta(seconds=opts.heartbeat_period)).total_seconds(),
                                     blocking_channel=etcd.blocking_channel)
        api_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterServicer(etcd, issuer, self.replicas), server)
        api_pb2_grpc.add_NodeServiceServicer_to_server(NodeServicer(etcd, self.informer), server)
        apps = ApplicationServicer(etcd, self.informer, opts.template_cpu_seconds, self.secrets)
        api_pb2_grpc.add_ApplicationServiceServicer_to_server(apps, server)
        batch = max(1, min(100, opts.etcd_max_txn_ops) // 2)
        secret_api = SecretServicer(etcd, self.secrets, apps.refresh, batch)
        api_pb2_grpc.add_SecretServiceServicer_to_server(secret_api, server)
        api_pb2_grpc.add_ConfigServiceServicer_to_server(ConfigServicer(etcd, self.secrets, apps.refresh), server)
        services = ServiceServicer(etcd, self.informer)
        api_pb2_grpc.add_ServiceServiceServicer_to_server(services, server)
        self.triggers = Triggers(etcd, self.secrets, apps, services, self.informer,
                                 allow_private_callbacks=opts.allow_private_callbacks)
        await self.triggers.start()
        self.triggers.add_to(server)
        api_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(etcd, Logins(self.secrets)), server)
        api_pb2_grpc.add_ContainerServiceServicer_to_server(
            ContainerServicer(etcd, self.informer, self.broker), server
        )
        api_pb2_grpc.add_EventServiceServicer_to_server(EventServicer(etcd), server)
        api_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkServicer(etcd), server)
        api_pb2_grpc.add_ReleaseServiceServicer_to_server(ReleaseServicer(etcd, self.informer), server)
        api_pb2_grpc.add_RouteServiceServicer_to_server(RouteServicer(etcd, self.hub), server)
        api_pb2_grpc.add_TokenServiceServicer_to_server(TokenServicer(etcd, verifier), server)
        api_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(etcd), server)
        login_cache = LoginCache(Logins(self.secrets))
        self._tasks.append(asyncio.create_task(login_cache.follow()))
        add_dispatcher_to_server(
            DispatcherServicer(etcd, self.informer, self.hub, verifier, self.broker, issuer, guard,
                               files=self.secrets, replicas=self.replicas, logins=login_cache,
                               liveness=self.liveness), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        ca_pem = self.tls.api_root_pem if self.tls else None
        self._start_metrics()
        await self.replicas.start()
        await self.liveness.start()
        await self._start_http(interfaces, server)  # before gRPC: a trigger URL answered already works
        await server.start()
        self.grpc = server
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        listen_host = opts.listen.rsplit(":", 1)[0]
        node_host = opts.node_listen.rsplit(":", 1)[0]
        log.info("ccs-server listening", address=f"{listen_host}:{self.port}",
                 node_address=f"{node_host}:{self.node_port}" if self.node_port else None,
                 tls=self.tls is not None)

        token = await bootstrap_admin(etcd)
        if token is not None:
            await write_client_config(opts, client_address(opts.listen, self.port), token, ca_pem)
        else:
            await refresh_client_config(opts, client_address(opts.listen, self.port), ca_pem)
        self._tasks.append(asyncio.create_task(prune_events_forever(etcd, audit_retention=opts.audit_retention)))
        if opts.run_reconcilers:
            registry = self.replicas
            assert registry is not None  # made above
            orchestrator = Orchestrator(etcd, self.informer, heartbeat_period=opts.heartbeat_period,
                                        down_grace=opts.down_grace, replicas=registry.features)

            async def elected() -> None:
                orchestrator.start()

            orchestrator.on_pass = self.metrics.observe_pass
            self.orchestrator = orchestrator
            self.elector = LeaderElector(etcd, elected, orchestrator.stop, ttl=opts.leader_ttl)
            self.elector.start()

    async def _start_http(self, interfaces: list[str], grpc_server: grpc.aio.Server) -> None:
        """The HTTPS port (``--http-listen``): one starlette app for every feature's routes (the
        triggers' today), served with the API's certificate; nothing when it is off."""
        listen = parse_listen(self.opts.http_listen)
        if listen is None or self.triggers is None:
            log.info("HTTPS endpoint off (--http-listen off): triggers are fired with `ccs trigger run` only")
            return
        host, port = listen
        pems = self.tls.api_key_and_chain if self.tls is not None else None
        # The web console calls this gRPC server with the signed-in token, over a socket of its own.
        assert self.informer is not None
        self.console = Console(grpc_server, tls=self.tls is not None, settled=self.informer.caught_up)
        self.http = HttpsEndpoint(build_app([*self.triggers.routes(), *self.console.routes()]), host, port, pems)
        self.http_port = await self.http.start()
        url = public_url(host, self.http_port, self.tls is not None, self.opts.advertise, interfaces)
        self.triggers.served_at(url)
        log.info("HTTPS endpoint listening", address=f"{host}:{self.http_port}", url=url,
                 console_socket=self.console.socket.target)
    def _start_metrics(self) -> None:
        """Count placements and read the state series from the cache; serve them if asked to."""
        assert self.informer is not None
        self.informer.subscribe(counting_placements(self.metrics.placements, self._leads))
        self._tasks.append(asyncio.create_task(measure_loop_lag(self.metrics.loop_lag), name="loop-lag"))
        self.metrics.registry.register(StateCollector(asyncio.get_running_loop(), StateSources(
            self.informer, agents_connected=self.hub.connected_nodes,
            queue_depth=lambda: self.orchestrator.queue.depth() if self.orchestrator and self._leads() else 0,
            is_leader=self._leads)))
        if self.opts.metrics_listen is None:
            return
        host, port = self.opts.metrics_listen
        try:
            self.metrics_endpoint = MetricsEndpoint(self.metrics.registry, host, port)
        except OSError as e:
            raise RuntimeError(f"cannot listen on {host}:{port} (--metrics-listen): {e.strerror or e}") from e
        log.info("metrics listening", url=self.metrics_endpoint.url)

    def _leads(self) -> bool:
        return self.elector is not None and self.elector.is_leader

    async def stop(self) -> None:
        log.info("shutting down", grace_seconds=self.opts.shutdown_grace)
        with contextlib.suppress(Exception):
            await self.health.enter_graceful_shutdown()
        for t in self._tasks:
            t.cancel()
        if self.replicas is not None:
            await self.replicas.stop()  # agents and join tokens stop naming this replica
        if self.elector is not None:
            await self.elector.stop()
        if self.triggers is not None:
            await self.triggers.stop()
        if self.console is not None:
            self.console.closing()  # open live streams end, so the HTTPS port stops at once
        if self.http is not None:
            await self.http.stop()
        if self.console is not None:
            await self.console.stop()
        if self.grpc is not None:
            # In-flight RPCs get the grace period to finish; new ones are refused.
            await self.grpc.stop(self.opts.shutdown_grace)
        if self.liveness is not None:
            await self.liveness.stop()  # its lease is left to expire: agents move meanwhile
        if self.informer is not None:
            await self.informer.stop()
        if self.etcd is not None:
            await self.etcd.close()
        if self.embedded is not None:
            await self.embedded.stop()
        if self.metrics_endpoint is not None:
            await asyncio.to_thread(self.metrics_endpoint.close)
        log.info("stopped")


async def serve(opts: ServerOptions) -> None:
    server = Server(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gc_tuning.tune(opts.gc_young_threshold)
    try:
        await server.start()
        # The informer has listed the cluster: what the server holds now lives as long as it does.
        gc_tuning.freeze_startup_heap()
        log.info("garbage collector", **gc_tuning.settings())
        await stop.wait()
    finally:
        await server.stop()
