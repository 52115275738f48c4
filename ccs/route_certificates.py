"""What makes a secret usable as a route's certificate (`x-ccs.routes[].tls.secret`).

One definition for the server (which checks at deploy, naming the field) and anyone else who
wants to check a PEM file before storing it. Pure: the time is an argument.

Parsing is `cryptography`'s (the library the control plane's CA already uses): hand-parsing
PEM and DER would be the bug farm here. The rules are what HAProxy needs to serve the file
(`crt` with the key in the same file) and what a client will verify:
- at least one certificate, the first is the leaf, the others its chain, in order;
- exactly one private key, the leaf's (same public key);
- the leaf's subjectAltName DNS names cover the domain (RFC 6125: `*.example.com` covers
  `a.example.com`, not `example.com` nor `a.b.example.com`; a route's `*.example.com` needs
  that wildcard itself); the subject CN is not looked at, as browsers stopped doing;
- the leaf is valid now.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)
_ENCRYPTED = b"ENCRYPTED "


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What may be shown about a certificate (never the key)."""

    serial: int
    names: tuple[str, ...]
    not_after: datetime.datetime


def covers(names: tuple[str, ...], domain: str) -> bool:
    """True if a certificate for ``names`` (SAN DNS names) is valid for ``domain``."""
    domain = domain.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == domain:
            return True
        if name.startswith("*.") and not domain.startswith("*."):
            head, _, rest = domain.partition(".")
            if head and rest == name[2:]:
                return True
    return False


def check_certificate(pem: bytes, domain: str, now: datetime.datetime, where: str) -> CertificateInfo:
    """Raise ValueError starting with ``where`` when ``pem`` cannot serve ``domain``.
    Messages name what is wrong, never a byte of the key."""
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ValueError(f"{where}: holds no PEM certificate (want the certificate chain, then its key)") from None
    keys = [m.group(0) for m in _KEY_BLOCK.finditer(pem)]
    if len(keys) != 1:
        raise ValueError(f"{where}: must hold exactly one PEM private key, found {len(keys)}")
    if _ENCRYPTED in keys[0].split(b"\n", 1)[0]:
        raise ValueError(f"{where}: the private key is encrypted; the router needs it unencrypted")
    try:
        key = serialization.load_pem_private_key(keys[0], password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: the private key does not parse") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                      | ed448.Ed448PrivateKey):
        raise ValueError(f"{where}: the private key must be RSA, ECDSA or EdDSA")
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise ValueError(f"{where}: the private key does not match the first certificate (the leaf)")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not covers(names, domain):
        raise ValueError(
            f"{where}: the certificate does not cover {domain!r} (its DNS names: {', '.join(names) or 'none'})"
        )
    if now < leaf.not_valid_before_utc:
        raise ValueError(f"{where}: the certificate is not valid before {leaf.not_valid_before_utc.isoformat()}")
    if now >= leaf.not_valid_after_utc:
        raise ValueError(f"{where}: the certificate expired at {leaf.not_valid_after_utc.isoformat()}")
    return CertificateInfo(leaf.serial_number, names, leaf.not_valid_after_utc)
