"""ClusterService: create, get, list, delete, join tokens."""

from __future__ import annotations

import secrets

import grpc

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import FailedPrecondition, map_errors
from controlplane.names import check_labels, check_name
from controlplane.store import keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta
from controlplane.store.txn import Txn


def new_join_token(cluster: str) -> str:
    # The cluster name is inside so an agent (and an operator reading logs) can tell
    # which cluster a token is for; the secret part is 256 bits.
    return f"CCSJOIN-{cluster}-{secrets.token_urlsafe(32)}"


@map_errors
class ClusterServicer(api_pb2_grpc.ClusterServiceServicer):
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    async def CreateCluster(
        self, request: api_pb2.CreateClusterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Cluster:
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        cluster = pb.Cluster(meta=new_meta(name, request.labels), description=request.description)
        txn = Txn().create(keys.cluster(name), cluster, "cluster", name)
        txn.put(keys.join_token(name), new_join_token(name).encode())
        record_event(txn, name, "cluster", name, "Created", f"cluster {name} created")
        cluster.meta.resource_version = await txn.commit(self.etcd)
        return cluster

    async def GetCluster(
        self, request: api_pb2.GetClusterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Cluster:
        name = check_name("name", request.name)
        return await reads.get(self.etcd, keys.cluster(name), pb.Cluster, "cluster", name)

    async def ListClusters(
        self, request: api_pb2.ListClustersRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListClustersResponse:
        page = await reads.list_page(
            self.etcd,
            keys.CLUSTERS,
            pb.Cluster,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return api_pb2.ListClustersResponse(
            clusters=page.items, next_page_token=page.next_page_token, revision=page.revision
        )

    async def DeleteCluster(
        self, request: api_pb2.DeleteClusterRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteClusterResponse:
        name = check_name("name", request.name)
        key = keys.cluster(name)
        await reads.get(self.etcd, key, pb.Cluster, "cluster", name)
        txn = Txn().require_revision(key, "cluster", name, request.resource_version)
        if not request.force:
            apps = await self.etcd.count(keys.apps(name))
            nodes = await self.etcd.count(keys.nodes(name))
            if apps or nodes:
                raise FailedPrecondition(
                    f"cluster {name!r} still has {apps} application(s) and {nodes} node(s); "
                    "remove them first or delete with force"
                )
            # Guards make the check and the delete one atomic step.
            txn.require_empty(keys.apps(name), "applications", f"cluster {name!r}")
            txn.require_empty(keys.nodes(name), "nodes", f"cluster {name!r}")
        txn.delete(key).delete_prefix(keys.subtree(name))
        await txn.commit(self.etcd)
        return api_pb2.DeleteClusterResponse()

    async def GetJoinToken(
        self, request: api_pb2.GetJoinTokenRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.GetJoinTokenResponse:
        name = check_name("cluster", request.cluster)
        await reads.get(self.etcd, keys.cluster(name), pb.Cluster, "cluster", name)
        if request.rotate:
            token = new_join_token(name)
            txn = Txn().require_present(keys.cluster(name), "cluster", name)
            txn.put(keys.join_token(name), token.encode())
            record_event(txn, name, "cluster", name, "JoinTokenRotated", "join token rotated")
            await txn.commit(self.etcd)
            return api_pb2.GetJoinTokenResponse(token=token)
        kv = await self.etcd.get(keys.join_token(name))
        if kv is None:  # a cluster made before join tokens existed
            token = new_join_token(name)
            await (
                Txn()
                .require_absent(keys.join_token(name), "join token", name)
                .put(keys.join_token(name), token.encode())
                .commit(self.etcd)
            )
            return api_pb2.GetJoinTokenResponse(token=token)
        return api_pb2.GetJoinTokenResponse(token=kv.value.decode())
