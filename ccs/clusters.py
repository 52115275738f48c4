"""Typed calls for clusters, their nodes and their shared networks (``client.clusters``,
``client.nodes``, ``client.networks``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ccs._transport import Listing, Transport, collect
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Clusters", "Networks", "Nodes"]


class Clusters:
    """Cluster lifecycle and the join token nodes present."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(
        self, name: str, *, description: str = "", labels: Mapping[str, str] | None = None,
        pod_cidr: str = "",
    ) -> resources_pb2.Cluster:
        """Create a cluster; ``pod_cidr`` is the IPv4 range its application networks take
        subnets from (default: a free /12 inside 10.0.0.0/8)."""
        req = api_pb2.CreateClusterRequest(name=name, description=description, labels=labels, pod_cidr=pod_cidr)
        return await self._t.unary(self._t.clusters.CreateCluster, req, resources_pb2.Cluster)

    async def get(self, name: str) -> resources_pb2.Cluster:
        req = api_pb2.GetClusterRequest(name=name)
        return await self._t.unary(self._t.clusters.GetCluster, req, resources_pb2.Cluster)

    async def list(self, *, page_size: int = 0) -> Listing[resources_pb2.Cluster]:
        async def page(token: str) -> api_pb2.ListClustersResponse:
            req = api_pb2.ListClustersRequest(page_size=page_size, page_token=token)
            return await self._t.unary(
                self._t.clusters.ListClusters, req, api_pb2.ListClustersResponse
            )

        return await collect(page, lambda r: r.clusters)

    async def update(
        self, name: str, *, allow: Iterable[str] = (), deny: Iterable[str] = (), resource_version: int = 0,
    ) -> resources_pb2.Cluster:
        """Change the cluster's policy on privileged Compose keys: add ``allow``, remove
        ``deny`` (names: privileged, cap_add, devices, network_mode, pid, security_opt,
        oom_score_adj). Templates are checked when deployed, updated or rolled back;
        applications accepted earlier keep running after a ``deny``."""
        req = api_pb2.UpdateClusterRequest(
            name=name, allow=list(allow), deny=list(deny), resource_version=resource_version
        )
        return await self._t.unary(self._t.clusters.UpdateCluster, req, resources_pb2.Cluster)

    async def delete(self, name: str, *, force: bool = False, resource_version: int = 0) -> None:
        """Delete an empty cluster; ``force`` also deletes its nodes and applications."""
        req = api_pb2.DeleteClusterRequest(
            name=name, force=force, resource_version=resource_version
        )
        await self._t.unary(self._t.clusters.DeleteCluster, req, api_pb2.DeleteClusterResponse)

    async def server_info(self) -> api_pb2.ServerInfo:
        """The answering API server's own facts: ``.version``, the ccs release it runs."""
        return await self._t.unary(
            self._t.clusters.GetServerInfo, api_pb2.GetServerInfoRequest(), api_pb2.ServerInfo
        )

    async def join_token(self, cluster: str, *, rotate: bool = False) -> str:
        """The token a node agent presents to join; ``rotate`` invalidates the old one."""
        req = api_pb2.GetJoinTokenRequest(cluster=cluster, rotate=rotate)
        resp = await self._t.unary(
            self._t.clusters.GetJoinToken, req, api_pb2.GetJoinTokenResponse
        )
        return resp.token


