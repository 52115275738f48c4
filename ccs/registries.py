"""Typed calls for the cluster's registry logins (``client.registries``).

The password goes up once (``login``) and does not come back with ``list``: answers hold host,
user, whether a CA was given and the date. Images naming that host are pulled by the nodes and
resolved to digests by the control plane with the login.

``push_credential`` is the one way back, for a client that pushes an image it built with the
cluster's login (``ccs app deploy --build --push-to``): the ``push`` permission, audited, over TLS
only (see ``controlplane.api.registry`` for why a credential and not a server-side push). Keep
what it returns in memory for the push; never write it to a file or a log.
"""

from __future__ import annotations

from ccs._transport import Transport
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Registries"]


class Registries:
    """Registry logins of a cluster (``ccs registry login|ls|rm``)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def login(self, cluster: str, host: str, username: str, password: str, *,
                    ca_pem: str = "", insecure: bool = False) -> resources_pb2.RegistryLogin:
        """Store (or replace) the login for ``host`` (``host[:port]``, as images name it).
        ``ca_pem``: the CA of the registry's certificate; ``insecure``: the control plane may
        use plain HTTP with it (as an Engine's ``--insecure-registry``)."""
        req = api_pb2.LoginRegistryRequest(cluster=cluster, host=host, username=username, password=password,
                                           ca_pem=ca_pem, insecure=insecure)
        return await self._t.unary(self._t.registries.LoginRegistry, req, resources_pb2.RegistryLogin)

    async def list(self, cluster: str) -> list[resources_pb2.RegistryLogin]:
        req = api_pb2.ListRegistryLoginsRequest(cluster=cluster)
        res = await self._t.unary(self._t.registries.ListRegistryLogins, req, api_pb2.ListRegistryLoginsResponse)
        return list(res.logins)

    async def push_credential(self, cluster: str, host: str) -> api_pb2.PushCredential:
        """The login of ``host`` with its password, to push with (``NotFound``: the cluster has
        none for that host). The server records the call in the audit log (never the answer)."""
        req = api_pb2.GetPushCredentialRequest(cluster=cluster, host=host)
        return await self._t.unary(self._t.registries.GetPushCredential, req, api_pb2.PushCredential)

    async def delete(self, cluster: str, host: str) -> None:
        req = api_pb2.DeleteRegistryLoginRequest(cluster=cluster, host=host)
        await self._t.unary(self._t.registries.DeleteRegistryLogin, req, api_pb2.DeleteRegistryLoginResponse)
