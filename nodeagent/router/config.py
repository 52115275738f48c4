"""RoutingTable -> HAProxy 2.6 configuration. Pure: no I/O, tested with tables.

Rendering choices (each one is there for zero failed requests while containers come and go):
- Client side keep-alive with `option idle-close-on-response`: during a reload the old
  worker answers the request already on an idle keep-alive connection and closes after the
  response, instead of closing the idle connection under a client that is about to write.
- Server side keep-alive with `http-reuse safe` (a client's first request never rides a
  reused server connection), plus `retry-on conn-failure empty-response response-timeout`,
  `retries 3` and `option redispatch 1`: a request that hits a container that just died (or
  a server connection closed at the wrong moment) is retried, on another server.
- `check` (TCP connect, every 2 s) per server: the control plane decides health, but it
  learns of a dead container a heartbeat later; the check stops the retries sooner.
- Routes: Host (any `:port` stripped, case-insensitive; `*.example.com` matches
  subdomains; empty matches any host) and path prefix on segment boundaries (`/api` matches
  `/api` and `/api/x`, not `/apix`). Specific hosts before wildcard before any-host, then the
  longest path first. Unknown hosts get a 404 from the catch-all backend.
- A/B (match_header/match_cookie): matching requests go to a second backend holding only the
  release's new group ("canary"/"green"), the others to the main backend holding "stable".
- Sticky sessions: `cookie CCSSRV insert indirect nocache`, one cookie value per server.
- HTTPS (a route whose `tls` names a certificate): its domain is served by a second frontend,
  `bind :https_port ssl crt-list FILE`, one crt-list line per domain with the domain as SNI
  filter (so SNI picks the certificate; the first line is the default for clients without
  SNI). The HTTP frontend answers that domain with a 308 redirect to https (308 keeps the
  method and body, where 301 lets clients turn a POST into a GET). Each domain's PEM file has
  a path that does not depend on the secret version, so a new version leaves `structure`
  equal and is applied with the runtime API (`set ssl cert` + `commit ssl cert`), no reload.
  The HTTPS pieces are in `https`.

Invalid entries are skipped and listed in `RenderedConfig.problems` (one bad route must not
take every other route of the node down); the control plane validates before it gets here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from ccs.ab_match import HTTP_TOKEN, MATCH_VALUE
from ccs.v1 import resources_pb2

from .exporter import exporter_frontend
from .https import CertificateRef, host_match, https_head, redirect_lines, tls_domains
from .settings import ADDRESS as ADDRESS
from .settings import RouterSettings as RouterSettings

MAX_WEIGHT = 256
STABLE_GROUPS = frozenset({"", "stable"})
NO_ROUTE_BACKEND = "be_no_route"
_WEIGHT_MASK = "weight W"

_DOMAIN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\Z")
_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class ServerRef:
    """The container behind one HAProxy server."""

    application: str
    service: str
    container: str


ServerKey = tuple[str, str]  # (backend, server)


@dataclass(frozen=True, slots=True)
class RenderedConfig:
    text: str
    # `text` with weights masked and without the server lines of the backends that take
    # runtime `add server` (`addresses`): equal structures differ only in what
    # `server_changes` can change without a reload.
    structure: str
    version: int
    weights: Mapping[ServerKey, int] = field(default_factory=dict)
    servers: Mapping[ServerKey, ServerRef] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    addresses: Mapping[ServerKey, str] = field(default_factory=dict)  # "host:port", non-sticky backends
    # HTTPS: the crt-list file's text, and which secret version each PEM file must hold.
    crt_list: str = ""
    certificates: Mapping[str, CertificateRef] = field(default_factory=dict)  # path -> ref


@dataclass(frozen=True, slots=True)
class ServerChanges:
    """What turns the applied config into the next one through the runtime API, no reload."""

    weights: Mapping[ServerKey, int] = field(default_factory=dict)  # kept servers, new weight
    added: Mapping[ServerKey, tuple[str, int]] = field(default_factory=dict)  # address, weight
    removed: tuple[ServerKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.weights or self.added or self.removed)


def routed_containers(cfg: RenderedConfig | None) -> frozenset[str]:
    """Containers that get new requests under ``cfg``: a server of theirs has a weight above 0."""
    if cfg is None:
        return frozenset()
    return frozenset(cfg.servers[k].container for k, w in cfg.weights.items() if w > 0 and k in cfg.servers)


def server_changes(old: RenderedConfig | None, new: RenderedConfig) -> ServerChanges | None:
    """The runtime changes (weights, servers added and removed) that turn `old` into `new`, or
    None when only a reload can.

    Why: a rolling update adds a server when a container starts and removes one when it
    leaves, which used to be two reloads per container (each a new worker process, the old one
    finishing its connections). HAProxy 2.6 adds and deletes servers at runtime, except with
    `cookie` ("'cookie' option is not accepted for dynamic server"), so sticky backends, like
    any change of routes, still reload. So does a server whose address changed (a container
    published on a new port): its name is taken until `del server` succeeds.
    """
    if old is None or old.structure != new.structure:
        return None
    if any(old.addresses[k] != a for k, a in new.addresses.items() if k in old.addresses):
        return None
    removed = tuple(sorted(k for k in old.addresses if k not in new.addresses))
    added = {k: (a, new.weights[k]) for k, a in new.addresses.items() if k not in old.addresses}
    weights = {k: w for k, w in new.weights.items() if k not in added and old.weights.get(k) != w}
    return ServerChanges(weights, added, removed)


def check_entry(entry: resources_pb2.RouteEntry, where: str) -> None:
    """Raise ValueError naming the field when `entry` cannot be rendered safely."""
    if entry.domain and not _DOMAIN.match(entry.domain.lower()):
        raise ValueError(f"{where}.domain: not a host name (or *.domain), got {entry.domain!r}")
    if entry.path and not _PATH.match(entry.path):
        raise ValueError(f"{where}.path: must start with / and hold URL path characters, got {entry.path!r}")
    if entry.match_header and entry.match_cookie:
        raise ValueError(f"{where}.match_header: set either match_header or match_cookie, not both")
    name = entry.match_header or entry.match_cookie
    if name:
        kind = "match_header" if entry.match_header else "match_cookie"
        if not HTTP_TOKEN.fullmatch(name):
            raise ValueError(f"{where}.{kind}: must be an HTTP token, got {name!r}")
        if not MATCH_VALUE.fullmatch(entry.match_value):
            raise ValueError(
                f"{where}.match_value: must be non-empty and hold only [A-Za-z0-9._~:/+=@-], "
                f"got {entry.match_value!r}"
            )
    for i, b in enumerate(entry.backends):
        if not b.address or not ADDRESS.match(b.address):
            raise ValueError(f"{where}.backends[{i}].address: not an address, got {b.address!r}")
        if not 1 <= b.port <= 65535:
            raise ValueError(f"{where}.backends[{i}].port: must be in 1-65535, got {b.port}")
        if b.weight > MAX_WEIGHT:
            raise ValueError(f"{where}.backends[{i}].weight: must be 0-{MAX_WEIGHT}, got {b.weight}")


def sanitize(name: str) -> str:
    return _UNSAFE.sub("_", name) or "_"


def backend_name(entry: resources_pb2.RouteEntry) -> str:
    """Stable across renders: the same route keeps its backend (and its counters) name."""
    digest = hashlib.sha256(
        "\0".join((entry.application, entry.service, entry.domain.lower(), _norm_path(entry.path))).encode()
    ).hexdigest()[:8]
    return f"be_{sanitize(entry.application)}_{sanitize(entry.service)}_{digest}"


def _norm_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _sort_key(entry: resources_pb2.RouteEntry) -> tuple[int, int, str, str]:
    domain = entry.domain.lower()
    rank = 2 if not domain else 1 if domain.startswith("*.") else 0
    path = _norm_path(entry.path)
    return (rank, -len(path), domain, path)


def certificate_changes(old: RenderedConfig | None, new: RenderedConfig) -> dict[str, CertificateRef]:
    """The PEM files whose secret version differs between `old` and `new` (same structure):
    what `set ssl cert` must replace at runtime."""
    before = old.certificates if old is not None else {}
    return {path: ref for path, ref in new.certificates.items() if before.get(path) != ref}


def render(
    table: resources_pb2.RoutingTable,
    settings: RouterSettings,
    available: Collection[CertificateRef] = frozenset(),
) -> RenderedConfig:
    """The whole HAProxy configuration for `table`; `available` are the certificate secret
    versions whose material the agent holds (only references here: rendering stays pure and
    the material never passes through a config string)."""
    problems: list[str] = []
    entries: list[resources_pb2.RouteEntry] = []
    for i, entry in enumerate(table.routes):
        try:
            check_entry(entry, f"routes[{i}]")
            if entry.HasField("tls") and (not entry.domain or not entry.tls.secret or entry.tls.version < 1):
                raise ValueError(f"routes[{i}].tls: needs a domain, a secret name and a version")
        except ValueError as exc:
            problems.append(f"{entry.application}/{entry.service}: {exc}")
            continue
        entries.append(entry)
    entries.sort(key=_sort_key)
    entries, tls = tls_domains(entries, available, problems)

    frontend = _frontend_head(settings)
    https = https_head(settings.bind_address, settings.https_port, settings.crt_list_path) if tls else []
    redirects, refusals = redirect_lines(entries, tls, settings.https_port)
    frontend += redirects
    https += refusals
    backends: list[str] = []
    weights: dict[ServerKey, int] = {}
    servers: dict[ServerKey, ServerRef] = {}
    addresses_all: dict[ServerKey, str] = {}
    sticky: set[str] = set()
    used: set[str] = set()
    for entry in entries:
        name = _unique(backend_name(entry), used)
        canary = [b for b in entry.backends if b.group not in STABLE_GROUPS]
        stable = [b for b in entry.backends if b.group in STABLE_GROUPS]
        ab = bool((entry.match_header or entry.match_cookie) and canary)
        conds = _conditions(entry, name, ab=ab)
        target = https if entry.domain.lower() in tls else frontend
        target += conds.acls
        if ab:
            ab_name = f"{name}_ab"
            target.append(f"    use_backend {ab_name} if {' '.join(filter(None, (conds.route, conds.ab)))}")
            backends += _backend(ab_name, entry, canary, settings, weights, servers, addresses_all)
        target.append(f"    use_backend {name}" + (f" if {conds.route}" if conds.route else ""))
        main = stable if ab and stable else list(entry.backends)
        backends += _backend(name, entry, main, settings, weights, servers, addresses_all)
        if entry.session_sticky:
            sticky.update({name, f"{name}_ab"})
    frontend.append(f"    default_backend {NO_ROUTE_BACKEND}")
    if https:
        https += [f"    default_backend {NO_ROUTE_BACKEND}", ""]
    tail = [
        f"backend {NO_ROUTE_BACKEND}",
        '    http-request return status 404 content-type text/plain string "no route for this host and path"',
        "",
    ]
    lines = _global(settings) + frontend + [""] + https + backends + tail + exporter_frontend(settings)
    text = "\n".join(lines)
    addresses = {k: a for k, a in addresses_all.items() if k[0] not in sticky}
    # Domains in sorted order: the first line is the default certificate (no SNI), stable.
    crt_list = "".join(f"{settings.certificate_path(d)} {d}\n" for d in sorted(tls))
    certificates = {str(settings.certificate_path(d)): ref for d, ref in tls.items()}
    structure = _mask("\n".join(_without_servers(lines, addresses))) + "\n" + crt_list
    return RenderedConfig(
        text, structure, table.version, weights, servers, tuple(problems), addresses, crt_list, certificates
    )


def _mask(text: str) -> str:
    return re.sub(r" disabled$", "", re.sub(r"\bweight \d+", _WEIGHT_MASK, text), flags=re.M)


def _without_servers(lines: Iterable[str], servers: Mapping[ServerKey, str]) -> Iterable[str]:
    backend = ""
    for line in lines:
        if line.startswith("backend "):
            backend = line.split()[1]
        elif line.startswith("    server ") and (backend, line.split()[1]) in servers:
            continue
        yield line


@dataclass(frozen=True, slots=True)
class _Conditions:
    acls: list[str]
    route: str  # ACL names that must all match (empty: any request)
    ab: str


def _conditions(entry: resources_pb2.RouteEntry, name: str, *, ab: bool) -> _Conditions:
    acls: list[str] = []
    route: list[str] = []
    tag = name.removeprefix("be_")
    domain = entry.domain.lower()
    if domain:
        acls.append(f"    acl host_{tag} {host_match(domain)}")
        route.append(f"host_{tag}")
    path = _norm_path(entry.path)
    if path != "/":
        acls.append(f"    acl path_{tag} path -m str {path}")
        acls.append(f"    acl path_{tag} path_beg {path}/")  # same name: the two are OR-ed
        route.append(f"path_{tag}")
    if not ab:
        return _Conditions(acls, " ".join(route), "")
    fetch = f"req.hdr({entry.match_header})" if entry.match_header else f"req.cook({entry.match_cookie})"
    acls.append(f"    acl ab_{tag} {fetch} -m str {entry.match_value}")
    return _Conditions(acls, " ".join(route), f"ab_{tag}")


def _backend(
    name: str,
    entry: resources_pb2.RouteEntry,
    members: Iterable[resources_pb2.RouteBackend],
    settings: RouterSettings,
    weights: dict[ServerKey, int],
    servers: dict[ServerKey, ServerRef],
    addresses: dict[ServerKey, str],
) -> list[str]:
    lines = [f"backend {name}", "    balance roundrobin"]
    if entry.session_sticky:
        lines.append("    cookie CCSSRV insert indirect nocache")
    used: set[str] = set()
    for b in sorted(members, key=lambda b: (b.container, b.address, b.port)):
        srv = _unique(sanitize(b.container or f"{b.address}_{b.port}"), used)
        host = f"[{b.address}]" if ":" in b.address else b.address
        line = f"    server {srv} {host}:{b.port} weight {b.weight} check inter {settings.check_interval}"
        if entry.session_sticky:
            line += f" cookie {srv}"
        if b.weight == 0:
            line += " disabled"  # starts in maintenance: see runtime_api.weight_commands
        lines.append(line)
        weights[(name, srv)] = b.weight
        servers[(name, srv)] = ServerRef(entry.application, entry.service, b.container)
        addresses[(name, srv)] = f"{host}:{b.port}"
    lines.append("")
    return lines


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    used.add(candidate)
    return candidate


def _frontend_head(settings: RouterSettings) -> list[str]:
    address = f"[{settings.bind_address}]" if ":" in settings.bind_address else settings.bind_address
    return [
        "frontend ccs_http",
        f"    bind {address}:{settings.port}",
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto http",
    ]


def _global(s: RouterSettings) -> list[str]:
    return [
        "# Generated by the ccs agent; changes are overwritten.",
        "global",
        f"    stats socket {s.socket_path} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    hard-stop-after {s.hard_stop_after}",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        f"    timeout connect {s.connect_timeout}",
        f"    timeout client {s.client_timeout}",
        f"    timeout server {s.server_timeout}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 10s",
        "    option idle-close-on-response",
        "    http-reuse safe",
        "    retries 3",
        "    retry-on conn-failure empty-response response-timeout",
        "    option redispatch 1",
        "",
    ]
