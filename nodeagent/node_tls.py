"""The agent's side of the cluster's PKI: check the server, make a key, get and renew a certificate.

On first contact the agent knows the server's address and the join token, which carries the
SHA-256 of the CA the server's certificate chains to. It:

1. fetches the server's chain without verifying it (one TLS handshake, :func:`ccs.tls.fetch_chain`)
   and keeps the certificate whose fingerprint is the token's; a server that cannot show it is
   refused before the token is sent (so a man in the middle never sees the token);
2. makes an ECDSA P-256 key here and sends only a CSR for it in ``Register``, over a channel
   verified against that CA; the key never leaves the node;
3. from then on talks mutual TLS to the node port named in the answer, verified against the
   cluster CA from the answer, presenting the node certificate;
4. renews at two thirds of the certificate's lifetime (:func:`renew_delay`) with a new key,
   over the current mutual-TLS channel, and moves its session to a channel with the new
   certificate (``Agent`` does the move) — no restart.

Why ``cryptography`` (keys and CSRs) and the standard ``ssl`` module (the unverified fetch):
see ``controlplane.pki.certs`` and ``ccs.tls``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import grpc
import grpc.aio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ccs.join_token import JoinTokenError, parse
from ccs.tls import FingerprintMismatch, fetch_chain, split_address

from .config import Identity
from .dispatcher_client import CHANNEL_OPTIONS, AgentError

#: Renew when this share of the certificate's lifetime (from when it arrived) has passed.
#: Swarm picks a random point between 50 % and 80 % to spread a herd of nodes; a renewal here
#: costs the server one signature (well under a millisecond) and one small transaction, so a
#: fixed point keeps the timing predictable and a herd of 1,000 nodes costs about a second.
RENEW_AT = 2 / 3


def new_key_and_csr(node: str) -> tuple[str, str]:
    """A fresh P-256 key (PEM) and a CSR for it naming ``node`` (the server sets the names
    of the certificate itself; the CSR proves possession of the key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)]))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def not_after(identity: Identity) -> float:
    """When the identity's certificate expires (epoch seconds)."""
    return x509.load_pem_x509_certificate(identity.cert_pem.encode()).not_valid_after_utc.timestamp()


def expired(identity: Identity, now: float | None = None) -> bool:
    return identity.has_certificate and (now if now is not None else time.time()) >= not_after(identity)


def renew_delay(identity: Identity, now: float | None = None) -> float:
    """Seconds until the certificate should be renewed (0: now)."""
    now = time.time() if now is None else now
    end = not_after(identity)
    start = identity.received_at or now
    return max(0.0, start + (end - start) * RENEW_AT - now)


async def server_ca(server: str, join_token: str) -> str:
    """The PEM of the CA the join token pins, as the server at ``server`` presents it.

    AgentError when the token cannot be used or the server does not show that CA (both
    permanent); OSError/ssl errors when the server cannot be reached (retry).
    """
    try:
        token = parse(join_token)
    except JoinTokenError as exc:
        raise AgentError(f"--join-token: {exc}") from None
    if token.version == 1:
        raise AgentError(
            "--join-token: this token is of the previous format and carries no CA fingerprint, so "
            f"the server could not be checked; get the current one with `ccs cluster join-token {token.cluster}`")
    chain = await asyncio.to_thread(fetch_chain, server)
    try:
        return chain.ca_pem(token.ca_fingerprint)
    except FingerprintMismatch as exc:
        raise AgentError(f"{exc} (is --server right, and the join token of this control plane?)") from None


def api_channel(server: str, ca_pem: str) -> grpc.aio.Channel:
    """A channel to the API port, verified against ``ca_pem`` (registration only)."""
    return grpc.aio.secure_channel(server, grpc.ssl_channel_credentials(root_certificates=ca_pem.encode()),
                                   options=CHANNEL_OPTIONS)


def node_address(server: str, identity: Identity) -> str:
    """The node port on the host the agent registered at (the same port when none was named)."""
    host, port = split_address(server)
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{identity.node_port or port}"


def node_channel(server: str, identity: Identity) -> grpc.aio.Channel:
    """The mutual-TLS channel of every call after registration, to the node port on the host of
    the API address ``server``."""
    return node_channel_at(node_address(server, identity), identity)


def node_channel_at(address: str, identity: Identity) -> grpc.aio.Channel:
    """The mutual-TLS channel to the node port at ``address`` (host:port)."""
    creds = grpc.ssl_channel_credentials(root_certificates=identity.ca_pem.encode(),
                                         private_key=identity.key_pem.encode(),
                                         certificate_chain=identity.cert_pem.encode())
    return grpc.aio.secure_channel(address, creds, options=CHANNEL_OPTIONS)


def with_certificate(identity: Identity, key_pem: str, cert_pem: str, ca_pem: str) -> Identity:
    return Identity(identity.cluster, identity.node, "", identity.server, key_pem, cert_pem,
                    ca_pem or identity.ca_pem, identity.node_port, time.time())


def describe_expiry(identity: Identity) -> str:
    return dt.datetime.fromtimestamp(not_after(identity), dt.UTC).isoformat()
