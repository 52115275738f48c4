"""SecretService and ConfigService of the fake: versions, digests, and the server's refusals.

Values are kept in memory; like the server, no answer carries a secret's value (a config's comes
back from ``GetConfig``). What it does not model: encryption, ``RotateSecretsKey`` beyond its
answer, templates mounting them (the fake's templates mount nothing, so ``rm`` is never refused
for a mounting service), and the rolling of services on a new version.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.secret_names import name_problem, split_ref, value_problem
from ccs.testing.networks import NetworksFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["SecretsFake"]

R = resources_pb2


class SecretsFake(NetworksFake):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (kind, cluster, name) -> its versions, oldest first: (description, value)
        self.stored: dict[tuple[str, str, str], list[tuple[R.Secret, bytes]]] = {}
        self.key_generation = 1
        # Digests are keyed, as the server's (an HMAC under a key only it holds): see
        # controlplane.secrets.envelope.digest.
        self._digest_key = secrets.token_bytes(32)

    async def _secret_name(self, ctx: Ctx, value: str) -> str:
        problem = name_problem(value)
        if problem:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"name: {problem}")
        return value

    async def _add(self, ctx: Ctx, kind: str, request: Any, *, new: bool) -> R.Secret:
        await self._cluster(ctx, request.cluster)
        name = await self._secret_name(ctx, request.name)
        problem = value_problem(request.data)
        if problem:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"data: {problem}")
        versions = self.stored.get((kind, request.cluster, name), [])
        if new and versions:
            await fail(ctx, grpc.StatusCode.ALREADY_EXISTS, f"{kind} {name!r} already exists")
        if not new and not versions:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"{kind} {name!r} not found")
        now = Timestamp()
        now.GetCurrentTime()
        first = versions[0][0].created_at if versions else now
        number = len(versions) + 1
        digest = "hmac-sha256:" + hmac.new(self._digest_key, request.data, hashlib.sha256).hexdigest()
        secret = R.Secret(cluster=request.cluster, name=name, version=number,
                          versions=[*range(1, number + 1)], digest=digest,
                          size=len(request.data), created_at=now, first_created_at=first)
        self.stored[(kind, request.cluster, name)] = [*versions, (secret, bytes(request.data))]
        self.revision += 1
        return secret

    async def _find(self, ctx: Ctx, kind: str, request: Any) -> tuple[R.Secret, bytes]:
        await self._cluster(ctx, request.cluster)
        try:
            name, version = split_ref(request.name)
        except ValueError as exc:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"name: {exc}")
        versions = self.stored.get((kind, request.cluster, name), [])
        if not versions:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"{kind} {name!r} not found")
        found = versions[-1] if version is None else next((v for v in versions if v[0].version == version), None)
        if found is None:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"{kind} {f'{name}@{version}'!r} not found")
        secret = R.Secret()
        secret.CopyFrom(found[0])
        secret.ClearField("versions")
        secret.versions.extend(v[0].version for v in versions)
        return secret, found[1]

    async def _list(self, ctx: Ctx, kind: str, cluster: str) -> list[R.Secret]:
        await self._cluster(ctx, cluster)
        out = []
        for (k, c, _), versions in sorted(self.stored.items()):
            if (k, c) == (kind, cluster):
                latest = R.Secret()
                latest.CopyFrom(versions[-1][0])
                latest.ClearField("versions")
                latest.versions.extend(v[0].version for v in versions)
                out.append(latest)
        return out

    async def _delete(self, ctx: Ctx, kind: str, request: Any) -> api_pb2.DeleteSecretResponse:
        await self._cluster(ctx, request.cluster)
        name = await self._secret_name(ctx, request.name)
        if self.stored.pop((kind, request.cluster, name), None) is None:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"{kind} {name!r} not found")
        self.revision += 1
        return api_pb2.DeleteSecretResponse()

    @staticmethod
    def _config(s: R.Secret, data: bytes = b"") -> R.Config:
        return R.Config(cluster=s.cluster, name=s.name, version=s.version, versions=s.versions, digest=s.digest,
                        size=s.size, created_at=s.created_at, first_created_at=s.first_created_at,
                        application=s.application, data=data)

    async def CreateSecret(self, request: Any, context: Ctx) -> R.Secret:
        return await self._add(context, "secret", request, new=True)

    async def UpdateSecret(self, request: Any, context: Ctx) -> R.Secret:
        return await self._add(context, "secret", request, new=False)

    async def GetSecret(self, request: Any, context: Ctx) -> R.Secret:
        return (await self._find(context, "secret", request))[0]

    async def ListSecrets(self, request: Any, context: Ctx) -> api_pb2.ListSecretsResponse:
        return api_pb2.ListSecretsResponse(secrets=await self._list(context, "secret", request.cluster))

    async def DeleteSecret(self, request: Any, context: Ctx) -> api_pb2.DeleteSecretResponse:
        return await self._delete(context, "secret", request)

    async def RotateSecretsKey(self, request: Any, context: Ctx) -> api_pb2.RotateSecretsKeyResponse:
        await self._auth(context)
        self.key_generation += 1
        count = sum(len(v) for v in self.stored.values())
        return api_pb2.RotateSecretsKeyResponse(key_generation=self.key_generation, reencrypted=count)

    async def CreateConfig(self, request: Any, context: Ctx) -> R.Config:
        return self._config(await self._add(context, "config", request, new=True))

    async def UpdateConfig(self, request: Any, context: Ctx) -> R.Config:
        return self._config(await self._add(context, "config", request, new=False))

    async def GetConfig(self, request: Any, context: Ctx) -> R.Config:
        secret, data = await self._find(context, "config", request)
        return self._config(secret, data)

    async def ListConfigs(self, request: Any, context: Ctx) -> api_pb2.ListConfigsResponse:
        return api_pb2.ListConfigsResponse(configs=[self._config(s) for s in await self._list(
            context, "config", request.cluster)])

    async def DeleteConfig(self, request: Any, context: Ctx) -> api_pb2.DeleteSecretResponse:
        return await self._delete(context, "config", request)
