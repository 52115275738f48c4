"""What the servicers need of the PKI: sign a node's CSR, show a join token, name the node port.

One object built by the server at start and handed to the Dispatcher (Register,
RenewCertificate) and the cluster API (join tokens), so neither knows where keys come from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from ccs.join_token import JoinToken, JoinTokenError, parse
from controlplane.pki import certs
from controlplane.pki.cluster_ca import ClusterKeys


@dataclass(frozen=True)
class NodeIssuer:
    keys: ClusterKeys
    #: The root the API port's chain ends with: what join tokens carry.
    api_fingerprint: str
    #: Where agents talk mutual TLS (0 under --insecure: there is no node port).
    node_port: int = 0
    ttl: dt.timedelta = certs.NODE_TTL
    #: False under --insecure: nodes get bearer credentials, no certificates.
    tls: bool = True

    @property
    def ca_pem(self) -> str:
        return self.keys.ca_pem.decode()

    def sign(self, csr: x509.CertificateSigningRequest, cluster: str, node: str,
             now: dt.datetime) -> x509.Certificate:
        return certs.issue_node(self.keys.ca_key, self.keys.ca_cert, csr, cluster, node, now, self.ttl)

    def show_token(self, stored: str, servers: tuple[str, ...] = ()) -> str:
        """The join token users see: the stored cluster and secret with the CA fingerprint, and
        the API servers to join through when given."""
        t = parse(stored)
        return JoinToken(t.cluster, t.secret, self.api_fingerprint, servers=servers).render()


def stored_token(token: str) -> str:
    """The stored form of a presented token of either version (JoinTokenError if none)."""
    return parse(token).stored()


__all__ = ["JoinTokenError", "NodeIssuer", "stored_token"]
