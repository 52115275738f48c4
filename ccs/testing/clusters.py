"""ClusterService and NodeService of the fake."""

from __future__ import annotations

from typing import Any

import grpc

from ccs.labels import apply_label_changes
from ccs.testing.state import Ctx, FakeState, fail
from ccs.v1 import api_pb2, resources_pb2
from ccs.version import version

__all__ = ["ClustersFake"]

# The server's policy names (controlplane/compose/security.py POLICY_KEYS; the client
# packages may not import the server, and the contract suite keeps the two equal).
POLICY_NAMES = ("privileged", "cap_add", "devices", "network_mode", "pid", "security_opt", "oom_score_adj")


class ClustersFake(FakeState):
    async def CreateCluster(self, request: Any, context: Ctx) -> resources_pb2.Cluster:
        await self._auth(context)
        name = await self._name(context, "name", request.name)
        await self._absent(context, ("cluster", name), "cluster", name)
        c = resources_pb2.Cluster(
            meta=resources_pb2.Meta(name=name, labels=request.labels), description=request.description,
            pod_cidr=request.pod_cidr or "10.128.0.0/12")
        self.commit([(("cluster", name), c)])
        return c

    async def GetCluster(self, request: Any, context: Ctx) -> resources_pb2.Cluster:
        await self._auth(context)
        await self._name(context, "name", request.name)
        return await self._cluster(context, request.name)

    async def ListClusters(self, request: Any, context: Ctx) -> api_pb2.ListClustersResponse:
        items, nxt = await self._page(context, self._items("cluster"), request.page_size, request.page_token)
        return api_pb2.ListClustersResponse(clusters=items, next_page_token=nxt, revision=self.revision)

    async def UpdateCluster(self, request: Any, context: Ctx) -> resources_pb2.Cluster:
        """The policy names are the server's; a name in both lists is refused, as there."""
        await self._auth(context)
        name = await self._name(context, "name", request.name)
        cluster = resources_pb2.Cluster()
        cluster.CopyFrom(await self._cluster(context, name))
        await self._fresh(context, cluster, request.resource_version, "cluster", name)
        for field in ("allow", "deny"):
            for index, value in enumerate(getattr(request, field)):
                if value not in POLICY_NAMES:
                    known = ", ".join(POLICY_NAMES)
                    await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                               f"{field}[{index}]: {value!r} is not a policy name; use one of {known}")
        both = sorted(set(request.allow) & set(request.deny))
        if both:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"deny: {', '.join(both)} also in allow; say one or the other")
        allowed = (set(cluster.policy.allow) | set(request.allow)) - set(request.deny)
        del cluster.policy.allow[:]
        cluster.policy.allow.extend(sorted(allowed))
        self.commit([(("cluster", name), cluster)])
        return cluster

    async def DeleteCluster(self, request: Any, context: Ctx) -> api_pb2.DeleteClusterResponse:
        await self._auth(context)
        name = await self._name(context, "name", request.name)
        cluster = await self._cluster(context, name)
        if not request.force:
            apps, nodes = len(self._items("application", name)), len(self._items("node", name))
            if apps or nodes:
                await fail(context, grpc.StatusCode.FAILED_PRECONDITION,
                           f"cluster {name!r} still has {apps} application(s) and {nodes} node(s); "
                           "remove them first or delete with force")
        await self._fresh(context, cluster, request.resource_version, "cluster", name)
        children = [k for k in self.objects if k[0] != "cluster" and k[1] == name]
        self.commit(deletes=[*children, ("cluster", name)])
        return api_pb2.DeleteClusterResponse()

    async def GetServerInfo(self, request: Any, context: Ctx) -> api_pb2.ServerInfo:
        await self._auth(context)
        return api_pb2.ServerInfo(version=version())

    async def GetJoinToken(self, request: Any, context: Ctx) -> api_pb2.GetJoinTokenResponse:
        await self._cluster(context, request.cluster)
        return api_pb2.GetJoinTokenResponse(token=f"join-{request.cluster}-{int(request.rotate)}")

    # ------------------------------------------------------------ nodes

    async def GetNode(self, request: Any, context: Ctx) -> resources_pb2.Node:
        await self._cluster(context, request.cluster)
        name = await self._name(context, "name", request.name)
        node: resources_pb2.Node = await self._get(context, ("node", request.cluster, name), "node", name)
        return node

    async def ListNodes(self, request: Any, context: Ctx) -> api_pb2.ListNodesResponse:
        await self._cluster(context, request.cluster)
        items, nxt = await self._page(
            context, self._items("node", request.cluster), request.page_size, request.page_token)
        return api_pb2.ListNodesResponse(nodes=items, next_page_token=nxt, revision=self.revision)

    async def UpdateNode(self, request: Any, context: Ctx) -> resources_pb2.Node:
        node = resources_pb2.Node()
        node.CopyFrom(await self.GetNode(request, context))
        await self._fresh(context, node, request.resource_version, "node", request.name)
        if request.availability:
            node.spec.availability = request.availability
        if request.role:
            node.spec.role = request.role
        apply_label_changes(node.meta.labels, request.labels)
        self.commit([(("node", request.cluster, request.name), node)])
        return node

    async def DeleteNode(self, request: Any, context: Ctx) -> api_pb2.DeleteNodeResponse:
        await self.GetNode(request, context)
        self.commit(deletes=[("node", request.cluster, request.name)])
        return api_pb2.DeleteNodeResponse()

    async def RevokeNode(self, request: Any, context: Ctx) -> api_pb2.RevokeNodeResponse:
        """The fake has no agents or certificates: the node must exist; nothing is revoked."""
        await self.GetNode(request, context)
        return api_pb2.RevokeNodeResponse(revoked=0)

    async def PruneNode(self, request: Any, context: Ctx) -> resources_pb2.ImagePrune:
        """The fake has no agents and no images: the node must exist; nothing is removed."""
        node = await self.GetNode(request, context)
        node.spec.prune_requested += 1
        return resources_pb2.ImagePrune(request=node.spec.prune_requested)
