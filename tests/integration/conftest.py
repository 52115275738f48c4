"""Fixtures shared by several integration test modules (the session's etcd and ccs-server are in
``tests/conftest.py``): raw gRPC stubs to the session server, and the router tests' HTTP servers
and HAProxy (defined in ``router_helpers.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.router_helpers import router, servers

__all__ = ["api", "router", "servers"]


@pytest.fixture
async def api(ccs_server: ServerProc) -> AsyncIterator[Stubs]:
    """Raw stubs to the session's ccs-server, as its admin."""
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()
