"""A registry over TLS for the testbed (not a test module): Debian's ``docker-registry`` on the
bridge address (10.77.0.1, a port of its own), htpasswd basic auth, and a certificate from a CA
made here with ``cryptography`` that the testbed's engines trust.

Why not the testbed's own registry: it serves plain HTTP (its hosts run ``--insecure-registry``
for it), and issue 13's pipeline test wants what a real deployment has, TLS with a private CA.

How the engines trust it: dockerd (20.10 here) reads registry CAs only from
``/etc/docker/certs.d/HOST:PORT/ca.crt`` (the directory moves only for a rootless daemon), so the
CA goes there for this one ``10.77.0.1:PORT`` and is removed again at teardown; no other registry's
trust changes. The control plane gets the same CA with the cluster's login (``--ca-file``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.registry_process import serving, write_config

CERTS_D = Path("/etc/docker/certs.d")
USER = "pipeline"


@dataclass(frozen=True)
class TlsRegistry:
    addr: str  # 10.77.0.1:PORT
    user: str
    password: str
    ca_pem: str
    ca_file: Path

    def tags(self, repository: str) -> list[str]:
        """The tags the registry holds for ``repository`` (asked over TLS with its login)."""
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(f"https://{self.addr}/v2/{repository}/tags/list",
                                     headers={"Authorization": f"Basic {auth}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=_context(self.ca_pem)))
        try:
            with opener.open(req, timeout=10) as resp:
                return list(json.loads(resp.read()).get("tags") or [])
        except urllib.error.HTTPError as err:
            if err.code == 404:  # no such repository yet
                return []
            raise


def _context(ca_pem: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem)


def _ca_and_leaf(ip: str) -> tuple[bytes, bytes, bytes]:
    """PEMs: a CA, a leaf for ``ip`` signed by it, the leaf's key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccs pipeline test registry CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), leaf.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _free_port(ip: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _wait(addr: str, ca_pem: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Up when ``/v2/`` answers 401 over TLS verified against the CA."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=_context(ca_pem)))
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("docker-registry exited at start")
        try:
            opener.open(f"https://{addr}/v2/", timeout=2)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.2)
    raise RuntimeError(f"TLS registry at {addr} not ready: {last}")


@contextlib.contextmanager
def tls_registry(base: Path, ip: str) -> Iterator[TlsRegistry]:
    """Start it on ``ip`` (the bridge, up while the testbed is), trusted by every engine."""
    base.mkdir(parents=True, exist_ok=True)
    ca, leaf, key = _ca_and_leaf(ip)
    (base / "ca.crt").write_bytes(ca)
    (base / "server.crt").write_bytes(leaf + ca)
    (base / "server.key").write_bytes(key)
    (base / "server.key").chmod(0o600)
    password = secrets.token_urlsafe(18)
    addr = f"{ip}:{_free_port(ip)}"
    config = write_config(base, addr, user=USER, password=password, realm="ccs-pipeline",
                          tls=(base / "server.crt", base / "server.key"))
    trust = CERTS_D / addr
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "ca.crt").write_bytes(ca)
    try:
        with serving(config, base / "registry.log") as proc:
            _wait(addr, ca.decode(), proc)
            yield TlsRegistry(addr, USER, password, ca.decode(), base / "ca.crt")
    finally:
        shutil.rmtree(trust, ignore_errors=True)
