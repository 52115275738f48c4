"""RegistryService of the fake: logins kept in memory, the server's answers and refusals.

Like the server, no answer carries a password but ``GetPushCredential``'s. What it does not model:
encryption, the CA's check beyond "is not empty", digest pinning and pull auth (the fake has no
registry and no agents), roles and the audit log (its one token is an admin's), and the TLS-only
rule (it serves plaintext: a test's fake would be useless if it refused).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.image_refs import host_problem
from ccs.testing.clusters import ClustersFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["RegistriesFake"]

MAX_USERNAME = 256
MAX_PASSWORD = 16 * 1024


class RegistriesFake(ClustersFake):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (cluster, host) -> (its answer, the password)
        self.registry_logins: dict[tuple[str, str], tuple[resources_pb2.RegistryLogin, str]] = {}

    async def _registry_host(self, ctx: Ctx, host: str) -> str:
        if (problem := host_problem(host)) is not None:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"host: {problem}")
        return host

    async def LoginRegistry(self, request: Any, context: Ctx) -> resources_pb2.RegistryLogin:
        await self._cluster(context, request.cluster)
        host = await self._registry_host(context, request.host)
        bad = grpc.StatusCode.INVALID_ARGUMENT
        if not request.username:
            await fail(context, bad, "username: is empty")
        if len(request.username.encode()) > MAX_USERNAME or ":" in request.username or "\0" in request.username:
            await fail(context, bad, f"username: must be at most {MAX_USERNAME} bytes, without ':' or NUL")
        if not request.password:
            await fail(context, bad, "password: is empty")
        if len(request.password.encode()) > MAX_PASSWORD:
            await fail(context, bad, f"password: is longer than {MAX_PASSWORD} bytes")
        now = Timestamp()
        now.GetCurrentTime()
        login = resources_pb2.RegistryLogin(cluster=request.cluster, host=host, username=request.username,
                                            has_ca=bool(request.ca_pem), created_at=now,
                                            insecure=request.insecure)
        self.registry_logins[(request.cluster, host)] = (login, request.password)
        self.revision += 1
        return login

    async def ListRegistryLogins(self, request: Any, context: Ctx) -> api_pb2.ListRegistryLoginsResponse:
        await self._cluster(context, request.cluster)
        return api_pb2.ListRegistryLoginsResponse(
            logins=[login for (c, _), (login, _) in sorted(self.registry_logins.items()) if c == request.cluster])

    async def GetPushCredential(self, request: Any, context: Ctx) -> api_pb2.PushCredential:
        await self._cluster(context, request.cluster)
        host = await self._registry_host(context, request.host)
        found = self.registry_logins.get((request.cluster, host))
        if found is None:
            await fail(context, grpc.StatusCode.NOT_FOUND, f"registry login {host!r} not found")
        assert found is not None
        login, password = found
        return api_pb2.PushCredential(host=host, username=login.username, password=password)

    async def DeleteRegistryLogin(self, request: Any, context: Ctx) -> api_pb2.DeleteRegistryLoginResponse:
        await self._cluster(context, request.cluster)
        host = await self._registry_host(context, request.host)
        if self.registry_logins.pop((request.cluster, host), None) is None:
            await fail(context, grpc.StatusCode.NOT_FOUND, f"registry login {host!r} not found")
        self.revision += 1
        return api_pb2.DeleteRegistryLoginResponse()
