"""The contract (fake and real server, see ``test_sdk_contract``) for ``tokens.whoami``: what the
calling token is and which calls the access policy admits from it (the web console shows only
those controls)."""

from __future__ import annotations

import pytest

import ccs
from ccs.v1 import api_pb2, triggers_pb2

from .backends import Backend, error

pytestmark = [pytest.mark.timeout(60), pytest.mark.etcd]

SERVICES = {**api_pb2.DESCRIPTOR.services_by_name, **triggers_pb2.DESCRIPTOR.services_by_name}
USER_API = sorted(f"{s.name}/{m.name}" for s in SERVICES.values() for m in s.methods)


async def test_whoami_names_the_admin_token_and_admits_every_call(client: ccs.AsyncClient, unique: str) -> None:
    for where in ((), (unique,), (unique, "shop")):
        me = await client.tokens.whoami(*where)
        assert (me.token.meta.name, me.token.role) == ("admin", "admin")
        assert list(me.allowed) == USER_API


async def test_whoami_refuses_bad_names_as_every_call_does(client: ccs.AsyncClient) -> None:
    e = await error(client.tokens.whoami("Bad_Name"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("cluster: 'Bad_Name' is not a valid name")
    e = await error(client.tokens.whoami("prod", "-x"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("application: '-x' is not a valid name")
    e = await error(client.tokens.whoami("", "shop"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "application: needs cluster too"


async def test_whoami_without_a_token_is_unauthenticated(backend: Backend) -> None:
    async with backend.client("ccs_nobody") as c:
        assert isinstance(await error(c.tokens.whoami()), ccs.Unauthenticated)


async def test_a_viewer_is_told_it_may_read_but_not_release(
    client: ccs.AsyncClient, backend: Backend, unique: str
) -> None:
    if backend.kind == "fake":
        pytest.skip("the fake has one token, an admin's")
    viewer = await client.tokens.create(f"{unique}-v", role="viewer", clusters=[unique])
    async with backend.client(viewer.secret) as c:
        me = await c.tokens.whoami(unique, "shop")
        assert (me.token.meta.name, me.token.role, list(me.token.clusters)) == (f"{unique}-v", "viewer", [unique])
        assert "ContainerService/ListContainers" in me.allowed and "TokenService/WhoAmI" in me.allowed
        assert not {"ReleaseService/ShiftTraffic", "ApplicationService/UpdateApplication"} & set(me.allowed)
        elsewhere = await c.tokens.whoami("other")
        assert list(elsewhere.allowed) == ["TokenService/WhoAmI"]
