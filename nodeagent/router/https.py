"""The HTTPS part of the router's configuration (see `config` for the whole). Pure.

A domain is HTTPS when a route of it names a certificate (`RouteEntry.tls`, a secret
version); HTTPS then applies to every route of the domain. The HTTP frontend redirects such a
domain (308: the method and body are kept, where 301 lets clients turn a POST into a GET), and
its routes move to the HTTPS frontend, whose certificate is chosen by SNI from a crt-list.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ccs.v1 import resources_pb2

CertificateRef = tuple[str, int]  # (secret name, version)


def tls_domains(
    entries: list[resources_pb2.RouteEntry], available: Collection[CertificateRef], problems: list[str]
) -> tuple[list[resources_pb2.RouteEntry], dict[str, CertificateRef]]:
    """The entries that can be served, and each HTTPS domain's certificate.

    HTTPS applies per domain: a route without `tls` whose domain another route names a
    certificate for is served over HTTPS too. Routes naming several versions of one secret
    (applications sharing it, re-applied one after the other by `ccs secret update`) get the
    newest. A domain whose routes name different secrets, or whose certificate this node does
    not hold, has all its routes skipped: served in clear they would silently drop the HTTPS
    they asked for, and picking one secret would be a guess (the control plane refuses
    different secrets for a domain at deploy)."""
    named: dict[str, set[CertificateRef]] = {}
    for entry in entries:
        if entry.HasField("tls"):
            named.setdefault(entry.domain.lower(), set()).add((entry.tls.secret, entry.tls.version))
    tls: dict[str, CertificateRef] = {}
    for domain, refs in sorted(named.items()):
        shown = ", ".join(f"{name}@{version}" for name, version in sorted(refs))
        newest = max(refs, key=lambda ref: ref[1])
        if len({name for name, _ in refs}) > 1:
            problems.append(f"domain {domain!r}: its routes name different tls certificates ({shown}); not served")
        elif newest not in available:
            problems.append(f"domain {domain!r}: tls certificate {newest[0]}@{newest[1]} not delivered to this "
                            "node; not served")
        else:
            tls[domain] = newest
    kept = [e for e in entries if e.domain.lower() not in named or e.domain.lower() in tls]
    return kept, tls


def redirect_lines(
    entries: list[resources_pb2.RouteEntry], tls: dict[str, CertificateRef], https_port: int
) -> tuple[list[str], list[str]]:
    """(lines for the HTTP frontend, lines for the HTTPS one) before their routes.

    Specific domains served in clear that a TLS wildcard covers are not redirected, and get
    421 (Misdirected Request) on the HTTPS side rather than being routed by the wildcard."""
    http: list[str] = []
    https: list[str] = []
    clear = sorted({e.domain.lower() for e in entries if e.domain and not e.domain.startswith("*.")} - set(tls))
    clear = [d for d in clear if any(w.startswith("*.") and d.endswith(w[1:]) for w in tls)]
    unless = ""
    if clear:
        http.append(f"    acl clear_only req.hdr(host),field(1,:),lower -m str {' '.join(clear)}")
        https.append(f"    acl clear_only req.hdr(host),field(1,:),lower -m str {' '.join(clear)}")
        https.append("    http-request return status 421 if clear_only")
        unless = " !clear_only"
    for n, domain in enumerate(sorted(tls)):
        http.append(f"    acl tls_{n} {host_match(domain)}")
        http.append(
            f"    http-request redirect code 308 location https://%[req.hdr(host),field(1,:)]"
            f"{_port_suffix(https_port)}%[capture.req.uri] if tls_{n}{unless}"
        )
    return http, https


def host_match(domain: str) -> str:
    host = "req.hdr(host),field(1,:),lower"
    if domain.startswith("*."):
        return f"{host} -m end {domain[1:]}"
    return f"{host} -m str {domain}"


def _port_suffix(port: int) -> str:
    return "" if port == 443 else f":{port}"


def https_head(bind_address: str, port: int, crt_list: Path) -> list[str]:
    """The HTTPS frontend's head: TLS with one certificate per domain, picked by SNI."""
    address = f"[{bind_address}]" if ":" in bind_address else bind_address
    return [
        "frontend ccs_https",
        f"    bind {address}:{port} ssl crt-list {crt_list} alpn http/1.1",
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto https",
    ]
