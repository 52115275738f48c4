"""The API server's TLS: its certificate, its names, and the credentials of its two ports.

Two listeners, because grpc-python's server credentials either never ask for a client
certificate or require one (the C core's "verify if given" mode is not exposed):

- the API port (``--listen``): server-authenticated TLS; users and tools present bearer tokens,
  agents register there (the join token is in the request);
- the node port (``--node-listen``): mutual TLS, a node certificate signed by the cluster CA
  required; every agent call after registration goes there, and the node is who its
  certificate names.

The server's certificate is issued by the cluster CA at every start for the names this host
has (see :func:`server_names`), so there is nothing per server to store or copy, and it is
renewed in place when two thirds of its lifetime have passed: gRPC asks for the current
certificate at every new connection (``dynamic_ssl_server_credentials``). A certificate brought
with ``--tls-cert/--tls-key`` replaces it on the API port and is re-read when its files change,
so a renewed certificate (certbot, cert-manager) needs no restart either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from cryptography import x509

from ccs.interfaces import interface_addresses
from controlplane.pki import certs
from controlplane.pki.cluster_ca import ClusterKeys

log = structlog.get_logger("ccs.tls")


class TlsConfigError(ValueError):
    """A certificate, key or CA file given to the server is unusable; the message names it."""


def server_names(listen_hosts: Iterable[str], advertise: Iterable[str]) -> list[str]:
    """The SANs of this server's certificate: ``--advertise`` first (the names clients are told
    to use), the host name, ``localhost``, the listen addresses when they are not wildcards, and
    every IPv4 address of this host's interfaces (so an agent reaching the server at any of them
    verifies it without an ``--advertise`` for it)."""
    names = [strip_port(a) for a in advertise]
    names += [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    names += [h for h in listen_hosts if h not in ("", "0.0.0.0", "::", "[::]")]
    with contextlib.suppress(OSError):
        names += interface_addresses()
    seen: list[str] = []
    for n in names:
        n = n.strip().strip("[]")
        if n and n not in seen:
            seen.append(n)
    return seen


def strip_port(address: str) -> str:
    """``host``, ``host:port``, ``[v6]:port`` -> the host."""
    a = address.strip()
    if a.startswith("["):
        return a[1:a.index("]")] if "]" in a else a
    if a.count(":") == 1:
        return a.rsplit(":", 1)[0]
    return a


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class OwnCertificate:
    """A certificate brought with --tls-cert/--tls-key (chain PEM ending with its root)."""

    chain_pem: bytes
    key_pem: bytes
    root: x509.Certificate
    mtimes: tuple[float, float]


def load_own(cert_file: Path, key_file: Path) -> OwnCertificate:
    chain_pem, key_pem = _read(cert_file, "--tls-cert"), _read(key_file, "--tls-key")
    try:
        chain = certs.load_chain(chain_pem)
    except ValueError as exc:
        raise TlsConfigError(f"--tls-cert: {cert_file} is not a PEM certificate chain ({exc})") from None
    if not chain:
        raise TlsConfigError(f"--tls-cert: {cert_file} holds no certificate")
    root = chain[-1]
    if root.issuer != root.subject:
        raise TlsConfigError(
            f"--tls-cert: {cert_file} must end with the root CA of its chain (certificate, "
            "intermediates, root): clients and join tokens pin that root by its fingerprint")
    try:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsConfigError(f"--tls-key: {key_file} is not an unencrypted PEM private key ({exc})") from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != chain[0].public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TlsConfigError(f"--tls-key: {key_file} is not the key of the certificate in {cert_file}")
    return OwnCertificate(chain_pem, key_pem, root, (cert_file.stat().st_mtime, key_file.stat().st_mtime))


class ServerTls:
    """Certificates and gRPC credentials for both ports; safe to call from gRPC's threads."""

    def __init__(self, keys: ClusterKeys, names: list[str], *, cert_file: Path | None = None,
                 key_file: Path | None = None, client_ca_file: Path | None = None,
                 clock: Callable[[], dt.datetime] | None = None,
                 ttl: dt.timedelta = certs.SERVER_TTL) -> None:
        self.keys = keys
        self.names = names
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cert_file, self._key_file = cert_file, key_file
        self._own = load_own(cert_file, key_file) if cert_file and key_file else None
        self.client_ca_pem: bytes | None = None
        if client_ca_file is not None:
            self.client_ca_pem = _read(client_ca_file, "--client-ca")
            try:
                if not certs.load_chain(self.client_ca_pem):
                    raise ValueError("no certificate")
            except ValueError as exc:
                raise TlsConfigError(f"--client-ca: {client_ca_file} is not a PEM CA bundle ({exc})") from None
        self._issue()

    # ------------------------------------------------------------------ certificates

    def _issue(self) -> None:
        key, cert = certs.issue_server(self.keys.ca_key, self.keys.ca_cert, self.names, self._clock(), self._ttl)
        self._issued_at = self._clock()
        self._not_after = cert.not_valid_after_utc
        # One assignment, so a handshake on another thread never pairs a key with another
        # certificate. The CA goes in the chain too: clients pin it by fingerprint.
        self._current = (certs.key_pem(key), certs.cert_pem(cert) + self.keys.ca_pem, certs.serial_hex(cert))

    @property
    def serial(self) -> str:
        return self._current[2]

    def _due(self) -> bool:
        life = self._not_after - self._issued_at
        return self._clock() >= self._issued_at + life * 2 / 3

    @property
    def api_root_fingerprint(self) -> str:
        """What join tokens carry: the root of the API port's chain."""
        return certs.fingerprint(self._own.root) if self._own else self.keys.fingerprint

    @property
    def api_root_pem(self) -> bytes:
        return certs.cert_pem(self._own.root) if self._own else self.keys.ca_pem

    def api_key_and_chain(self) -> tuple[bytes, bytes]:
        """The API port's current key and chain (PEM), renewed or reloaded first when due: the
        HTTPS endpoint (controlplane.triggers.http) serves the same certificate as gRPC."""
        if self._own is not None:
            self._refresh_own()
            return self._own.key_pem, self._own.chain_pem
        self._refresh_generated()
        key_pem, chain_pem, _ = self._current
        return key_pem, chain_pem

    # ------------------------------------------------------------------ credentials

    def _own_config(self) -> grpc.ServerCertificateConfiguration:
        assert self._own is not None
        return grpc.ssl_server_certificate_configuration(
            [(self._own.key_pem, self._own.chain_pem)], root_certificates=self._client_roots())

    def _generated_config(self, roots: bytes | None) -> grpc.ServerCertificateConfiguration:
        key_pem, chain_pem, _ = self._current
        return grpc.ssl_server_certificate_configuration([(key_pem, chain_pem)], root_certificates=roots)

    def _client_roots(self) -> bytes | None:
        return self.client_ca_pem + b"\n" + self.keys.ca_pem if self.client_ca_pem else None

    def _refresh_generated(self) -> bool:
        with self._lock:
            if not self._due():
                return False
            self._issue()
        log.info("server certificate renewed", serial=self.serial, not_after=self._not_after.isoformat())
        return True

    def _refresh_own(self) -> bool:
        assert self._cert_file is not None and self._key_file is not None and self._own is not None
        try:
            mtimes = (self._cert_file.stat().st_mtime, self._key_file.stat().st_mtime)
            if mtimes == self._own.mtimes:
                return False
            own = load_own(self._cert_file, self._key_file)
        except (OSError, TlsConfigError) as exc:  # half-written files: keep serving the old one
            log.warning("--tls-cert/--tls-key changed but cannot be loaded; keeping the current one",
                        error=str(exc))
            return False
        with self._lock:
            self._own = own
        log.info("API certificate reloaded from its files", cert=str(self._cert_file))
        return True

    def api_credentials(self) -> grpc.ServerCredentials:
        """The API port: the brought certificate or the generated one; client certificates
        required only with --client-ca."""
        if self._own is not None:
            def fetch_own() -> grpc.ServerCertificateConfiguration | None:
                return self._own_config() if self._refresh_own() else None
            initial, fetch = self._own_config(), fetch_own
        else:
            roots = self._client_roots()
            initial, fetch = self._generated_config(roots), self._follow(roots)
        return grpc.dynamic_ssl_server_credentials(
            initial, _logged(fetch), require_client_authentication=self.client_ca_pem is not None)

    def node_credentials(self) -> grpc.ServerCredentials:
        """The node port: the generated certificate; a node certificate from the cluster CA
        required."""
        roots = self.keys.ca_pem
        return grpc.dynamic_ssl_server_credentials(
            self._generated_config(roots), _logged(self._follow(roots)), require_client_authentication=True)

    def _follow(self, roots: bytes | None) -> Callable[[], grpc.ServerCertificateConfiguration | None]:
        """A fetcher for one port: renews the generated certificate when due and serves it
        to this port once (either port's fetcher may be the one that renewed it)."""
        served = [self.serial]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            self._refresh_generated()
            key_pem, chain_pem, serial = self._current
            if serial == served[0]:
                return None
            served[0] = serial
            return grpc.ssl_server_certificate_configuration([(key_pem, chain_pem)], root_certificates=roots)
        return fetch


def _logged(fetch: Callable[[], grpc.ServerCertificateConfiguration | None]
            ) -> Callable[[], grpc.ServerCertificateConfiguration | None]:
    """gRPC calls the fetcher from its own thread at every handshake: an exception there must
    not fail the handshake, only be logged (the current certificate is served on)."""
    def wrapped() -> grpc.ServerCertificateConfiguration | None:
        try:
            return fetch()
        except Exception as exc:
            log.error("TLS certificate refresh failed; serving the current one", error=str(exc))
            return None
    return wrapped
