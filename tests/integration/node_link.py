"""A node as raw gRPC, for server tests that play an agent: register with a CSR over TLS, then
call the Dispatcher over mutual TLS with the node certificate, as ``ccs-agent`` does (its
``nodeagent.node_tls`` makes the key, the CSR and the channels, so this is the agent's own
code path without the agent)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import grpc.aio

from ccs.features import FEATURES, IMAGE_COLLECTION
from ccs.v1 import agent_pb2, agent_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from nodeagent import node_tls
from nodeagent.config import Identity
from tests.integration.grpc_helpers import channel


@dataclass
class NodeLink:
    """One registered node: its Dispatcher stub on the mutual-TLS channel, and what it got."""

    dispatcher: agent_pb2_grpc.DispatcherStub
    channel: grpc.aio.Channel
    registered: agent_pb2.RegisterResponse
    identity: Identity

    async def close(self) -> None:
        await self.channel.close()


#: What a registered link says it can do: every feature but image collection, which it does not
#: do (it answers no `ccs node prune`; declaring it would leave a prune request unanswered).
LINK_FEATURES = [f for f in FEATURES if f != IMAGE_COLLECTION]


def status(name: str, address: str = "192.0.2.1", capacity: pb.NodeResources | None = None) -> pb.NodeStatus:
    return pb.NodeStatus(address=address, hostname=name, agent_features=LINK_FEATURES,
                         capacity=capacity or pb.NodeResources(cpus=4, memory_bytes=8 << 30))


async def register_node(server_address: str, token: str, name: str, address: str = "192.0.2.1",
                        capacity: pb.NodeResources | None = None) -> NodeLink:
    """Register ``name`` at the server (its API port, verified as the test's TRUST says) and open
    its mutual-TLS channel to the node port (the agent's channel options: its message sizes)."""
    key_pem, csr_pem = node_tls.new_key_and_csr(name)
    api = channel(server_address)
    try:
        resp = await agent_pb2_grpc.DispatcherStub(api).Register(agent_pb2.RegisterRequest(
            join_token=token, name=name, status=status(name, address, capacity), csr_pem=csr_pem))
    finally:
        await api.close()
    identity = Identity(resp.cluster, name, "", server_address, key_pem, resp.certificate_pem, resp.ca_pem,
                        resp.node_port)
    ch = node_tls.node_channel(server_address, identity)
    return NodeLink(agent_pb2_grpc.DispatcherStub(ch), ch, resp, identity)
