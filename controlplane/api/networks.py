"""NetworkService: the cluster networks that applications share on purpose, and the check of the
templates that join them.

A Compose network marked ``external: true`` joins a *cluster network* made beforehand with
``ccs network create NAME`` (Compose's ``docker network create`` + ``external: true``): every
application that joins it is on one network with the others (controlplane/netmap gives the
nodes their entries with ``shared`` set). The record holds no list of its users: who uses a
network is what the applications' templates say (``Application.networks``), read when asked,
so nothing has to be kept in step.

Races, closed by etcd guards rather than locks:

- accepting a template that joins a network (deploy, update, rollback) reads the network's
  record and requires it unchanged in the accepting write (:func:`check_external`), so a
  ``rm`` that lands in between makes the write fail; the refusal then names the field and the
  fix, as if the network had never existed;
- ``rm`` reads every application at one revision, refuses while one joins the network (naming
  them), and deletes with a guard that no application record was written since that read, so
  a deploy that lands in between makes the delete fail and be retried against it.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.api.common import read_modify_write
from controlplane.compose import ParsedTemplate
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.names import check_labels, check_name
from controlplane.store import Corrupt, NotFound, keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta
from controlplane.store.txn import Txn

__all__ = ["NetworkGuard", "NetworkServicer", "check_external", "guard_networks", "joined", "missing_network"]

NetworkGuard = tuple[str, str, int]  # (etcd key, network name, mod_revision)


def joined(app: pb.Application) -> dict[str, str]:
    """Cluster network -> the Compose key that joins it, for one application's template."""
    return {n.external_name or n.name: n.name for n in app.networks if n.external}


def missing_network(cluster: str, key: str, name: str) -> str:
    """The refusal of a template naming a cluster network that does not exist: field and fix."""
    return (f"networks.{key}.external: network {name!r} does not exist in cluster {cluster!r}; "
            f"create it with `ccs network create {name} -c {cluster}`, or remove external: true to give "
            "the application a network of its own")


async def check_external(etcd: Etcd, cluster: str, parsed: ParsedTemplate) -> list[NetworkGuard]:
    """Refuse a template whose external networks do not all exist (INVALID_ARGUMENT, naming each
    field and the command that makes it); return the guards for the accepting write."""
    guards: list[NetworkGuard] = []
    problems: list[str] = []
    for n in parsed.networks:
        if not n.external:
            continue
        name = n.external_name or n.name
        kv = await etcd.get(keys.network(cluster, name)) if _valid(name) else None
        if kv is None:
            problems.append(missing_network(cluster, n.name, name))
        else:
            guards.append((kv.key, name, kv.mod_revision))
    if problems:
        field, _, first = problems[0].partition(": ")
        raise InvalidArgument(field, "; ".join([first, *problems[1:]]))
    return guards


def guard_networks(txn: Txn, guards: Iterable[NetworkGuard]) -> Txn:
    """Make ``txn`` require each checked network unchanged (deleted: NotFound("network", name))."""
    for key, name, revision in guards:
        txn.require_revision(key, "network", name, revision)
    return txn


def refusal_for(cluster: str, parsed: ParsedTemplate, exc: NotFound) -> InvalidArgument | None:
    """A guarded write failed because a checked network was removed meanwhile: the refusal the
    check would have given (None: some other record was missing)."""
    if exc.kind != "network":
        return None
    for n in parsed.networks:
        if n.external and (n.external_name or n.name) == exc.name:
            field, _, problem = missing_network(cluster, n.name, exc.name).partition(": ")
            return InvalidArgument(field, problem)
    return None


def _valid(name: str) -> bool:
    try:
        check_name("name", name)
    except InvalidArgument:
        return False
    return True


async def _users(etcd: Etcd, cluster: str, *, strict: bool) -> tuple[dict[str, list[str]], int]:
    """Cluster network -> the applications joining it, sorted; and the revision read at.
    An application being removed joins nothing (its containers are on its own bridges, which
    go with them; no other application can join through it).

    ``strict``: an application record that does not decode fails the read (DATA_LOSS naming
    it), since whether it joins the network is unknown; otherwise it is left out.
    """
    res = await etcd.range(keys.apps(cluster))
    out: dict[str, list[str]] = {}
    bad: dict[str, str] = {}
    for kv in res.kvs:
        try:
            app = decode(kv, pb.Application)
        except Corrupt as exc:
            bad.update(exc.bad)
            continue
        if app.spec.desired_state == pb.DESIRED_STATE_REMOVED:
            continue  # being removed (`ccs app rm`): it joins nothing any more
        for name in joined(app):
            out.setdefault(name, []).append(app.meta.name)
    if bad and strict:
        raise Corrupt(bad, f"applications of cluster {cluster!r}")
    return {k: sorted(v) for k, v in out.items()}, res.revision


@map_errors
class NetworkServicer(api_pb2_grpc.NetworkServiceServicer):
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    async def CreateNetwork(
        self, request: api_pb2.CreateNetworkRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClusterNetwork:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        network = pb.ClusterNetwork(meta=new_meta(name, request.labels), cluster=cluster,
                                    description=request.description)
        txn = Txn().require_present(keys.cluster(cluster), "cluster", cluster)
        txn.create(keys.network(cluster, name), network, "network", name)
        record_event(txn, cluster, "network", name, "Created", f"network {name} created")
        network.meta.resource_version = await txn.commit(self.etcd)
        return network

    async def GetNetwork(
        self, request: api_pb2.GetNetworkRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClusterNetwork:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        network = await reads.get(self.etcd, keys.network(cluster, name), pb.ClusterNetwork, "network", name)
        users, _ = await _users(self.etcd, cluster, strict=False)
        network.applications.extend(users.get(name, ()))
        return network

    async def ListNetworks(
        self, request: api_pb2.ListNetworksRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListNetworksResponse:
        cluster = check_name("cluster", request.cluster)
        await reads.get(self.etcd, keys.cluster(cluster), pb.Cluster, "cluster", cluster)
        page = await reads.list_page(self.etcd, keys.networks(cluster), pb.ClusterNetwork,
                                     page_size=request.page_size, page_token=request.page_token)
        users, _ = await _users(self.etcd, cluster, strict=False)
        for network in page.items:
            network.applications.extend(users.get(network.meta.name, ()))
        return api_pb2.ListNetworksResponse(networks=page.items, next_page_token=page.next_page_token,
                                            revision=page.revision)

    async def DeleteNetwork(
        self, request: api_pb2.DeleteNetworkRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteNetworkResponse:
        return await read_modify_write(request.resource_version, lambda: self._delete(request))

    async def _delete(self, request: api_pb2.DeleteNetworkRequest) -> api_pb2.DeleteNetworkResponse:
        cluster = check_name("cluster", request.cluster)
        name = check_name("name", request.name)
        key = keys.network(cluster, name)
        kv = await self.etcd.get(key)
        if kv is None:
            raise NotFound("network", name)
        users, revision = await _users(self.etcd, cluster, strict=True)
        if users.get(name):
            apps = ", ".join(users[name])
            raise FailedPrecondition(
                f"network {name!r} is used by application(s) {apps}: remove it from their templates "
                "(ccs app update) or remove them (ccs app rm) first"
            )
        txn = Txn().require_revision(key, "network", name, request.resource_version or kv.mod_revision)
        txn.require_unchanged(keys.apps(cluster), revision, "applications", f"cluster {cluster!r}")
        txn.delete(key)
        record_event(txn, cluster, "network", name, "Deleted", f"network {name} deleted")
        await txn.commit(self.etcd)
        return api_pb2.DeleteNetworkResponse()
