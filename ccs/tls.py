"""Trust on first contact, checked: fetch a server's certificate chain and pin its CA by
fingerprint.

``ccs login --ca-fingerprint`` and an agent joining with a join token both start knowing only
the SHA-256 of the cluster CA's certificate. They open one TLS connection *without* verifying
(the server sends its certificate and the CA that signed it), keep the certificate of the chain
whose fingerprint matches, and from then on verify the server against that CA only. A server
that cannot show the CA gets nothing: the bearer token or join token is sent only on a channel
verified against the pinned CA. This is what Swarm does (``GetRemoteCA`` with
``InsecureSkipVerify``, then the digest from the join token).

Why the standard library's ``ssl`` and not gRPC: gRPC's Python credentials always verify the
server, so they cannot fetch an unknown CA. ``SSLSocket.get_unverified_chain`` is public from
Python 3.13; on 3.11-3.12 the same method exists on the ``_ssl`` object underneath
(``_sslobj``), which is used when the public one is missing.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass

__all__ = [
    "FingerprintMismatch",
    "ServerChain",
    "fetch_chain",
    "fingerprint",
    "normalize_fingerprint",
    "pem_fingerprint",
    "verification_hint",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class FingerprintMismatch(Exception):
    """The server's chain holds no certificate with the expected fingerprint."""


def fingerprint(der: bytes) -> str:
    """The SHA-256 of a certificate's DER, 64 lowercase hex digits (what join tokens carry)."""
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(pem: str | bytes) -> str:
    """The fingerprint of the first certificate of a PEM text."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return fingerprint(ssl.PEM_cert_to_DER_cert(text[start:end]))


def normalize_fingerprint(text: str) -> str:
    """Accept ``ab12...``, ``AB:12:...`` (``openssl x509 -fingerprint -sha256``) and a
    ``sha256:``/``SHA256=`` prefix; ValueError when it is not 32 bytes of hex."""
    t = text.strip()
    for prefix in ("sha256:", "sha256=", "SHA256:", "SHA256=", "sha256 Fingerprint=", "SHA256 Fingerprint="):
        if t.startswith(prefix):
            t = t[len(prefix):]
    t = t.replace(":", "").lower()
    if not _HEX64.fullmatch(t):
        raise ValueError("expected a SHA-256 fingerprint: 64 hex digits, colons allowed")
    return t


@dataclass(frozen=True, slots=True)
class ServerChain:
    """The certificates a server presented, leaf first, as DER."""

    address: str
    certificates: tuple[bytes, ...]

    def ca_pem(self, expected_fingerprint: str) -> str:
        """The PEM of the chain's certificate with ``expected_fingerprint``, or
        FingerprintMismatch naming what the server showed instead."""
        want = normalize_fingerprint(expected_fingerprint)
        for der in self.certificates:
            if fingerprint(der) == want:
                return ssl.DER_cert_to_PEM_cert(der)
        shown = ", ".join(fingerprint(d) for d in self.certificates) or "nothing"
        raise FingerprintMismatch(
            f"the server at {self.address} does not present the CA with fingerprint {want} "
            f"(it presented: {shown}); not trusting it"
        )


def verification_hint(message: str, address: str) -> str:
    """What to do about a TLS verification failure that gRPC reports as UNAVAILABLE, or ""."""
    host = address.rpartition(":")[0].strip("[]") or address
    if "Hostname Verification" in message or "not in peer certificate" in message:
        return (f"the server's certificate does not name {host!r}: reach it by a name or address "
                f"it has, or start the server with --advertise {host}")
    if "CERTIFICATE_VERIFY_FAILED" in message:
        return ("the server's certificate does not chain to the CA this client trusts (another "
                "control plane, or no CA pinned): pin its CA with `ccs login --ca-fingerprint` or --ca-file")
    return ""


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def fetch_chain(address: str, timeout: float = 10.0) -> ServerChain:
    """One TLS handshake to ``address`` without verification; the chain it presented.

    Blocking (a socket): call it in a thread from async code. OSError/ssl.SSLError when the
    server cannot be reached or does not speak TLS.
    """
    host, port = split_address(address)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # on purpose: the caller checks the fingerprint itself
    ctx.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(
        raw, server_hostname=host or None
    ) as tls:
        getter = getattr(tls, "get_unverified_chain", None)
        if getter is None:  # Python < 3.13: the same method on the C object
            getter = tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]
        chain = getter() or []
        ders = tuple(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                     for c in chain)
    return ServerChain(address, ders)
