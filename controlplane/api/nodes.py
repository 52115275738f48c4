"""NodeService: nodes appear when an agent registers; operators drain, label and remove them."""

from __future__ import annotations

import datetime as dt

import grpc

from ccs.labels import apply_label_changes
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.cached_lists import bounded, list_page
from controlplane.api.common import CacheReader, read_modify_write
from controlplane.api.list_memo import list_answer
from controlplane.api.node_prune import prune_node
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.informer import Informer
from controlplane.names import check_labels, check_name
from controlplane.pki import node_certs
from controlplane.store import NotFound, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import touch
from controlplane.store.txn import Txn

_AVAILABILITY = {
    pb.NODE_AVAILABILITY_ACTIVE: "active",
    pb.NODE_AVAILABILITY_PAUSE: "pause",
    pb.NODE_AVAILABILITY_DRAIN: "drain",
}


@map_errors
class NodeServicer(api_pb2_grpc.NodeServiceServicer):
    def __init__(self, etcd: Etcd, informer: Informer | None = None) -> None:
        self.etcd = etcd
        self.cache = CacheReader(etcd, informer)

    async def GetNode(self, request: api_pb2.GetNodeRequest, context: grpc.aio.ServicerContext) -> pb.Node:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        state = await self.cache.state(cluster)
        if state is not False:
            self.cache.check_decodes(state, f"node {name!r}", keys.node(cluster, name))
            node = state.nodes.get(name) if state is not None else None
            if node is None:
                raise NotFound("node", name)
            return node
        return await reads.get(self.etcd, keys.node(cluster, name), pb.Node, "node", name)

    async def ListNodes(
        self, request: api_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListNodesResponse:
        cluster = check_name("cluster", request.cluster)
        return await list_answer(self.cache, request, lambda: list_page(
            self.cache, cluster, ("cluster", cluster), keys.nodes(cluster), pb.Node,
            lambda state: bounded(((keys.node(cluster, n), node) for n, node in state.nodes.items()),
                                  len(state.nodes)),
            page_size=request.page_size, page_token=request.page_token), lambda page: api_pb2.ListNodesResponse(
            nodes=page.items, next_page_token=page.next_page_token, revision=page.revision))

    async def UpdateNode(
        self, request: api_pb2.UpdateNodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.Node:
        return await read_modify_write(request.resource_version, lambda: self._UpdateNode(request))

    async def _UpdateNode(self, request: api_pb2.UpdateNodeRequest) -> pb.Node:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        # proto3 enums are open: a number the schema does not define arrives as it is.
        if request.availability not in pb.NodeAvailability.values():
            raise InvalidArgument("availability", f"{request.availability} is not a NodeAvailability")
        if request.role not in pb.NodeRole.values():
            raise InvalidArgument("role", f"{request.role} is not a NodeRole")
        key = keys.node(cluster, name)
        node = await reads.get(self.etcd, key, pb.Node, "node", name)
        rv = request.resource_version or node.meta.resource_version
        changes = []
        if request.availability:
            node.spec.availability = request.availability
            changes.append(f"availability {_AVAILABILITY.get(request.availability, '?')}")
        if request.role:
            node.spec.role = request.role
            changes.append(f"role {pb.NodeRole.Name(request.role)}")
        apply_label_changes(node.meta.labels, request.labels)
        changes.extend(f"label {k}={v}" for k, v in request.labels.items())
        touch(node.meta)
        txn = Txn().update(key, node, "node", name, rv)
        record_event(txn, cluster, "node", name, "Updated", "; ".join(changes) or "no change")
        node.meta.resource_version = await txn.commit(self.etcd)
        return node

    async def DeleteNode(
        self, request: api_pb2.DeleteNodeRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteNodeResponse:
        return await read_modify_write(0, lambda: self._DeleteNode(request))

    async def _existing(self, request: api_pb2.DeleteNodeRequest | api_pb2.RevokeNodeRequest
                        ) -> tuple[str, str, str, int]:
        """(cluster, name, key, mod revision) of the node a request names; NotFound if none.

        The record's content is not read, so a node whose record does not decode can still be
        removed or revoked (that is how it is repaired); the guard is its raw revision."""
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        key = keys.node(cluster, name)
        kv = await self.etcd.get(key)
        if kv is None:
            raise NotFound("node", name)
        return cluster, name, key, kv.mod_revision

    async def _DeleteNode(self, request: api_pb2.DeleteNodeRequest) -> api_pb2.DeleteNodeResponse:
        cluster, name, key, revision = await self._existing(request)
        if not request.force:
            containers, _ = await reads.list_all(self.etcd, keys.containers(cluster), pb.Container)
            mine = [c for c in containers if c.node == name]
            if mine:
                raise FailedPrecondition(
                    f"node {name!r} still has {len(mine)} container(s); drain it first "
                    "(ccs node drain) or remove it with force"
                )
        txn = Txn().require_revision(key, "node", name, revision).delete(key)
        txn.delete_prefix(keys.subnets(cluster, name))  # its blocks go with it
        txn.delete_prefix(keys.subnet_blocks(cluster, name))
        txn.delete_prefix(keys.alive(cluster, name))  # no replica vouches for a removed node
        revoked = await self._revoke(txn, cluster, name)  # its agent is refused at once
        record_event(txn, cluster, "node", name, "Removed",
                     f"node {name} removed" + (f"; {revoked} certificate(s) revoked" if revoked else ""))
        await txn.commit(self.etcd)
        return api_pb2.DeleteNodeResponse()

    async def _revoke(self, txn: Txn, cluster: str, name: str) -> int:
        """Add to ``txn`` the revocation of the node's certificates and of its bearer
        credential (--insecure); returns how many certificates."""
        cred = await self.etcd.get(f"{keys.subtree(cluster)}nodecred/{name}")
        if cred is not None:
            txn.delete(keys.token(cred.value.decode())).delete(cred.key)
        return await node_certs.revoke_all(self.etcd, txn, cluster, name, dt.datetime.now(dt.UTC))

    async def PruneNode(self, request: api_pb2.PruneNodeRequest, context: grpc.aio.ServicerContext) -> pb.ImagePrune:
        return await prune_node(self.etcd, request)

    async def RevokeNode(
        self, request: api_pb2.RevokeNodeRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.RevokeNodeResponse:
        return await read_modify_write(0, lambda: self._RevokeNode(request))

    async def _RevokeNode(self, request: api_pb2.RevokeNodeRequest) -> api_pb2.RevokeNodeResponse:
        cluster, name, key, revision = await self._existing(request)
        txn = Txn().require_revision(key, "node", name, revision)
        revoked = await self._revoke(txn, cluster, name)
        record_event(txn, cluster, "node", name, "Revoked",
                     f"node {name}: {revoked} certificate(s) revoked; its agent is refused until it registers again")
        await txn.commit(self.etcd)
        return api_pb2.RevokeNodeResponse(revoked=revoked)
