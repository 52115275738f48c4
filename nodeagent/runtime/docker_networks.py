"""The application bridge networks of one Docker Engine: made on the control plane's subnet,
replaced when stale, removed with their application.

Why a module of its own: a network is the one engine object whose life is tied to an
application rather than to a container, with rules of its own (a block the control plane
handed out again, a bridge still in use, the engine's wording of a refused pool); the
container lifecycle in docker_engine.py calls it through `AppNetworks`. It shares the
runtime's thread pool and locks (`call`, `lock`), so every docker error is still mapped in
one place (docker_engine.engine_error).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import docker.errors

from . import naming
from .shared_calls import SharedCalls
from .translate import network_ipam
from .types import Bridge, NetworkFailed, NotFound, ResourceBusy, RuntimeFailure

Call = Callable[..., Awaitable[Any]]  # (doing, fn, *args, **kwargs) -> fn's result, errors mapped


def status_code(exc: docker.errors.APIError) -> int:
    return int(exc.status_code or 0)


#: How the engine words a network it cannot make: no free default pool, or a subnet that
#: overlaps one in use. The engine gives only text; this is the one place that reads it.
_POOL_ERRORS = ("address pool", "overlaps", "no available")


def network_error(exc: RuntimeFailure) -> RuntimeFailure:
    """A failed network create: permanent (NetworkFailed) when the engine refused the request
    itself (a 4xx, or its pool wording), transient when it was unavailable."""
    cause = exc.__cause__
    refused = isinstance(cause, docker.errors.APIError) and 400 <= status_code(cause) < 500
    if refused or any(text in exc.reason.lower() for text in _POOL_ERRORS):
        return NetworkFailed(exc.reason)
    return exc


def _subnets(network: dict[str, Any]) -> list[str]:
    """The IPv4 subnets of a network as the engine lists it."""
    return [str(c.get("Subnet")) for c in ((network.get("IPAM") or {}).get("Config") or ()) if c.get("Subnet")]


def _configured_for(container: dict[str, Any], name: str, network_id: str) -> bool:
    """Whether a container of the engine's list is configured to join the network (by name or
    id); one whose networks the list does not show is taken to join it."""
    networks = (container.get("NetworkSettings") or {}).get("Networks")
    if not isinstance(networks, dict):
        return True
    return name in networks or any(
        isinstance(n, dict) and n.get("NetworkID") == network_id for n in networks.values())


def _same_owner(found: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a network's labels name the cluster, application and Compose network of
    `labels` (a network made before the Compose network was labelled counts by its name)."""
    keys = (naming.MANAGED, naming.CLUSTER, naming.APP)
    return all(found.get(k) == labels.get(k) for k in keys) and found.get(naming.NETWORK, labels.get(naming.NETWORK)) \
        == labels.get(naming.NETWORK)


