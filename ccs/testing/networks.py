"""NetworkService of the fake: cluster networks, and the templates that join them.

A template's top-level ``networks`` are read only for ``external`` (and its ``name``), so that
the applications joining a network, the refusal of ``rm`` while one does, and the refusal of a
template joining a network that does not exist carry the server's codes and messages
(controlplane/api/networks.py); the contract suite holds the two equal.
"""

from __future__ import annotations

from typing import Any

import grpc
import yaml

from ccs.testing.clusters import ClustersFake
from ccs.testing.state import Ctx, fail
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["NetworksFake", "external_networks"]

R = resources_pb2


def external_networks(template: str) -> list[R.NetworkDef]:
    """The template's networks marked ``external`` (the cluster network each joins: ``name``, the
    legacy ``external: {name: N}``, else the key); [] when the template does not read."""
    try:
        doc = yaml.safe_load(template)
    except yaml.YAMLError:
        return []
    networks = doc.get("networks") if isinstance(doc, dict) else None
    out = []
    for key, options in (networks or {}).items() if isinstance(networks, dict) else ():
        opts = options if isinstance(options, dict) else {}
        external = opts.get("external")
        if external is True or isinstance(external, dict):
            legacy = external.get("name") if isinstance(external, dict) else None
            name = opts.get("name") or legacy or key
            out.append(R.NetworkDef(name=str(key), external=True, external_name=str(name)))
    return out


class NetworksFake(ClustersFake):
    def _users(self, cluster: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for app in self._items("application", cluster):
            if app.spec.desired_state == R.DESIRED_STATE_REMOVED:
                continue
            for n in app.networks:
                if n.external:
                    out.setdefault(n.external_name or n.name, []).append(app.meta.name)
        return {k: sorted(v) for k, v in out.items()}

    async def _check_external(self, ctx: Ctx, cluster: str, template: str) -> list[R.NetworkDef]:
        """The server's refusal of a template joining a cluster network that does not exist."""
        defs = external_networks(template)
        problems = [
            f"networks.{n.name}.external: network {n.external_name!r} does not exist in cluster {cluster!r}; "
            f"create it with `ccs network create {n.external_name} -c {cluster}`, or remove external: true to "
            "give the application a network of its own"
            for n in defs if ("network", cluster, n.external_name) not in self.objects
        ]
        if problems:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
        return defs

    async def CreateNetwork(self, request: Any, context: Ctx) -> R.ClusterNetwork:
        await self._cluster(context, request.cluster)
        name = await self._name(context, "name", request.name)
        key = ("network", request.cluster, name)
        await self._absent(context, key, "network", name)
        network = R.ClusterNetwork(meta=R.Meta(name=name, labels=request.labels), cluster=request.cluster,
                                   description=request.description)
        self.commit([(key, network)])
        self.add_event(request.cluster, "network", name, "Created", f"network {name} created")
        return network

    async def GetNetwork(self, request: Any, context: Ctx) -> R.ClusterNetwork:
        await self._cluster(context, request.cluster)
        name = await self._name(context, "name", request.name)
        network = R.ClusterNetwork()
        network.CopyFrom(await self._get(context, ("network", request.cluster, name), "network", name))
        network.applications.extend(self._users(request.cluster).get(name, ()))
        return network

    async def ListNetworks(self, request: Any, context: Ctx) -> api_pb2.ListNetworksResponse:
        await self._cluster(context, request.cluster)
        items, nxt = await self._page(
            context, self._items("network", request.cluster), request.page_size, request.page_token)
        users = self._users(request.cluster)
        out = []
        for item in items:
            network = R.ClusterNetwork()
            network.CopyFrom(item)
            network.applications.extend(users.get(network.meta.name, ()))
            out.append(network)
        return api_pb2.ListNetworksResponse(networks=out, next_page_token=nxt, revision=self.revision)

    async def DeleteNetwork(self, request: Any, context: Ctx) -> api_pb2.DeleteNetworkResponse:
        await self._cluster(context, request.cluster)
        name = await self._name(context, "name", request.name)
        network = await self._get(context, ("network", request.cluster, name), "network", name)
        apps = self._users(request.cluster).get(name)
        if apps:
            await fail(context, grpc.StatusCode.FAILED_PRECONDITION,
                       f"network {name!r} is used by application(s) {', '.join(apps)}: remove it from their "
                       "templates (ccs app update) or remove them (ccs app rm) first")
        await self._fresh(context, network, request.resource_version, "network", name)
        self.commit(deletes=[("network", request.cluster, name)])
        self.add_event(request.cluster, "network", name, "Deleted", f"network {name} deleted")
        return api_pb2.DeleteNetworkResponse()
