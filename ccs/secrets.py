"""Typed calls for secrets and configs (``client.secrets``, ``client.configs``).

A secret's value goes up once (``create``/``update``) and never comes back: every answer holds
its name, versions, digest, size and dates. ``name`` in ``get`` may be ``NAME@N``. A config is
read back with ``configs.get(...).data``.
"""

from __future__ import annotations

from ccs._transport import Transport
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Configs", "Secrets"]


class Secrets:
    """Encrypted, versioned secrets of a cluster, mounted by Compose ``secrets:``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(self, cluster: str, name: str, data: bytes) -> resources_pb2.Secret:
        req = api_pb2.CreateSecretRequest(cluster=cluster, name=name, data=data)
        return await self._t.unary(self._t.secrets.CreateSecret, req, resources_pb2.Secret)

    async def update(self, cluster: str, name: str, data: bytes) -> resources_pb2.Secret:
        """A new version; services mounting the name unpinned roll to it."""
        req = api_pb2.UpdateSecretRequest(cluster=cluster, name=name, data=data)
        return await self._t.unary(self._t.secrets.UpdateSecret, req, resources_pb2.Secret)

    async def get(self, cluster: str, name: str) -> resources_pb2.Secret:
        req = api_pb2.GetSecretRequest(cluster=cluster, name=name)
        return await self._t.unary(self._t.secrets.GetSecret, req, resources_pb2.Secret)

    async def list(self, cluster: str) -> list[resources_pb2.Secret]:
        req = api_pb2.ListSecretsRequest(cluster=cluster)
        return list((await self._t.unary(self._t.secrets.ListSecrets, req, api_pb2.ListSecretsResponse)).secrets)

    async def delete(self, cluster: str, name: str) -> None:
        req = api_pb2.DeleteSecretRequest(cluster=cluster, name=name)
        await self._t.unary(self._t.secrets.DeleteSecret, req, api_pb2.DeleteSecretResponse)

    async def rotate_key(self) -> api_pb2.RotateSecretsKeyResponse:
        """A new data key; every stored secret and config is re-encrypted under it (admin)."""
        req = api_pb2.RotateSecretsKeyRequest()
        return await self._t.unary(self._t.secrets.RotateSecretsKey, req, api_pb2.RotateSecretsKeyResponse)


class Configs:
    """Versioned configs of a cluster, mounted by Compose ``configs:``; readable back."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(self, cluster: str, name: str, data: bytes) -> resources_pb2.Config:
        req = api_pb2.CreateSecretRequest(cluster=cluster, name=name, data=data)
        return await self._t.unary(self._t.configs.CreateConfig, req, resources_pb2.Config)

    async def update(self, cluster: str, name: str, data: bytes) -> resources_pb2.Config:
        req = api_pb2.UpdateSecretRequest(cluster=cluster, name=name, data=data)
        return await self._t.unary(self._t.configs.UpdateConfig, req, resources_pb2.Config)

    async def get(self, cluster: str, name: str) -> resources_pb2.Config:
        req = api_pb2.GetSecretRequest(cluster=cluster, name=name)
        return await self._t.unary(self._t.configs.GetConfig, req, resources_pb2.Config)

    async def list(self, cluster: str) -> list[resources_pb2.Config]:
        req = api_pb2.ListSecretsRequest(cluster=cluster)
        return list((await self._t.unary(self._t.configs.ListConfigs, req, api_pb2.ListConfigsResponse)).configs)

    async def delete(self, cluster: str, name: str) -> None:
        req = api_pb2.DeleteSecretRequest(cluster=cluster, name=name)
        await self._t.unary(self._t.configs.DeleteConfig, req, api_pb2.DeleteSecretResponse)
