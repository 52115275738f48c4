"""Fixtures shared by several integration test modules (the session's etcd and ccs-server are in
``tests/conftest.py``): raw gRPC stubs to the session server, and the router tests' HTTP servers
and HAProxy (defined in ``router_helpers.py``), and two etcd clients of the session's etcd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from controlplane.store.etcd import Etcd
from tests.conftest import EtcdProc, ServerProc
from tests.integration.docker_fixtures import _engine_leaks
from tests.integration.fabric_cleanup import leftovers, remove_leftovers
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.router_helpers import router, servers

__all__ = ["_engine_leaks", "api", "router", "servers"]


@pytest.fixture
async def api(ccs_server: ServerProc) -> AsyncIterator[Stubs]:
    """Raw stubs to the session's ccs-server, as its admin."""
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


@pytest.fixture
async def clients(etcd: EtcdProc) -> AsyncIterator[tuple[Etcd, Etcd]]:
    """Two clients of the session's etcd: this server's own, and another replica's (or any
    other writer), for tests of what one sees of the other's writes."""
    mine, other = Etcd([etcd.url]), Etcd([etcd.url])
    try:
        yield mine, other
    finally:
        await mine.close()
        await other.close()


@pytest.fixture(scope="session", autouse=True)
def _no_fabric_leftovers() -> Iterator[None]:
    """Agents started in this namespace keep their chains, sets and resolver link when they
    stop (on purpose: see fabric_cleanup.py); whatever the run added is removed at its end."""
    before = leftovers()
    yield
    remove_leftovers(before)
