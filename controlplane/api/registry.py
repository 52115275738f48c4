"""RegistryService: the cluster's registry logins (controlplane.registry.logins).

The password goes in once and never comes back from the calls that manage logins: their answers
carry host, user, whether a CA was given and the date. Roles as for secrets: a login is set and
removed with the ``secrets`` permission (deployer in its clusters, admin), listed with ``read``.
A refusal never quotes the password (only ``password: is empty`` or its size).

One call does hand the password out: ``GetPushCredential``, for ``ccs app deploy|update|apply
--build --push-to HOST``, which must push "with the cluster's credentials" (issue 13). Why a
credential handed to the client, as ``aws ecr get-login-password`` and ``gcloud auth
print-access-token`` do, and not a push made by the server: the image is built by the client's
engine and lives there; a server-side push would have the server receive every layer over the
API (up to gigabytes per build, through a 4 MiB message limit) and push it again, with an engine
or a registry client of its own that the control plane does not have and should not need (it
holds no images; agents pull from the registry). The price is that the password reaches a
client, so the call is fenced: its own permission, ``push`` (deployer in its clusters, admin; not
viewer, not a trigger token), an audit record for every call (the gate's: who, the cluster and
the host; never the answer), and an answer only on a TLS connection, never on a plaintext port
(``--insecure``, the console's socket), where the password would cross in clear. The CLI keeps it
in memory for the push (the docker SDK's ``auth_config``): it is never written to a docker
config file or a log.
"""

from __future__ import annotations

import ssl

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.image_refs import host_problem
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
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


def over_tls(context: grpc.aio.ServicerContext) -> bool:
    """Whether the call came on a TLS connection (gRPC's auth context names the transport)."""
    auth = context.auth_context() or {}
    return b"ssl" in auth.get("transport_security_type", [])


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

    async def GetPushCredential(
        self, request: api_pb2.GetPushCredentialRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.PushCredential:
        if not over_tls(context):
            raise FailedPrecondition("GetPushCredential answers only on a TLS connection (this one is plaintext): "
                                     "a registry password is never sent in clear")
        cluster = await self._cluster(request.cluster)
        host = _host(request.host)
        login = await self.logins.get(cluster, host)
        if login is None:
            raise NotFound("registry login", host)
        return api_pb2.PushCredential(host=host, username=login.username, password=login.password)

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
