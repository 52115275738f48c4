"""``ccs-agent``: the node agent process (argument parsing, logging, signals; the rest is Agent)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import ipaddress
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from ccs import log_setup, option_sources
from ccs.config import ConfigError as ClientConfigError
from ccs.config import load_config
from ccs.join_token import JoinTokenError, parse_servers
from ccs.join_token import parse as parse_token
from ccs.metrics_endpoint import MetricsEndpoint
from ccs.metrics_listen import MetricsListenError, parse_metrics_listen
from ccs.version import version

from .agent import Agent
from .config import ConfigError, default_state_dir, detect_address, parse_labels
from .dispatcher_client import AgentError
from .metrics import AgentMetrics
from .network import DEFAULT_RESOLVER_ADDRESS
from .router import Router, RouterSettings

if TYPE_CHECKING:
    from .network.fabric import LocalEndpoint, NetworkFabric

EXIT_USAGE = 2
EXIT_FATAL = 3


#: The routes' certificate files (chains and keys): under /run, which is memory (tmpfs), so a
#: key never reaches a disk; one directory per node name (several agents on one host).
ROUTER_TLS_ROOT = Path("/run/ccs/router-tls")
#: The router listens on every IPv4 address by default: a node's ingress answers on its LAN
#: address, on a public one and on loopback alike.
DEFAULT_ROUTER_BIND = "0.0.0.0"

#: Options whose values never appear in an error or a log line.
SECRET_OPTIONS = frozenset({"join-token"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ccs-agent", description="The ccs node agent.")
    p.add_argument("--version", action="version", version=f"ccs-agent {version()}")
    option_sources.add_config_option(p, option_sources.AGENT_PREFIX)
    p.add_argument("--server", help="host:port of the ccs API servers, comma-separated (a:7443,b:7443): the agent "
                   "fails over among them, then the join token's, and learns the others from the server "
                   "(default: the join token's servers, else the current client context)")
    p.add_argument("--join-token", help="the cluster's join token (needed on first start only); it carries the "
                   "fingerprint of the CA the server must show before the token is sent; prefer "
                   "CCS_AGENT_JOIN_TOKEN or the config file: a flag shows in ps")
    p.add_argument("--insecure", action="store_true",
                   help="plaintext and a bearer credential, for a server started with --insecure (development)")
    p.add_argument("--docker-host", help="Docker Engine URL (default: DOCKER_HOST or the local socket)")
    p.add_argument("--name", default=socket.gethostname(), help="node name (default: the hostname)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="node label (repeat)")
    p.add_argument("--address", help="address other hosts reach this node at (default: detected)")
    p.add_argument("--state-dir", type=Path, help="where the node credential is kept")
    p.add_argument(
        "--router-port", type=int, default=9080, help="port of this node's HTTP router (default: 9080)"
    )
    p.add_argument(
        "--router-bind", default=DEFAULT_ROUTER_BIND, metavar="ADDRESS",
        help="address the router's ports listen on (default: all IPv4 addresses, 0.0.0.0, as a node's "
        "ingress; give the node address to keep it off loopback and other interfaces)",
    )
    p.add_argument(
        "--router-https-port", type=int, default=9443,
        help="port of this node's HTTPS router, for routes that name a certificate (default: 9443)",
    )
    p.add_argument(
        "--no-router", action="store_true",
        help="do not run the HAProxy router (default: run it when the haproxy binary is installed)",
    )
    p.add_argument(
        "--resolver-address", default=DEFAULT_RESOLVER_ADDRESS, metavar="IPV4",
        help="address of this node's DNS resolver, the DNS server of every container: service names "
        f"resolve cluster-wide (default: {DEFAULT_RESOLVER_ADDRESS}; '' turns it off, and service names "
        "then resolve only among containers on the same node)",
    )
    p.add_argument(
        "--metrics-listen", default="127.0.0.1:9465", metavar="HOST:PORT",
        help="where Prometheus scrapes the agent's /metrics (default 127.0.0.1:9465; 'off' turns it off)",
    )
    p.add_argument(
        "--router-metrics-port", type=int, default=9466, metavar="PORT",
        help="port on 127.0.0.1 where the router's HAProxy serves its built-in Prometheus exporter at "
        "/metrics (default 9466; 0 turns it off)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    return p


def build_router(
    args: argparse.Namespace, state_dir: Path, metrics: AgentMetrics | None = None
) -> Router | None:
    """The node's HAProxy router, listening on ``--router-bind``; None when off or not installed."""
    if args.no_router:
        return None
    binary = shutil.which("haproxy")
    if binary is None:
        structlog.get_logger("ccs.agent").warning("haproxy not found: running without the HTTP router")
        return None
    try:
        settings = RouterSettings(
            state_dir=state_dir / "router", bind_address=args.router_bind, port=args.router_port,
            https_port=args.router_https_port, tls_dir=ROUTER_TLS_ROOT / args.name,
            metrics_port=args.router_metrics_port,
        )
    except ValueError as exc:
        raise ConfigError(f"--router-port/--router-https-port/--router-metrics-port/--router-bind: {exc}") from exc
    return Router(settings, binary=binary, metrics=metrics)


