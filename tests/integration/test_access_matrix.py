"""Every RPC of the user API under every kind of caller, against a literal matrix of outcomes
(issue 12, "Roles and audit"), on a real ccs-server over a real etcd.

The RPCs are enumerated from the service descriptors of ``ccs.v1.api_pb2``: an RPC missing from
``MATRIX`` (or from ``REQUESTS``) fails the test, so a new RPC cannot ship without its expected
outcomes written here. The outcomes are written out by hand, not read from the policy table
(``controlplane/access/policy.py``), so a change to the table that changes who may do what
shows up as a failure of this test.

Callers: the first admin token; a deployer token scoped to ``--cluster A --app X`` aiming at
A/X, at A/Y (another application of its cluster) and at B/X (another cluster); an unscoped
viewer; no token; a revoked token; an expired one.

- ``ok``: the call passed authentication and authorization (the servicer answered: OK or a
  domain error such as NOT_FOUND; the requests are built so that nothing admitted destroys
  the fixtures).
- ``no``: ``PERMISSION_DENIED``; ``un``: ``UNAUTHENTICATED``.
- A refused call that would change state writes nothing but its own audit record: etcd's history
  between the revision before and after the call is exactly one put under ``/ccs/audit/``, and
  that record names the caller, the RPC and the refusal.

The server runs on an etcd of its own with ``--no-reconcilers``, so nothing else writes to etcd
while a call is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.message import Message

from ccs.v1 import api_pb2, triggers_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server
from tests.integration.access_matrix_table import CALLERS, MATRIX, MUTATIONS, REQUESTS, A, B, X, Y, no, ok, un
from tests.integration.grpc_helpers import TEMPLATE, channel

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(240)]


def user_api() -> dict[str, tuple[type[Message], type[Message], bool]]:
    """Every RPC of every service in api.proto and triggers.proto: (request class, response class,
    server-streaming)."""
    out = {}
    services = [*api_pb2.DESCRIPTOR.services_by_name.values(), *triggers_pb2.DESCRIPTOR.services_by_name.values()]
    for service in services:
        for m in service.methods:
            out[f"{service.name}/{m.name}"] = (message_factory.GetMessageClass(m.input_type),
                                               message_factory.GetMessageClass(m.output_type), m.server_streaming)
    return out


def client_streaming() -> set[str]:
    """The RPCs whose requests are a stream (ContainerService/Exec): called with one request."""
    return {f"{s.name}/{m.name}" for s in api_pb2.DESCRIPTOR.services_by_name.values()
            for m in s.methods if m.client_streaming}


def test_the_matrix_covers_every_rpc_of_the_user_api() -> None:
    rpcs = set(user_api())
    assert rpcs - set(MATRIX) == set(), "RPCs missing from MATRIX: write their expected outcomes"
    assert rpcs - set(REQUESTS) == set(), "RPCs missing from REQUESTS"
    assert set(MATRIX) - rpcs == set() and set(REQUESTS) - rpcs == set(), "rows for RPCs that do not exist"
    assert all(len(row) == len(CALLERS) for row in MATRIX.values())


# ---------------------------------------------------------------- the server and the callers


@pytest.fixture(scope="module")
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path_factory.mktemp("access-etcd"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def server(own_etcd: EtcdProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    base = tmp_path_factory.mktemp("access-server")
    srv = start_server(base / "state", own_etcd.url, base / "config.yaml", extra=["--no-reconcilers"])
    assert srv.token, srv.log_path.read_text()
    yield srv
    srv.stop()


@dataclass
class Caller:
    token: str | None
    cluster: str
    app: str
    # Who the audit record of a refused change names ("" for no known token).
    name: str


class Api:
    """Generic unary and streaming calls by method name, from the descriptors."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.methods = user_api()

    def md(self, token: str | None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),) if token else ()

    async def call(self, name: str, request: Message, token: str | None) -> Message:
        _, resp_cls, streaming = self.methods[name]
        path = f"/ccs.v1.{name}"
        if not streaming:
            fn = self.channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                          response_deserializer=resp_cls.FromString)
            result: Message = await fn(request, metadata=self.md(token), timeout=30)
            return result
        if name in client_streaming():
            bidi = self.channel.stream_stream(path, request_serializer=type(request).SerializeToString,
                                              response_deserializer=resp_cls.FromString)
            call = bidi(iter([request]), metadata=self.md(token), timeout=30)
        else:
            stream = self.channel.unary_stream(path, request_serializer=type(request).SerializeToString,
                                               response_deserializer=resp_cls.FromString)
            call = stream(request, metadata=self.md(token), timeout=30)
        try:
            first = await call.read()  # the first message, or the end of the stream, or its error
        finally:
            call.cancel()
        return first if isinstance(first, Message) else resp_cls()

    async def outcome(self, name: str, request: Message, token: str | None) -> tuple[str, str]:
        try:
            await self.call(name, request, token)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.PERMISSION_DENIED:
                return no, e.details() or ""
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                return un, e.details() or ""
            return ok, e.code().name
        return ok, "OK"