class Nodes:
    """Nodes join through their agent; the API reads, updates and removes them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get(self, cluster: str, name: str) -> resources_pb2.Node:
        req = api_pb2.GetNodeRequest(cluster=cluster, name=name)
        return await self._t.unary(self._t.nodes.GetNode, req, resources_pb2.Node)

    async def list(self, cluster: str, *, page_size: int = 0) -> Listing[resources_pb2.Node]:
        async def page(token: str) -> api_pb2.ListNodesResponse:
            req = api_pb2.ListNodesRequest(cluster=cluster, page_size=page_size, page_token=token)
            return await self._t.unary(self._t.nodes.ListNodes, req, api_pb2.ListNodesResponse)

        return await collect(page, lambda r: r.nodes)

    async def update(
        self,
        cluster: str,
        name: str,
        *,
        availability: resources_pb2.NodeAvailability | str | None = None,
        role: resources_pb2.NodeRole | str | None = None,
        labels: Mapping[str, str] | None = None,
        resource_version: int = 0,
    ) -> resources_pb2.Node:
        """Change availability (drain/pause/active), role or labels; unset arguments are
        left as they are, and a label with an empty value is removed."""
        req = api_pb2.UpdateNodeRequest(
            cluster=cluster,
            name=name,
            availability=availability,
            role=role,
            labels=labels,
            resource_version=resource_version,
        )
        return await self._t.unary(self._t.nodes.UpdateNode, req, resources_pb2.Node)

    async def delete(self, cluster: str, name: str, *, force: bool = False) -> None:
        """Remove the node; its certificates are revoked with it (its agent is refused at once)."""
        req = api_pb2.DeleteNodeRequest(cluster=cluster, name=name, force=force)
        await self._t.unary(self._t.nodes.DeleteNode, req, api_pb2.DeleteNodeResponse)

    async def revoke(self, cluster: str, name: str) -> int:
        """Revoke the node's certificates (its agent is refused at once and stops); the node
        stays listed and goes down. Returns how many certificates were revoked."""
        req = api_pb2.RevokeNodeRequest(cluster=cluster, name=name)
        return (await self._t.unary(self._t.nodes.RevokeNode, req, api_pb2.RevokeNodeResponse)).revoked

    async def prune(self, cluster: str, name: str, *, timeout: float = 90.0) -> resources_pb2.ImagePrune:
        """Have the node's agent remove now the registry images nothing needs (no container
        assigned to it, not one of each service's last images there); what it removed and the
        bytes freed. Waits for the agent's answer (up to a minute)."""
        req = api_pb2.PruneNodeRequest(cluster=cluster, name=name)
        return await self._t.unary(self._t.nodes.PruneNode, req, resources_pb2.ImagePrune, timeout=timeout)


class Networks:
    """Cluster networks (``ccs network create``): applications join one on purpose with a
    Compose network marked ``external: true`` (``name:`` names it, else the key), and their
    containers on it reach each other by address and by service name."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(
        self, cluster: str, name: str, *, description: str = "", labels: Mapping[str, str] | None = None,
    ) -> resources_pb2.ClusterNetwork:
        req = api_pb2.CreateNetworkRequest(cluster=cluster, name=name, description=description, labels=labels)
        return await self._t.unary(self._t.networks.CreateNetwork, req, resources_pb2.ClusterNetwork)

    async def get(self, cluster: str, name: str) -> resources_pb2.ClusterNetwork:
        """The network, with the applications whose templates join it (``applications``)."""
        req = api_pb2.GetNetworkRequest(cluster=cluster, name=name)
        return await self._t.unary(self._t.networks.GetNetwork, req, resources_pb2.ClusterNetwork)

    async def list(self, cluster: str, *, page_size: int = 0) -> Listing[resources_pb2.ClusterNetwork]:
        async def page(token: str) -> api_pb2.ListNetworksResponse:
            req = api_pb2.ListNetworksRequest(cluster=cluster, page_size=page_size, page_token=token)
            return await self._t.unary(self._t.networks.ListNetworks, req, api_pb2.ListNetworksResponse)

        return await collect(page, lambda r: r.networks)

    async def delete(self, cluster: str, name: str, *, resource_version: int = 0) -> None:
        """Delete a network no application joins (FailedPrecondition naming them otherwise)."""
        req = api_pb2.DeleteNetworkRequest(cluster=cluster, name=name, resource_version=resource_version)
        await self._t.unary(self._t.networks.DeleteNetwork, req, api_pb2.DeleteNetworkResponse)
