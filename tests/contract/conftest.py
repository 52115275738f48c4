"""The ``backend`` fixture runs every contract test twice: against the SDK's in-process fake and
against a real ``ccs-server`` on a real etcd (see test_sdk_contract.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import ccs
from ccs.testing import FakeApi, start_server

from .backends import TOKEN, Backend


@pytest.fixture(params=["fake", "real"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "fake":
        fake = FakeApi(token=TOKEN)
        server, address = await start_server(fake)
        yield Backend("fake", address, TOKEN, fake=fake)
        await server.stop(None)
    else:
        srv = request.getfixturevalue("ccs_server")
        yield Backend("real", srv.address, srv.token, etcd_url=srv.etcd_url, ca_pem=srv.ca_pem)


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[ccs.AsyncClient]:
    async with backend.client() as c:
        yield c
