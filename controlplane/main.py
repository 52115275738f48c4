"""``ccs-server``: the ccs control plane."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import structlog

from ccs import log_setup, option_sources
from ccs.durations import DurationError, parse_seconds
from ccs.metrics_listen import MetricsListenError, parse_metrics_listen
from ccs.version import version
from controlplane import backup_cli, gc_tuning
from controlplane.compose import DEFAULT_PARSE_CPU_SECONDS
from controlplane.http.server import parse_listen
from controlplane.server import ServerOptions, serve


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/ccs")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ccs"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ccs-server",
        description="The ccs control plane: gRPC API over etcd. Without --etcd it starts and "
        "supervises an embedded single-member etcd in its state directory. "
        "Also: ccs-server backup FILE, ccs-server restore FILE (see their --help).",
    )
    p.add_argument("--version", action="version", version=f"ccs-server {version()}")
    option_sources.add_config_option(p, option_sources.SERVER_PREFIX)
    p.add_argument(
        "--listen",
        default="0.0.0.0:7443",
        help="gRPC listen address (default 0.0.0.0:7443)",
    )
    p.add_argument(
        "--etcd",
        default="",
        help="comma-separated etcd client URLs; empty starts an embedded etcd",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where the embedded etcd and the admin token live",
    )
    p.add_argument(
        "--client-config",
        type=Path,
        default=None,
        help="client config to write the admin context into on first start "
        "(default: $CCS_CONFIG or ~/.config/ccs/config.yaml)",
    )
    p.add_argument("--context", default="local", help="name of the context written on first start")
    p.add_argument("--embedded-etcd-port", type=int, default=23790)
    p.add_argument("--etcd-max-txn-ops", type=int, default=128, metavar="N",
                   help="operations the external etcd accepts in one transaction (its --max-txn-ops, "
                   "default 128); an application's services are written in one transaction, so "
                   "this caps services per application (the embedded etcd allows 2048)")
    p.add_argument("--etcd-wait", type=float, default=30.0,
                   help="seconds to wait for etcd at start-up before giving up")
    p.add_argument(
        "--shutdown-grace", type=float, default=10.0, help="seconds in-flight RPCs get to finish on SIGTERM"
    )
    p.add_argument("--heartbeat-period", type=float, default=5.0,
                   help="seconds between agent heartbeats (the server tells agents); a node unheard for "
                        "2 periods + 1 s is DOWN")
    p.add_argument("--down-grace", type=float, default=5.0,
                   help="seconds a node may stay down before its containers are rescheduled (so a short "
                        "network blip moves nothing)")
    p.add_argument("--leader-ttl", type=int, default=10,
                   help="leader lease TTL in seconds; another replica takes over within about this")
    p.add_argument("--no-reconcilers", action="store_true",
                   help="serve the API only; never run reconcilers (for read replicas and tests)")
    p.add_argument("--template-cpu-seconds", type=float, default=DEFAULT_PARSE_CPU_SECONDS,
                   help="CPU seconds one template parse may use before it is refused")
    tls = p.add_argument_group("TLS and identities (see the README's Security section)")
    tls.add_argument("--insecure", action="store_true",
                     help="plaintext API, bearer node credentials: development only (warned at every start)")
    tls.add_argument("--node-listen", default="0.0.0.0:7444", metavar="ADDR",
                     help="mutual-TLS listener for node agents (default 0.0.0.0:7444; port 0 picks one)")
    tls.add_argument("--advertise", action="append", default=[], metavar="HOST[,HOST...]",
                     help="a name or address clients reach this server at, added to its certificate "
                     "(repeat or comma-separate; host names, localhost and this host's interface "
                     "addresses are always in it)")
    tls.add_argument("--master-key-file", type=Path, default=None, metavar="PATH",
                     help="key that wraps the cluster CA key in etcd (default "
                     "STATE/master.key, generated on first start, 0600); every server of a control "
                     "plane needs the same file")
    tls.add_argument("--secrets-key-file", type=Path, default=None, metavar="PATH",
                     help="key that wraps the secrets data keys in etcd (default STATE/secrets.key, generated "
                     "on first start, 0600); every server of a control plane needs the same file")
    tls.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                     help="the API port's certificate chain (certificate, intermediates, root) instead "
                     "of one from the cluster CA")
    tls.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="its private key")
    tls.add_argument("--client-ca", type=Path, default=None, metavar="PEM",
                     help="require API clients to present a certificate from these CAs")
    tls.add_argument("--node-cert-ttl", default="90d", metavar="DURATION",
                     help="lifetime of node certificates (default 90d; agents renew at two thirds)")
    tls.add_argument("--etcd-cacert", type=Path, default=None, metavar="PEM",
                     help="CA of the etcd members' certificates: etcd over TLS (https:// endpoints)")
    tls.add_argument("--etcd-cert", type=Path, default=None, metavar="PEM",
                     help="client certificate for etcd (its --client-cert-auth)")
    tls.add_argument("--etcd-key", type=Path, default=None, metavar="PEM", help="its private key")
    p.add_argument("--allow-private-callbacks", action="store_true",
                   help="let trigger callbacks go to private addresses (RFC 1918, 100.64/10, IPv6 ULA), "
                   "for a CI server on the private network; loopback, link-local and metadata "
                   "addresses are refused always")
    p.add_argument("--http-listen", default=":7480", metavar="ADDR",
                   help="HTTPS port for deploy triggers, with the API's certificate (default :7480; "
                   "HOST:PORT, port 0 picks one; 'off' disables it)")
    p.add_argument("--audit-retention", default="30d", metavar="DURATION",
                   help="how long audit records are kept (default 30d; e.g. 90d, 12h)")
    p.add_argument("--metrics-listen", default="127.0.0.1:9464", metavar="HOST:PORT",
                   help="where Prometheus scrapes /metrics (default 127.0.0.1:9464; 'off' turns it off)")
    p.add_argument("--gc-young-threshold", type=int, default=gc_tuning.DEFAULT_YOUNG_THRESHOLD, metavar="N",
                   help="net allocations between collections of the Python garbage collector's young "
                        f"generation (default {gc_tuning.DEFAULT_YOUNG_THRESHOLD:,}; 0: CPython's own, 700)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    return p


def parse_args(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> ServerOptions:
    """The options from the command line, then ``CCS_SERVER_<OPTION>`` variables, then ``--config``'s
    file (``ccs.option_sources``); each checked, naming the option."""
    p = build_parser()
    resolved = option_sources.parse(p, argv, env, prefix=option_sources.SERVER_PREFIX, program="ccs-server")
    a = resolved.namespace
    if a.gc_young_threshold < 0:
        p.error("--gc-young-threshold: must be 0 (CPython's own thresholds) or more")
    if a.etcd_max_txn_ops < 128:
        p.error("--etcd-max-txn-ops: must be at least 128, etcd's default (reconcilers write up to "
                "100 keys and their events in one transaction)")
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key: give both or neither")
    if a.insecure and (a.tls_cert or a.client_ca):
        p.error("--insecure: cannot be combined with --tls-cert/--tls-key/--client-ca")
    if (a.etcd_cert is None) != (a.etcd_key is None):
        p.error("--etcd-cert and --etcd-key: give both or neither")
    if a.etcd_cert is not None and a.etcd_cacert is None:
        p.error("--etcd-cert: needs --etcd-cacert (etcd over TLS)")
    if (a.etcd_cacert is not None) and not a.etcd:
        p.error("--etcd-cacert: only with --etcd (the embedded etcd listens on loopback in plaintext)")
    try:
        node_cert_ttl = parse_seconds(a.node_cert_ttl, bare_seconds=True)
    except ValueError as exc:
        p.error(f"--node-cert-ttl: {exc}")
    if node_cert_ttl < 2:
        p.error("--node-cert-ttl: at least 2 seconds")
    advertise = [h.strip() for item in a.advertise for h in item.split(",") if h.strip()]
    try:
        audit_retention = parse_seconds(a.audit_retention)
    except DurationError as e:
        p.error(f"--audit-retention: {e}")
    if audit_retention <= 0:
        p.error("--audit-retention: must be more than 0")
    try:
        parse_listen(a.http_listen)
    except ValueError as e:
        p.error(f"--http-listen: {e}")
    try:
        metrics_listen = parse_metrics_listen(a.metrics_listen)
    except MetricsListenError as e:
        p.error(str(e))
    log_setup.setup(a.log_level, a.log_format)
    if resolved.sources:  # names only: a value may be a secret
        structlog.get_logger("ccs.server").info("options from the environment or the config file",
                                                 options=resolved.sources)
    return ServerOptions(
        listen=a.listen,
        etcd_endpoints=[e for e in a.etcd.split(",") if e.strip()],
        state_dir=a.state_dir,
        client_config=a.client_config,
        context_name=a.context,
        embedded_etcd_port=a.embedded_etcd_port,
        shutdown_grace=a.shutdown_grace,
        etcd_wait=a.etcd_wait,
        heartbeat_period=a.heartbeat_period,
        down_grace=a.down_grace,
        leader_ttl=a.leader_ttl,
        run_reconcilers=not a.no_reconcilers,
        etcd_max_txn_ops=a.etcd_max_txn_ops,
        template_cpu_seconds=a.template_cpu_seconds,
        insecure=a.insecure,
        node_listen=a.node_listen,
        advertise=advertise,
        master_key_file=a.master_key_file,
        secrets_key_file=a.secrets_key_file,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
        client_ca=a.client_ca,
        node_cert_ttl=node_cert_ttl,
        etcd_cacert=a.etcd_cacert,
        etcd_cert=a.etcd_cert,
        etcd_key=a.etcd_key,
        audit_retention=audit_retention,
        http_listen=a.http_listen,
        allow_private_callbacks=a.allow_private_callbacks,
        metrics_listen=metrics_listen,
        gc_young_threshold=a.gc_young_threshold,
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in backup_cli.COMMANDS:
        server_keys = [name for name, _ in option_sources.options(build_parser())]
        sys.exit(backup_cli.main(args[0], args[1:], state_dir=default_state_dir(), server_keys=server_keys))
    opts = parse_args(args)
    try:
        asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass
    except Exception as e:
        print(f"ccs-server: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