class AppNetworks:
    """Ensure and remove application networks on one engine."""

    def __init__(
        self,
        api: docker.APIClient,
        call: Call,
        lock: Callable[[str], asyncio.Lock],
        *,
        on_created: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._api = api
        self._call = call
        self._lock = lock
        self._on_created = on_created  # awaited after a create, before the caller goes on
        self._ensures = SharedCalls()  # concurrent ensures of one network: one engine check

    async def ensure(self, name: str, labels: dict[str, str], subnet: str = "", legacy: str = "") -> str:
        """Create the app network with the control plane's `subnet` unless it exists; return
        the engine name the container is to join (`name`, or `legacy` when adopted).

        An existing network with another subnet (made before the control plane allocated
        one, or from a block since freed) is replaced while no container uses it, and kept
        otherwise: moving running containers to a new network would cut their connections.

        `legacy` is the name an older agent gave the same bridge (`naming.legacy_network_name`).
        A network of that name is this one only if its labels name the same cluster, application
        and Compose network (the old names were ambiguous across clusters). While a container
        uses it and it has the block's subnet, it is adopted: new containers join it too (a
        second bridge on the same subnet cannot be made, and running containers must not be
        moved). Unused, it is removed and the bridge made again under the new name.

        Containers of one application that ensure the same network at the same moment share
        one check (shared_calls): a deploy of 30 replicas lists the network once or twice, not
        30 times in a row under the network's lock.
        """
        key = (name, tuple(sorted(labels.items())), subnet, legacy)
        return await self._ensures.run(key, lambda: self._ensure(name, labels, subnet, legacy))

    async def _ensure(self, name: str, labels: dict[str, str], subnet: str, legacy: str) -> str:
        async with self._lock(f"network:{name}"):
            found = await self._call("list networks", self._api.networks, names=[name])
            for net in found:
                if net.get("Name") != name:  # the name filter matches substrings
                    continue
                owner = net.get("Labels") or {}
                if not _same_owner(owner, labels):
                    # Only a network made outside ccs, or under an older agent's names (a
                    # `legacy_network_name` of another cluster can spell a new name), can be here.
                    raise NetworkFailed(
                        f"network {name} exists and is not this application's (labels: cluster "
                        f"{owner.get(naming.CLUSTER, '-')!r}, application {owner.get(naming.APP, '-')!r}); "
                        "remove or rename it")
                if not subnet or subnet in _subnets(net) or not await self._unused(net["Id"]):
                    return name
                await self._call(f"remove network {name}", self._api.remove_network, net["Id"])
            if legacy and legacy != name and await self._adopt_or_clear(legacy, labels, subnet):
                return legacy
            for retry in (True, False):
                try:
                    await self._call(
                        f"create network {name}",
                        self._api.create_network,
                        name,
                        driver="bridge",
                        labels=labels,
                        check_duplicate=True,
                        ipam=network_ipam(subnet),
                    )
                    if self._on_created is not None:
                        await self._on_created()
                    return name
                except RuntimeFailure as exc:
                    if "already exists" in exc.reason:  # another agent process won the race
                        return name
                    if retry and subnet and "overlaps" in exc.reason and await self._remove_stale(subnet, labels):
                        continue
                    err = network_error(exc)
                    if err is exc:
                        raise
                    raise err from exc.__cause__
        return name  # not reached: the last attempt returns or raises

    async def _adopt_or_clear(self, legacy: str, labels: dict[str, str], subnet: str) -> bool:
        """Whether the bridge of the older name `legacy` is this network's and in use (adopt
        it); one that is this network's but unused is removed (see `ensure`)."""
        async with self._lock(f"network:{legacy}"):
            for net in await self._call("list networks", self._api.networks, names=[legacy]):
                if net.get("Name") != legacy or not _same_owner(net.get("Labels") or {}, labels):
                    continue  # another application's (or not ccs's) network of that name
                unused = await self._unused(net["Id"])
                if (not subnet or subnet in _subnets(net)) and not unused:
                    return True
                if unused:
                    with contextlib.suppress(NotFound):
                        await self._call(f"remove network {legacy}", self._api.remove_network, net["Id"])
        return False

    async def _remove_stale(self, subnet: str, labels: dict[str, str]) -> bool:
        """Remove this cluster's app networks that overlap `subnet` and have no container left.

        The control plane frees a block once the app's last container on the node is gone and
        may hand it out again while the agent has not yet removed the old bridge (the removal
        runs after the containers'). Such a bridge is garbage: no container uses it and the app
        no longer owns the block. Returns whether one was removed (then the create is retried).
        """
        want = ipaddress.IPv4Network(subnet)
        selector = [f"{naming.MANAGED}=true", f"{naming.CLUSTER}={labels.get(naming.CLUSTER, '')}"]
        removed = False
        for net in await self._call("list networks", self._api.networks, filters={"label": selector}):
            overlapping = False
            for text in _subnets(net):
                with contextlib.suppress(ValueError):
                    overlapping = overlapping or ipaddress.IPv4Network(text).overlaps(want)
            if overlapping and await self._unused(net["Id"]):
                with contextlib.suppress(NotFound):
                    await self._call(f"remove network {net.get('Name')}", self._api.remove_network, net["Id"])
                removed = True
        return removed

    async def _unused(self, network_id: str) -> bool:
        """No container, in any state, uses the network: none is attached, and no container of
        its app is configured to join it (a created or exited container joins its network only
        when it starts, so the network's own list of containers does not show it; the engine's
        container list names the networks each container is configured for).

        Per network, not per application: an application whose network has several blocks on
        the node has a bridge per block, and the bridge of a block the control plane freed (and
        may hand to another network) is unused while the app's containers use its other ones.
        """
        try:
            attrs = await self._call("inspect network", self._api.inspect_network, network_id)
        except NotFound:
            return True
        if attrs.get("Containers"):
            return False
        labels = attrs.get("Labels") or {}
        if naming.APP not in labels:
            return False  # not an app network made by ccs: never ours to remove
        selector = [f"{naming.CLUSTER}={labels.get(naming.CLUSTER, '')}", f"{naming.APP}={labels[naming.APP]}"]
        found = await self._call("list containers", self._api.containers, all=True, filters={"label": selector})
        name = str(attrs.get("Name") or "")
        return not any(_configured_for(c, name, network_id) for c in found)

    async def connect(self, name: str, docker_id: str, aliases: tuple[str, ...] = ()) -> None:
        """Attach a created container to the network `name` (joined at its start); already
        attached (a create retried after a crash) is fine."""
        try:
            await self._call(f"connect {docker_id[:12]} to network {name}", self._api.connect_container_to_network,
                             docker_id, name, aliases=list(aliases) or None)
        except RuntimeFailure as exc:
            if "already exists" in exc.reason:
                return
            if isinstance(exc, NotFound) and "network" in exc.reason.lower():
                raise  # removed since prepare: transient, the next attempt makes it again
            err = network_error(exc)
            if err is exc:
                raise
            raise err from exc.__cause__

    async def list_app(self, cluster: str) -> list[Bridge]:
        """This cluster's application networks, each with the Compose network it stands for
        (its label, else its name read backwards) and its subnets."""
        selector = [f"{naming.MANAGED}=true", f"{naming.CLUSTER}={cluster}"]
        out = []
        for net in await self._call("list networks", self._api.networks, filters={"label": selector}):
            labels = net.get("Labels") or {}
            app, name = str(labels.get(naming.APP) or ""), str(net.get("Name") or "")
            network = str(labels.get(naming.NETWORK) or "") or naming.compose_network(cluster, app, name) or ""
            if app and network:
                out.append(Bridge(name, app, network, tuple(_subnets(net))))
        return out

    async def remove_if_unused(self, name: str) -> bool:
        """Remove the network `name` unless a container, in any state, uses it (checked under
        the network's lock, so no `ensure` of it runs meanwhile); whether it is gone now."""
        async with self._lock(f"network:{name}"):
            for net in await self._call("list networks", self._api.networks, names=[name]):
                if net.get("Name") != name:
                    continue
                if not await self._unused(net["Id"]):
                    return False
                try:
                    await self._call(f"remove network {name}", self._api.remove_network, net["Id"])
                except NotFound:
                    pass
                except RuntimeFailure as exc:
                    if isinstance(exc.__cause__, docker.errors.APIError) and status_code(exc.__cause__) == 403:
                        return False  # a container joined it since the check: in use after all
                    raise
            return True

    async def remove_app(self, cluster: str, app: str) -> None:
        """Remove every network of the application (by its labels; the default one also by
        name); ResourceBusy while containers still use one."""
        selector = [f"{naming.MANAGED}=true", f"{naming.CLUSTER}={cluster}", f"{naming.APP}={app}"]
        found = await self._call("list networks", self._api.networks, filters={"label": selector})
        names = {str(net.get("Name")) for net in found} | {naming.network_name(cluster, app)}
        for name in sorted(names):
            await self.remove(name)

    async def remove(self, name: str) -> None:
        """Remove the network `name` if it exists; ResourceBusy while containers still use it."""
        for net in await self._call("list networks", self._api.networks, names=[name]):
            if net.get("Name") != name:
                continue
            try:
                await self._call(f"remove network {name}", self._api.remove_network, net["Id"])
            except NotFound:
                pass
            except RuntimeFailure as exc:
                raise ResourceBusy(exc.reason) from exc