@pytest.fixture(scope="module")
async def world(server: ServerProc) -> AsyncIterator[tuple[Api, dict[str, Caller]]]:
    async with channel(server.address) as ch:  # TLS, verified against the server's CA
        api = Api(ch)
        admin = server.token
        for c in (A, B):
            await api.call("ClusterService/CreateCluster", api_pb2.CreateClusterRequest(name=c), admin)
        for c, a in ((A, X), (A, Y), (B, X)):
            await api.call("ApplicationService/CreateApplication",
                           api_pb2.CreateApplicationRequest(cluster=c, name=a, template=TEMPLATE), admin)

        async def token(name: str, role: str, clusters: tuple[str, ...] = (), apps: tuple[str, ...] = (),
                        ttl: int = 0) -> api_pb2.CreateTokenResponse:
            req = api_pb2.CreateTokenRequest(name=name, role=role, clusters=clusters, applications=apps,
                                             ttl_seconds=ttl)
            resp = await api.call("TokenService/CreateToken", req, admin)
            assert isinstance(resp, api_pb2.CreateTokenResponse)
            return resp

        deployer = await token("ci", "deployer", (A,), (X,))
        viewer = await token("watcher", "viewer")
        revoked = await token("old-ci", "deployer", (A,), (X,))
        await api.call("TokenService/RevokeToken", api_pb2.RevokeTokenRequest(name="old-ci"), admin)
        trigger = await token("ci-trigger", "trigger", (A,), (X,))
        expired = await token("brief", "viewer", ttl=1)
        # Wait out its second of life by the clock it was stamped with (no race: after this the
        # server's clock is past it too, and expiry is checked on every call).
        await asyncio.sleep(max(0.0, expired.token.expires_at.ToNanoseconds() / 1e9 - time.time()) + 0.2)
        callers = {
            "admin": Caller(admin, A, X, "admin"),
            "deployer": Caller(deployer.secret, A, X, "ci"),
            "deployer@A/Y": Caller(deployer.secret, A, Y, "ci"),
            "deployer@B": Caller(deployer.secret, B, X, "ci"),
            "viewer": Caller(viewer.secret, A, X, "watcher"),
            "none": Caller(None, A, X, ""),
            "revoked": Caller(revoked.secret, A, X, "old-ci"),
            "expired": Caller(expired.secret, A, X, "brief"),
            "trigger": Caller(trigger.secret, A, X, "ci-trigger"),
            "trigger@A/Y": Caller(trigger.secret, A, Y, "ci-trigger"),
        }
        yield api, callers


async def history(etcd: Etcd, before: int) -> list[tuple[str, bool]]:
    """Every change etcd made after revision ``before``: (key, deleted)."""
    _, now = await etcd.get_with_revision("/ccs/")
    if now == before:
        return []
    changes: list[tuple[str, bool]] = []
    async for batch in etcd.watch("/", before + 1):
        changes += [(c.kv.key, c.deleted) for c in batch]
        if batch[-1].revision >= now:
            break
    return changes


@pytest.mark.parametrize("rpc", sorted(MATRIX))
async def test_every_rpc_under_every_caller(
    rpc: str, world: tuple[Api, dict[str, Caller]], own_etcd: EtcdProc
) -> None:
    api, callers = world
    etcd = Etcd([own_etcd.url])
    wrong: list[str] = []
    try:
        for who, expected in zip(CALLERS, MATRIX[rpc], strict=True):
            caller = callers[who]
            _, before = await etcd.get_with_revision("/ccs/")
            got, detail = await api.outcome(rpc, REQUESTS[rpc](caller.cluster, caller.app), caller.token)
            if got != expected:
                wrong.append(f"{who}: expected {expected}, got {got} ({detail})")
                continue
            if got == ok or rpc not in MUTATIONS:
                continue
            # A refused change: nothing written but its own audit record, which says who and why.
            changes = await history(etcd, before)
            if [(k.startswith(keys.AUDIT), deleted) for k, deleted in changes] != [(True, False)]:
                wrong.append(f"{who}: refused, yet etcd changed: {changes}")
                continue
            kv = await etcd.get(changes[0][0])
            assert kv is not None
            record = pb.AuditRecord.FromString(kv.value)
            code = "PERMISSION_DENIED" if got == no else "UNAUTHENTICATED"
            if (record.method, record.result, record.token_name, record.wrote) != (rpc, code, caller.name, False):
                wrong.append(f"{who}: audit record {record}")
            if caller.token and caller.token in str(record):
                wrong.append(f"{who}: the audit record holds the token")
    finally:
        await etcd.close()
    assert not wrong, f"{rpc}:\n" + "\n".join(wrong)


