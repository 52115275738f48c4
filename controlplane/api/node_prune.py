"""``NodeService/PruneNode`` (``ccs node prune NODE``): the node's agent collects images now.

The control plane cannot reach an agent but through its session, and the agent's heartbeat
already reads and writes the node record, so the request is a counter: PruneNode raises
``NodeSpec.prune_requested`` by one (a guarded write, like any spec change), the next heartbeat
answer carries it, the agent collects (nodeagent.images) and reports the result in its next
heartbeat as ``NodeStatus.prune``; PruneNode waits for that report and returns it. A node that
is not READY is refused at once (nothing written): its agent could not answer.
"""

from __future__ import annotations

import asyncio

from ccs.features import IMAGE_COLLECTION
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import FailedPrecondition
from controlplane.names import check_name
from controlplane.store import Conflict, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.meta import touch
from controlplane.store.txn import Txn

#: Seconds PruneNode waits for the agent's answer (two heartbeats, a collection, margin).
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.5


async def prune_node(etcd: Etcd, request: api_pb2.PruneNodeRequest, wait: float = WAIT_SECONDS) -> pb.ImagePrune:
    cluster = check_name("cluster", request.cluster)
    name = check_name("name", request.name)
    key = keys.node(cluster, name)
    for _ in range(8):
        node = await reads.get(etcd, key, pb.Node, "node", name)
        if node.status.state != pb.NODE_STATE_READY:
            state = pb.NodeState.Name(node.status.state).removeprefix("NODE_STATE_")
            raise FailedPrecondition(f"node {name!r} is {state}: its agent cannot collect images now")
        if IMAGE_COLLECTION not in node.status.agent_features:
            # Refused before the request is written: an agent that does not collect would leave
            # it unanswered (ccs.features: an older agent lists no such feature).
            raise FailedPrecondition(f"node {name!r}: its agent does not collect images (older than this "
                                     "server: upgrade it)")
        node.spec.prune_requested += 1
        target = node.spec.prune_requested
        touch(node.meta)
        try:
            await Txn().update(key, node, "node", name, node.meta.resource_version).commit(etcd)
            break
        except Conflict:
            continue  # a heartbeat wrote the record meanwhile: read again
    else:
        raise Conflict("node", name, 0, 0)
    loop = asyncio.get_running_loop()
    end = loop.time() + wait
    while loop.time() < end:
        await asyncio.sleep(POLL_SECONDS)
        node = await reads.get(etcd, key, pb.Node, "node", name)
        if node.status.prune.request >= target:
            return node.status.prune
    raise FailedPrecondition(f"node {name!r}: its agent did not report the image collection within {wait:.0f} s "
                             "(an agent older than the server does not collect images); it may still run")
