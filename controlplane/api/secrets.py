"""SecretService and ConfigService: versioned values in the encrypted store (controlplane.secrets).

No answer carries a secret's value: only its name, versions, digest, size and dates. A config's
value is returned by ``GetConfig`` (configs are not secret). A refusal never quotes a value.

``UpdateSecret`` (``UpdateConfig``) stores a new version, then re-applies the template of every
application of the cluster that mounts the name unpinned, exactly as ``ccs app update`` with no
change would: its services' FileRefs move to the new version, so their specs change and a
release rolls them (Swarm's secrets are immutable; a new one must be wired by hand). A service
pinned to ``name@N`` does not move. An application that cannot be re-applied (say, its template
now breaks the cluster's policy), or that the caller may not update (a deployer scoped to other
applications changing a shared value), keeps running its version and gets a warning event saying
why: an update never redeploys what its caller could not deploy itself.

An application's own names (``{app}_{key}``, or a value its template made) are changed only by
a caller who may update that application (:mod:`controlplane.api.secret_owners`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.secret_names import name_problem, split_ref, value_problem
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.secret_owners import may_update, owner
from controlplane.api.secret_refs import mounting
from controlplane.compose import TemplateError
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, PermissionDenied, map_errors
from controlplane.names import check_name
from controlplane.secrets.store import SecretStore, Version
from controlplane.store import Corrupt, NotFound, keys
from controlplane.store.etcd import Etcd
from controlplane.store.events import new_event
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.secrets")

#: Re-apply one application's template (``ApplicationServicer.refresh``).
Refresh = Callable[[str, str], Awaitable[object]]


def _name(field: str, value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise InvalidArgument(field, problem)
    return value


def _ref(field: str, value: str) -> tuple[str, int | None]:
    try:
        return split_ref(value)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None


def _data(data: bytes) -> bytes:
    problem = value_problem(data)
    if problem:
        raise InvalidArgument("data", problem)
    return data


def _ts(v: Version) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(v.created_at)
    return ts


def describe(v: Version, versions: list[Version]) -> pb.Secret:
    return pb.Secret(cluster=v.cluster, name=v.name, version=v.version, versions=[x.version for x in versions],
                     digest=v.digest, size=v.size, created_at=_ts(v), first_created_at=_ts(versions[0]),
                     application=v.application)


def describe_config(v: Version, versions: list[Version], data: bytes = b"") -> pb.Config:
    s = describe(v, versions)
    return pb.Config(cluster=s.cluster, name=s.name, version=s.version, versions=s.versions, digest=s.digest,
                     size=s.size, created_at=s.created_at, first_created_at=s.first_created_at,
                     application=s.application, data=data)


class _Store:
    """What both services do, for one kind."""

    def __init__(self, etcd: Etcd, store: SecretStore, kind: str, refresh: Refresh | None) -> None:
        self.etcd, self.store, self.kind, self.refresh = etcd, store, kind, refresh

    async def create(self, cluster: str, name: str, data: bytes, *, new: bool) -> Version:
        cluster = check_name("cluster", cluster)
        name = _name("name", name)
        data = _data(data)
        versions = await self.store.versions(cluster, self.kind, name)
        await self._may_change(cluster, name, versions)
        # An update of an application's own value stays its own (it goes with the application).
        made_by = versions[-1].application if versions else ""
        v = await self.store.add(cluster, self.kind, name, data, new=new, application=made_by)
        if not new:
            await self._roll(cluster, name, v)
        return v

    async def _may_change(self, cluster: str, name: str, versions: list[Version]) -> None:
        """An application's own name needs the ``update`` permission on that application
        (controlplane.api.secret_owners); a shared one, only the call's own permission."""
        app = await owner(self.etcd, cluster, name, versions)
        if app and (why := may_update(cluster, app)) is not None:
            raise PermissionDenied(f"{self.kind} {name!r} belongs to application {app!r}: {why}")

    async def _roll(self, cluster: str, name: str, v: Version) -> None:
        if self.refresh is None:
            return
        _, unpinned, _ = await mounting(self.etcd, cluster, self.kind, name)
        for app in sorted(unpinned):
            try:
                if (denied := may_update(cluster, app)) is not None:
                    # Not redeployed with the server's authority for a caller who may not.
                    raise PermissionDenied(f"the update's caller may not update this application ({denied}); "
                                           "it keeps its version until it is deployed again (ccs app update)")
                await self.refresh(cluster, app)
            except (InvalidArgument, TemplateError, FailedPrecondition, PermissionDenied, NotFound, Corrupt) as exc:
                why = str(exc)[:500]
                log.warning(f"{self.kind} update not rolled out", cluster=cluster, application=app, name=name,
                            version=v.version, reason=why)
                key, ev = new_event(cluster, "application", app, "SecretRollFailed",
                                    f"{self.kind} {name} version {v.version} not rolled out: {why}", warning=True)
                await Txn().put(key, ev).commit(self.etcd)

    async def get(self, cluster: str, ref: str) -> tuple[Version, list[Version]]:
        cluster = check_name("cluster", cluster)
        name, version = _ref("name", ref)
        v = await self.store.get(cluster, self.kind, name, version)
        return v, await self.store.versions(cluster, self.kind, name)

    async def list(self, cluster: str) -> list[list[Version]]:
        cluster = check_name("cluster", cluster)
        if await self.etcd.get(keys.cluster(cluster)) is None:
            raise NotFound("cluster", cluster)
        return await self.store.list(cluster, self.kind)

    async def delete(self, cluster: str, name: str) -> None:
        cluster = check_name("cluster", cluster)
        name = _name("name", name)
        await self._may_change(cluster, name, await self.store.versions(cluster, self.kind, name))
        mounts, _, revision = await mounting(self.etcd, cluster, self.kind, name)
        if mounts:
            who = "; ".join(f"{app} ({', '.join(sorted(s))})" for app, s in sorted(mounts.items()))
            raise FailedPrecondition(f"{self.kind} {name!r} is mounted by application(s) {who}: remove it from "
                                     "their templates (ccs app update) or remove them (ccs app rm) first")
        await self.store.delete(cluster, self.kind, name, [(keys.subtree(cluster) + "services/", revision)])