def start_metrics(text: str, metrics: AgentMetrics) -> MetricsEndpoint | None:
    """Serve ``metrics`` where ``--metrics-listen`` says (None when off); ConfigError naming the flag."""
    try:
        where = parse_metrics_listen(text)
    except MetricsListenError as exc:
        raise ConfigError(str(exc)) from None
    if where is None:
        return None
    try:
        return MetricsEndpoint(metrics.registry, *where)
    except OSError as exc:
        raise ConfigError(f"--metrics-listen: cannot listen on {text}: {exc.strerror or exc}") from None


def resolver_address(text: str) -> str:
    """The resolver address ("" when off); ConfigError for anything but an IPv4 address."""
    if not text:
        return ""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ConfigError(f"--resolver-address: expected an IPv4 address or '', got {text!r}") from None


def build_network(
    resolver: str,
    service_dns: Callable[[str], Sequence[str]] | None = None,
    networks_of: Callable[[str], tuple[str, tuple[str, ...]] | None] | None = None,
    endpoints: Callable[[], Iterable[LocalEndpoint]] | None = None,
) -> NetworkFabric:
    """The node's part of the cluster's application networks, with its resolver unless off;
    `service_dns` gives a container's own Compose `dns` servers by its address, `networks_of`
    its application and Compose networks; `endpoints` the local containers on several
    networks (routed inside)."""
    from .network.fabric import NetworkFabric
    from .network.plan import NetKey
    from .network.resolver import Resolver, Upstreams

    def asker(source: str) -> list[NetKey] | None:
        found = networks_of(source) if networks_of is not None else None
        return None if found is None else [NetKey(found[0], n) for n in found[1]]

    upstreams = Upstreams(own_address=resolver, service_dns=service_dns)
    return NetworkFabric(resolver=Resolver(resolver, upstreams, asker=asker) if resolver else None,
                         endpoints=endpoints)


def resolve_servers(explicit: str | None, join_token: str | None) -> list[str]:
    """--server's list, then the join token's servers; with neither, the client context's server."""
    servers: list[str] = []
    if explicit:
        try:
            servers.extend(parse_servers(explicit, "--server"))
        except JoinTokenError as exc:
            raise ConfigError(str(exc)) from None
    if join_token:
        with contextlib.suppress(JoinTokenError):  # a bad token is refused, naming why, at registration
            servers.extend(s for s in parse_token(join_token).servers if s not in servers)
    return servers or [resolve_server(None)]


