"""RegistryService: the cluster's registry logins (controlplane.registry.logins).

The password goes in once and never comes back: answers carry host, user, whether a CA was
given and the date. Roles as for secrets: a login is set and removed with the ``secrets``
permission (deployer in its clusters, admin), listed with ``read``. A refusal never quotes the
password (only ``password: is empty`` or its size).
"""

from __future__ import annotations

import ssl

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.image_refs import host_problem
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import InvalidArgument, map_errors
from controlplane.names import check_name
from controlplane.registry.logins import Login, Logins
from controlplane.store import NotFound, keys
from controlplane.store.etcd import Etcd

MAX_USERNAME = 256
MAX_PASSWORD = 16 * 1024  # registry tokens (GitLab, cloud providers) run to a few KiB
MAX_CA_BYTES = 64 * 1024


def _host(host: str) -> str:
    if (problem := host_problem(host)) is not None:
        raise InvalidArgument("host", problem)
    return host


def _check(request: api_pb2.LoginRegistryRequest) -> None:
    if not request.username:
        raise InvalidArgument("username", "is empty")
    if len(request.username.encode()) > MAX_USERNAME or ":" in request.username or "\0" in request.username:
        raise InvalidArgument("username", f"must be at most {MAX_USERNAME} bytes, without ':' or NUL")
    if not request.password:
        raise InvalidArgument("password", "is empty")
    if len(request.password.encode()) > MAX_PASSWORD:
        raise InvalidArgument("password", f"is longer than {MAX_PASSWORD} bytes")
    if request.ca_pem:
        if len(request.ca_pem.encode()) > MAX_CA_BYTES:
            raise InvalidArgument("ca_pem", f"is longer than {MAX_CA_BYTES} bytes")
        try:
            ssl.create_default_context(cadata=request.ca_pem)
        except (ssl.SSLError, ValueError):
            raise InvalidArgument("ca_pem", "holds no PEM certificate the TLS library can load") from None


def describe(cluster: str, login: Login) -> pb.RegistryLogin:
    ts = Timestamp()
    ts.FromDatetime(login.created_at)
    return pb.RegistryLogin(cluster=cluster, host=login.host, username=login.username, has_ca=bool(login.ca_pem),
                            created_at=ts, insecure=login.insecure)


@map_errors
class RegistryServicer(api_pb2_grpc.RegistryServiceServicer):
    def __init__(self, etcd: Etcd, logins: Logins) -> None:
        self.etcd, self.logins = etcd, logins

    async def _cluster(self, name: str) -> str:
        """The cluster's name, checked, and that it exists (before the other fields: as the
        other services answer, a call on a missing cluster is NOT_FOUND whatever else it holds)."""
        cluster = check_name("cluster", name)
        if await self.etcd.get(keys.cluster(cluster)) is None:
            raise NotFound("cluster", cluster)
        return cluster

    async def LoginRegistry(
        self, request: api_pb2.LoginRegistryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegistryLogin:
        cluster = await self._cluster(request.cluster)
        host = _host(request.host)
        _check(request)
        login = await self.logins.put(cluster, host, request.username, request.password, request.ca_pem,
                                      request.insecure)
        return describe(cluster, login)

    async def ListRegistryLogins(
        self, request: api_pb2.ListRegistryLoginsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListRegistryLoginsResponse:
        cluster = await self._cluster(request.cluster)
        return api_pb2.ListRegistryLoginsResponse(
            logins=[describe(cluster, login) for login in await self.logins.list(cluster)])

    async def DeleteRegistryLogin(
        self, request: api_pb2.DeleteRegistryLoginRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteRegistryLoginResponse:
        cluster = await self._cluster(request.cluster)
        host = _host(request.host)
        try:
            await self.logins.delete(cluster, host)
        except NotFound:
            raise NotFound("registry login", host) from None
        return api_pb2.DeleteRegistryLoginResponse()
