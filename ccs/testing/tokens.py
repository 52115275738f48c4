"""TokenService of the fake: ``WhoAmI`` only (the fake has one token, an admin's; creating,
listing and revoking tokens answer UNIMPLEMENTED, as a servicer without them does)."""

from __future__ import annotations

from typing import Any

import grpc

from ccs.testing.state import Ctx, FakeState, fail
from ccs.v1 import api_pb2, resources_pb2, triggers_pb2

__all__ = ["TokensFake"]

#: The fake's one token is the server's first admin token, which is named ``admin``.
ADMIN = "admin"


def _user_api() -> list[str]:
    """Every call of the user API, ``Service/Method``: what the server's policy admits from an
    admin (its access tests check that every one of these has a rule)."""
    services = {**api_pb2.DESCRIPTOR.services_by_name, **triggers_pb2.DESCRIPTOR.services_by_name}
    return sorted(f"{s.name}/{m.name}" for s in services.values() for m in s.methods)


class TokensFake(FakeState):
    async def WhoAmI(self, request: Any, context: Ctx) -> api_pb2.WhoAmIResponse:
        await self._auth(context)
        if request.cluster:
            await self._name(context, "cluster", request.cluster)
        if request.application:
            await self._name(context, "application", request.application)
            if not request.cluster:
                await fail(context, grpc.StatusCode.INVALID_ARGUMENT, "application: needs cluster too")
        token = resources_pb2.Token(meta=resources_pb2.Meta(name=ADMIN), role="admin")
        return api_pb2.WhoAmIResponse(token=token, allowed=_user_api())