def resolve_server(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        _, ctx = load_config().context()
    except ClientConfigError as exc:
        raise ConfigError(f"--server: not given and no usable client context ({exc})") from exc
    return ctx.server


def dump_tasks() -> str:
    """Every pending asyncio task with its await chain: what a stuck agent is waiting for.

    Why: an event loop that is idle in `select` while the agent makes no progress is waiting on
    some await that never completes, and only the tasks' await chains show which one (py-spy
    shows the loop idle). `kill -USR1 <agent pid>` writes this to the log, like Go's SIGQUIT
    dump. The chain is walked by hand (`cr_await`/`ag_await`) because `Task.print_stack` fails on
    frames of compiled coroutines (grpc's) that have no line number.
    """
    out = io.StringIO()
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        out.write(f"--- task {task.get_name()} (cancelling={task.cancelling()})\n")
        obj: object = task.get_coro()
        for _ in range(64):
            frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
            if frame is None:
                out.write(f"    awaiting {obj!r:.200}\n")
                break
            code = frame.f_code
            out.write(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
            nxt = getattr(obj, "cr_await", None) or getattr(obj, "ag_await", None)
            if nxt is None:
                break
            obj = nxt
        out.write(f"    waits on {getattr(task, '_fut_waiter', None)!r:.300}\n")
    return out.getvalue()


async def _serve(agent: Agent) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log = structlog.get_logger("ccs.agent")
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning("asyncio tasks", dump=dump_tasks()))
    run = asyncio.create_task(agent.run())
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
    if stop in done:
        await agent.stop()  # containers keep running; only the agent leaves
    else:
        stop.cancel()
    await run


def main(argv: list[str] | None = None) -> None:
    resolved = option_sources.parse(build_parser(), argv, prefix=option_sources.AGENT_PREFIX, program="ccs-agent",
                                    secret=SECRET_OPTIONS)
    args = resolved.namespace
    log_setup.setup(args.log_level, args.log_format)
    log = structlog.get_logger("ccs.agent")
    if resolved.sources:  # names only: the join token is one of them
        log.info("options from the environment or the config file", options=resolved.sources)
    try:
        servers = resolve_servers(args.server, args.join_token)
        server = servers[0]
        labels = parse_labels(args.label)
        address = args.address or detect_address(server)
        state_dir = args.state_dir or default_state_dir(args.name)
        metrics = AgentMetrics()
        router = build_router(args, state_dir, metrics)
        resolver = resolver_address(args.resolver_address)
        endpoint = start_metrics(args.metrics_listen, metrics)
    except ConfigError as exc:
        print(f"ccs-agent: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    import docker  # the docker SDK only where a real engine is used

    from nodeagent.executor import DEFAULT_CONCURRENCY
    from nodeagent.runtime.docker_engine import DockerRuntime
    from nodeagent.runtime.metered import MeteredRuntime

    # One connection and one worker thread per concurrent container operation: a 30-replica
    # deploy then starts its containers as fast as `docker run` would, not 8 at a time.
    pool = DEFAULT_CONCURRENCY + 8  # + events, logs and probes
    if args.docker_host:
        client = docker.DockerClient(base_url=args.docker_host, max_pool_size=pool)
    else:
        client = docker.from_env(max_pool_size=pool)
    # The resolver asks the agent (made below, before any query) for per-container upstreams,
    # the networks of a container and the endpoints of the cluster networks.
    network = build_network(resolver, lambda source: agent.service_dns(source),
                            lambda source: agent.networks_of(source), lambda: agent.endpoints())
    runtime = MeteredRuntime(DockerRuntime(
        client, max_workers=pool, dns=(resolver,) if resolver else (), on_network_created=network.network_created,
        on_docker_error=metrics.docker_error,
    ), metrics)
    agent = Agent(
        servers, runtime=runtime, name=args.name, join_token=args.join_token, labels=labels,
        address=address, state_dir=state_dir, router=router, network=network, insecure=args.insecure,
        metrics=metrics,
    )
    log.info("starting", servers=servers, node=args.name, address=address, state_dir=str(state_dir),
             tls=not args.insecure, metrics=endpoint.url if endpoint is not None else None,
             router_metrics=f"http://127.0.0.1:{args.router_metrics_port}/metrics"
             if router is not None and args.router_metrics_port else None)
    if args.insecure:
        log.warning("--insecure: plaintext to the control plane, the node credential travels in clear")
    try:
        asyncio.run(_serve(agent))
    except (AgentError, ConfigError) as exc:
        log.error("fatal", error=str(exc))
        sys.exit(EXIT_FATAL)
    finally:
        asyncio.run(runtime.aclose())
        if endpoint is not None:
            endpoint.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
