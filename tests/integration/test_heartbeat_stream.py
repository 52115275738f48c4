"""A real agent's heartbeats reach a real ccs-server (TLS, node certificate) on one stream.

The server's own metrics say it: one ``Heartbeats`` stream open, no unary ``Heartbeat`` call
handled, and the node READY after several heartbeat periods (1 s here), i.e. it was heard the
whole time through the stream. The agent's side, and the fallback to the unary call against a
server without the stream: ``tests/unit/test_agent_heartbeat_stream.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.integration.metrics_scrape import scrape_until, total, value
from tests.integration.test_metrics_server import server_with_node

pytestmark = [pytest.mark.etcd]

DISPATCHER = "ccs.v1.Dispatcher"


async def test_an_agents_heartbeats_reach_the_server_on_one_stream(tmp_path: Path, unique: str) -> None:
    async with server_with_node(tmp_path, unique) as (_srv, api, metrics):
        await scrape_until(metrics, "the heartbeat stream open",
                           lambda s: value(s, "ccs_rpc_streams_open", service=DISPATCHER, method="Heartbeats") == 1)
        await asyncio.sleep(4)  # four heartbeat periods: a node not heard for 2 periods + 1 s goes down
        samples = await scrape_until(metrics, "the stream still open", lambda s: value(
            s, "ccs_rpc_streams_open", service=DISPATCHER, method="Heartbeats") == 1)
        assert total(samples, "ccs_rpc_handled_total", service=DISPATCHER, method="Heartbeat") == 0
        nodes = await api.nodes.ListNodes(api_pb2.ListNodesRequest(cluster=unique), metadata=api.metadata)
        assert [(n.meta.name, n.status.state) for n in nodes.nodes] == [("node-1", pb.NODE_STATE_READY)]
