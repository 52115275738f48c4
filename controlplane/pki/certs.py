"""X.509 for the cluster: the CA, the API servers' certificates, node certificates from CSRs.

Every function takes ``now`` and returns objects; nothing here reads a file or etcd.

Why ECDSA P-256: it is what Swarm's CA and cfssl issue by default, every TLS stack gRPC uses
(BoringSSL, OpenSSL, Go) verifies it, a signature costs well under a millisecond (a server
signs a certificate at every start and one per node per renewal), keys and certificates are
small, and its 128-bit security matches AES-128/SHA-256. RSA-2048 gives the same security at
~10x the signing time and key size; Ed25519 is not accepted by every TLS client for
certificates yet.

Why the ``cryptography`` library: it is the maintained binding of OpenSSL for Python (the one
pip, requests and Certbot use), builds and parses certificates and CSRs as typed objects, and
checks CSR signatures; shelling out to ``openssl`` would mean parsing its text output.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_TTL = dt.timedelta(days=3650)
SERVER_TTL = dt.timedelta(days=90)
NODE_TTL = dt.timedelta(days=90)
#: Certificates start this long before they are issued (never more than their lifetime), so
#: a node whose clock is a little behind the server's accepts them at once (Swarm backdates
#: by an hour for the same reason).
BACKDATE = dt.timedelta(minutes=5)
#: The organizational unit of node certificates: a node certificate can never pass for a
#: server's (servers' certificates carry no OU and the serverAuth usage only).
NODE_OU = "ccs-node"

PrivateKey = ec.EllipticCurvePrivateKey


class CsrError(ValueError):
    """A certificate signing request ccs does not sign; the message says why."""


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("expected an EC private key")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def load_chain(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lowercase hex: what join tokens and ``--ca-fingerprint`` carry."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(cn: str, org: str = "", ou: str = "") -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def new_ca(now: dt.datetime, ttl: dt.timedelta = CA_TTL) -> tuple[PrivateKey, x509.Certificate]:
    """A self-signed root that may sign leaf certificates only (path length 0)."""
    key = new_key()
    name = _name("ccs cluster CA", "ccs")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key: PrivateKey, ca_cert: x509.Certificate, subject: x509.Name, public_key: object,
          sans: list[x509.GeneralName], usage: x509.ObjectIdentifier, now: dt.datetime,
          ttl: dt.timedelta) -> x509.Certificate:
    not_after = min(now + ttl, ca_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject).public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - min(BACKDATE, ttl)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def san_entries(names: Iterable[str]) -> list[x509.GeneralName]:
    """IP addresses as IP SANs, anything else as DNS names; duplicates dropped, order kept."""
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for raw in names:
        name = raw.strip().strip("[]")
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name.lower()))
    return out


def issue_server(ca_key: PrivateKey, ca_cert: x509.Certificate, names: Iterable[str], now: dt.datetime,
                 ttl: dt.timedelta = SERVER_TTL) -> tuple[PrivateKey, x509.Certificate]:
    """A fresh key and a serverAuth certificate whose SANs are ``names``."""
    sans = san_entries(names)
    if not sans:
        raise ValueError("a server certificate needs at least one name")
    key = new_key()
    first = sans[0].value
    cert = _leaf(ca_key, ca_cert, _name(str(first), "ccs"), key.public_key(), sans,
                 ExtendedKeyUsageOID.SERVER_AUTH, now, ttl)
    return key, cert


def _check_public_key(key: object) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise CsrError(f"csr_pem: EC curve {key.curve.name} is not accepted (use P-256 or P-384)")
        return
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError(f"csr_pem: an RSA key of {key.key_size} bits is too short (at least 2048)")
        return
    if isinstance(key, ed25519.Ed25519PublicKey):
        return
    raise CsrError(f"csr_pem: key type {type(key).__name__} is not accepted (use ECDSA P-256)")


def parse_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """A CSR whose signature is valid and whose key ccs accepts; CsrError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > 16 * 1024:
        raise CsrError("csr_pem: longer than 16 KiB")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CsrError(f"csr_pem: not a PEM certificate signing request ({exc})") from None
    try:
        valid = csr.is_signature_valid
        public_key = csr.public_key()
    except ValueError as exc:  # a damaged key inside a well-formed request
        raise CsrError(f"csr_pem: its public key is invalid ({exc})") from None
    if not valid:
        raise CsrError("csr_pem: its signature does not verify (the key does not match)")
    _check_public_key(public_key)
    return csr


def issue_node(ca_key: PrivateKey, ca_cert: x509.Certificate, csr: x509.CertificateSigningRequest,
               cluster: str, node: str, now: dt.datetime, ttl: dt.timedelta = NODE_TTL) -> x509.Certificate:
    """A clientAuth certificate for the CSR's key: CN and DNS SAN = node, O = cluster.

    Only the key comes from the CSR; the names are the server's (a node cannot ask for
    another node's or a server's identity).
    """
    return _leaf(ca_key, ca_cert, _name(node, cluster, NODE_OU), csr.public_key(),
                 [x509.DNSName(node)], ExtendedKeyUsageOID.CLIENT_AUTH, now, ttl)


@dataclass(frozen=True, slots=True)
class NodeCert:
    """Who a node certificate names, and which one it is."""

    cluster: str
    node: str
    serial: str  # hex
    not_after: dt.datetime


def node_identity(cert: x509.Certificate) -> NodeCert:
    """The cluster and node a node certificate names; ValueError for any other certificate."""
    subject = cert.subject
    ou = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    org = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    cn = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if ou != [NODE_OU] or len(org) != 1 or len(cn) != 1:
        raise ValueError("not a ccs node certificate")
    return NodeCert(str(org[0]), str(cn[0]), serial_hex(cert), cert.not_valid_after_utc)


def serial_hex(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:x}"