OWN = """
services:
  web:
    image: local/busybox:1
    secrets: [shared, own]
secrets:
  shared: {external: true, name: shared-pw}
  own: {environment: PW}
"""

BORROW = """
services:
  web:
    image: local/busybox:1
    secrets: [theirs]
secrets:
  theirs: {external: true, name: %s}
"""

SQUAT = """
services:
  web:
    image: local/busybox:1
    secrets: [db]
secrets:
  db: {environment: PW}
"""


async def test_an_app_scoped_deployer_and_shared_or_owned_names(world: tuple[Api, dict[str, Caller]]) -> None:
    """A deployer scoped to application S of cluster A: it reaches the cluster's shared names, but
    not application T's own secret (no mount, no update, no delete), its update of a shared name
    redeploys S only (T gets a warning event), and a name it made before T existed is not given
    T's value."""
    api, callers = world
    admin = callers["admin"].token
    s_app, t_app = "app-s", "app-t"
    made = await api.call("TokenService/CreateToken", api_pb2.CreateTokenRequest(
        name="ci-s", role="deployer", clusters=(A,), applications=(s_app,)), admin)
    assert isinstance(made, api_pb2.CreateTokenResponse)
    ci = made.secret
    await api.call("SecretService/CreateSecret", api_pb2.CreateSecretRequest(cluster=A, name="shared-pw", data=b"1"),
                   ci)  # a shared name: the deployer's cluster is enough
    # app-z does not exist yet: app-z_db is a shared name now (made before the application).
    await api.call("SecretService/CreateSecret", api_pb2.CreateSecretRequest(cluster=A, name="app-z_db", data=b"x"),
                   ci)
    for app in (s_app, t_app):
        await api.call("ApplicationService/CreateApplication", api_pb2.CreateApplicationRequest(
            cluster=A, name=app, template=OWN, env={"PW": f"pw-of-{app}"}), admin)

    async def outcome(rpc: str, request: Message, token: str | None = ci) -> tuple[str, str]:
        try:
            await api.call(rpc, request, token)
        except grpc.aio.AioRpcError as e:
            return e.code().name, e.details() or ""
        return "OK", ""

    # T's own secret: not mountable by S's template, not changeable by S's deployer.
    code, why = await outcome("ApplicationService/UpdateApplication", api_pb2.UpdateApplicationRequest(
        cluster=A, name=s_app, template=BORROW % "app-t_own"))
    assert code == "INVALID_ARGUMENT" and why.startswith("secrets.theirs.external:") and "app-t" in why, why
    code, why = await outcome("ApplicationService/CreateApplication", api_pb2.CreateApplicationRequest(
        cluster=A, name="app-x2", template=BORROW % "app-t_own"), admin)
    assert code == "INVALID_ARGUMENT" and "belongs to application 'app-t'" in why, why
    for rpc, request in (
        ("SecretService/UpdateSecret", api_pb2.UpdateSecretRequest(cluster=A, name="app-t_own", data=b"mine")),
        ("SecretService/DeleteSecret", api_pb2.DeleteSecretRequest(cluster=A, name="app-t_own")),
        ("SecretService/CreateSecret", api_pb2.CreateSecretRequest(cluster=A, name="app-t_other", data=b"x")),
    ):
        code, why = await outcome(rpc, request)
        assert code == "PERMISSION_DENIED" and "belongs to application 'app-t'" in why, (rpc, why)
    # Its own: allowed.
    assert (await outcome("SecretService/UpdateSecret", api_pb2.UpdateSecretRequest(
        cluster=A, name="app-s_own", data=b"new")))[0] == "OK"

    # A shared name mounted by S and T: the update rolls S only; T keeps version 1 and is told why.
    assert (await outcome("SecretService/UpdateSecret", api_pb2.UpdateSecretRequest(
        cluster=A, name="shared-pw", data=b"2")))[0] == "OK"
    versions: dict[str, int] = {}
    for app in (s_app, t_app):
        svc = await api.call("ServiceService/GetService", api_pb2.GetServiceRequest(
            cluster=A, application=app, name="web"), admin)
        assert isinstance(svc, pb.Service)
        versions[app] = {r.name: r.version for r in svc.spec.secrets}["shared-pw"]
    assert versions == {s_app: 2, t_app: 1}
    events = await api.call("EventService/ListEvents", api_pb2.ListEventsRequest(cluster=A), admin)
    assert isinstance(events, api_pb2.ListEventsResponse)
    warned = [(e.object, e.type) for e in events.events if e.reason == "SecretRollFailed"]
    assert warned == [(t_app, "Warning")], warned

    # The name made before app-z existed does not receive app-z's own value.
    code, why = await outcome("ApplicationService/CreateApplication", api_pb2.CreateApplicationRequest(
        cluster=A, name="app-z", template=SQUAT, env={"PW": "pw-of-z"}), admin)
    assert code == "INVALID_ARGUMENT" and why.startswith("secrets.db.environment:") and "by hand" in why, why
