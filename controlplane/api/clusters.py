"""ClusterService: create, get, list, update (the policy), delete, join tokens."""

from __future__ import annotations

import ipaddress
import secrets
import zlib

import grpc

from ccs.join_token import JoinToken
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from ccs.version import version
from controlplane.api.app_policy import policy_names
from controlplane.api.common import read_modify_write
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.ipam import DEFAULT_CANDIDATES, PodCidrError, default_pod_cidr, parse_pod_cidr
from controlplane.names import MAX_DESCRIPTION, check_labels, check_name, check_text
from controlplane.pki.issuer import NodeIssuer
from controlplane.replicas import ReplicaRegistry
from controlplane.store import AlreadyExists, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, touch
from controlplane.store.txn import Txn


def new_join_token(cluster: str) -> str:
    """The stored form of a new token (:mod:`ccs.join_token`): the cluster name, so an agent
    (and an operator reading logs) can tell which cluster a token is for, and a 256-bit
    secret. The CA fingerprint is added when the token is shown, so it follows the CA."""
    return JoinToken(cluster, secrets.token_urlsafe(32), version=1).stored()


@map_errors
class ClusterServicer(api_pb2_grpc.ClusterServiceServicer):
    def __init__(self, etcd: Etcd, issuer: NodeIssuer | None = None, replicas: ReplicaRegistry | None = None) -> None:
        self.etcd = etcd
        self.issuer = issuer
        self.replicas = replicas

    async def _show(self, stored: str) -> str:
        """The token as users see it: with the CA fingerprint and the API replicas alive now
        (``@a:7443,b:7443``), so an agent given only the token can fail over among them."""
        if self.issuer is None:
            return stored
        alive = await self.replicas.current() if self.replicas is not None else []
        return self.issuer.show_token(stored, tuple(r.api_address for r in alive))

    async def GetServerInfo(
        self, request: api_pb2.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ServerInfo:
        return api_pb2.ServerInfo(version=version())

    async def CreateCluster(
        self, request: api_pb2.CreateClusterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Cluster:
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        check_text("description", request.description, MAX_DESCRIPTION)
        for attempt in range(len(DEFAULT_CANDIDATES) + 1):
            taken = await self._taken_ranges()
            if request.pod_cidr:
                try:
                    pod_cidr, indexed = parse_pod_cidr(request.pod_cidr, taken=taken), True
                except PodCidrError as exc:
                    raise InvalidArgument("pod_cidr", str(exc)) from None
            else:
                free = default_pod_cidr(taken)
                # All 16 default ranges taken: share one, picked by name. Clusters that share no
                # host may overlap (routes and bridges are per host); --pod-cidr keeps them apart.
                pod_cidr = free or DEFAULT_CANDIDATES[zlib.crc32(name.encode()) % len(DEFAULT_CANDIDATES)]
                indexed = free is not None
            cluster = pb.Cluster(meta=new_meta(name, request.labels), description=request.description,
                                 pod_cidr=str(pod_cidr))
            txn = Txn().create(keys.cluster(name), cluster, "cluster", name)
            if indexed:  # the index makes two concurrent creates pick different ranges
                txn.require_absent(keys.pod_cidr(str(pod_cidr)), "pod range", str(pod_cidr))
                txn.put(keys.pod_cidr(str(pod_cidr)), name.encode())
            txn.put(keys.join_token(name), new_join_token(name).encode())
            record_event(txn, name, "cluster", name, "Created",
                         f"cluster {name} created with pod range {pod_cidr}")
            try:
                cluster.meta.resource_version = await txn.commit(self.etcd)
            except AlreadyExists as exc:
                if exc.kind != "pod range" or request.pod_cidr or attempt == len(DEFAULT_CANDIDATES):
                    if exc.kind == "pod range":
                        raise InvalidArgument("pod_cidr", f"{pod_cidr} is taken by another cluster") from None
                    raise
                continue  # another create took that range a moment ago: pick again
            return cluster
        raise AssertionError("unreachable")

    async def _taken_ranges(self) -> list[ipaddress.IPv4Network]:
        """The ranges clusters own (the index holds the defaults and every explicit range)."""
        out = []
        for kv in (await self.etcd.range(keys.pod_cidrs(), keys_only=True)).kvs:
            text = kv.key[len(keys.pod_cidrs()):].replace("_", "/")
            try:
                out.append(ipaddress.IPv4Network(text))
            except ValueError:
                continue
        return out

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

    async def UpdateCluster(
        self, request: api_pb2.UpdateClusterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Cluster:
        return await read_modify_write(request.resource_version, lambda: self._update(request))

    async def _update(self, request: api_pb2.UpdateClusterRequest) -> pb.Cluster:
        """Add ``allow`` to the policy and take ``deny`` out of it; applications already
        accepted keep running (see :mod:`controlplane.api.app_policy`)."""
        name = check_name("name", request.name)
        allow, deny = policy_names("allow", list(request.allow)), policy_names("deny", list(request.deny))
        if both := sorted(allow & deny):
            raise InvalidArgument("deny", f"{', '.join(both)} also in allow; say one or the other")
        key = keys.cluster(name)
        cluster = await reads.get(self.etcd, key, pb.Cluster, "cluster", name)
        before = set(cluster.policy.allow)
        after = (before | allow) - deny
        if after == before:
            return cluster
        rv = request.resource_version or cluster.meta.resource_version
        cluster.policy.ClearField("allow")
        cluster.policy.allow.extend(sorted(after))
        touch(cluster.meta)
        txn = Txn().update(key, cluster, "cluster", name, rv)
        record_event(txn, name, "cluster", name, "PolicyChanged",
                     "policy allows " + (", ".join(sorted(after)) or "nothing privileged")
                     + (f" (denied now: {', '.join(sorted(before & deny))})" if before & deny else ""))
        cluster.meta.resource_version = await txn.commit(self.etcd)
        return cluster

    async def DeleteCluster(
        self, request: api_pb2.DeleteClusterRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteClusterResponse:
        name = check_name("name", request.name)
        key = keys.cluster(name)
        cluster = await reads.get(self.etcd, key, pb.Cluster, "cluster", name)
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
        # Its secrets and configs go with it (a cluster made later under the name starts empty).
        txn.delete(key).delete_prefix(keys.subtree(name)).delete_prefix(keys.secrets(name))
        txn.delete_prefix(keys.triggers(name)).delete_prefix(keys.trigger_deliveries(name))
        index = await self.etcd.get(keys.pod_cidr(cluster.pod_cidr)) if cluster.pod_cidr else None
        if index is not None and index.value.decode() == name:
            txn.delete(index.key)  # its range is free for the next cluster
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
            return api_pb2.GetJoinTokenResponse(token=await self._show(token))
        kv = await self.etcd.get(keys.join_token(name))
        if kv is None:  # a cluster made before join tokens existed
            token = new_join_token(name)
            await (
                Txn()
                .require_absent(keys.join_token(name), "join token", name)
                .put(keys.join_token(name), token.encode())
                .commit(self.etcd)
            )
            return api_pb2.GetJoinTokenResponse(token=await self._show(token))
        return api_pb2.GetJoinTokenResponse(token=await self._show(kv.value.decode()))