@map_errors
class SecretServicer(api_pb2_grpc.SecretServiceServicer):
    def __init__(self, etcd: Etcd, store: SecretStore, refresh: Refresh | None = None, batch: int = 50) -> None:
        self.s = _Store(etcd, store, "secret", refresh)
        self.batch = batch

    async def CreateSecret(self, request: api_pb2.CreateSecretRequest, context: grpc.aio.ServicerContext) -> pb.Secret:
        v = await self.s.create(request.cluster, request.name, request.data, new=True)
        return describe(v, [v])

    async def UpdateSecret(self, request: api_pb2.UpdateSecretRequest, context: grpc.aio.ServicerContext) -> pb.Secret:
        v = await self.s.create(request.cluster, request.name, request.data, new=False)
        return describe(v, await self.s.store.versions(v.cluster, "secret", v.name))

    async def GetSecret(self, request: api_pb2.GetSecretRequest, context: grpc.aio.ServicerContext) -> pb.Secret:
        v, versions = await self.s.get(request.cluster, request.name)
        return describe(v, versions)

    async def ListSecrets(
        self, request: api_pb2.ListSecretsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListSecretsResponse:
        return api_pb2.ListSecretsResponse(secrets=[describe(vs[-1], vs) for vs in await self.s.list(request.cluster)])

    async def DeleteSecret(
        self, request: api_pb2.DeleteSecretRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteSecretResponse:
        await self.s.delete(request.cluster, request.name)
        return api_pb2.DeleteSecretResponse()

    async def RotateSecretsKey(
        self, request: api_pb2.RotateSecretsKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.RotateSecretsKeyResponse:
        store = self.s.store
        generation, count = await store.keyring.rotate(
            lambda g, k: store.reencrypt(g, k, self.batch))
        return api_pb2.RotateSecretsKeyResponse(key_generation=generation, reencrypted=count)


@map_errors
class ConfigServicer(api_pb2_grpc.ConfigServiceServicer):
    def __init__(self, etcd: Etcd, store: SecretStore, refresh: Refresh | None = None) -> None:
        self.s = _Store(etcd, store, "config", refresh)

    async def CreateConfig(self, request: api_pb2.CreateSecretRequest, context: grpc.aio.ServicerContext) -> pb.Config:
        v = await self.s.create(request.cluster, request.name, request.data, new=True)
        return describe_config(v, [v])

    async def UpdateConfig(self, request: api_pb2.UpdateSecretRequest, context: grpc.aio.ServicerContext) -> pb.Config:
        v = await self.s.create(request.cluster, request.name, request.data, new=False)
        return describe_config(v, await self.s.store.versions(v.cluster, "config", v.name))

    async def GetConfig(self, request: api_pb2.GetSecretRequest, context: grpc.aio.ServicerContext) -> pb.Config:
        v, versions = await self.s.get(request.cluster, request.name)
        return describe_config(v, versions, await self.s.store.value(v))

    async def ListConfigs(
        self, request: api_pb2.ListSecretsRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListConfigsResponse:
        return api_pb2.ListConfigsResponse(
            configs=[describe_config(vs[-1], vs) for vs in await self.s.list(request.cluster)])

    async def DeleteConfig(
        self, request: api_pb2.DeleteSecretRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteSecretResponse:
        await self.s.delete(request.cluster, request.name)
        return api_pb2.DeleteSecretResponse()
