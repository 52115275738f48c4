"""Compose networks: the top-level definitions, each a network of its own across the nodes.

What each key does on ccs (the support table points here):

- every Compose network of an application is its own network: blocks of the cluster's pod range
  on each node that runs a container on it, its own bridge there, its own firewall set, its own
  names (controlplane/ipam, controlplane/netmap, nodeagent/network). A service lists the
  networks it joins; one that lists none is on ``default``, as in Compose. A container on
  ``front`` only cannot reach one on ``back`` only; one on both reaches both.
- ``driver``: ``bridge`` and ``overlay`` (and no driver) all mean that ccs network, which spans
  the nodes like Swarm's overlay; any other driver (``macvlan``, ``host``, a plugin) would give a
  network ccs does not route or police, so it is refused naming the field.
- ``internal: true``: the network's blocks send nothing outside the network (the nodes'
  firewalls drop it), as Docker's internal networks have no egress.
- ``external: true`` joins a *cluster network* made with ``ccs network create NAME``, named by
  ``name:`` (else the key itself, as in Compose; the legacy ``external: {name: N}`` too). Every
  application that joins it is on one network with the others. Whether it exists is checked
  when the template is accepted (the parser does not know the cluster). ``driver``,
  ``internal`` and the other settings describe a network to create, so with ``external`` they
  are refused, as Compose refuses them.
- ``name:`` without ``external``: refused. Compose would give the engine's network that name;
  ccs makes one bridge per application network on every node and names them itself, so a fixed
  name would make two applications share a bridge by accident. Sharing is what ``external``
  with ``ccs network create`` is for.
- ``attachable``, ``enable_ipv4``, ``enable_ipv6``: the value ccs networks have is accepted
  (``attachable: false``: only the application's containers join; IPv4 on, IPv6 off), the other
  refused with what to do instead.
- ``labels``, ``driver_opts`` and ``ipam`` are refused (support table): the bridges are made per
  node by the agents, with the control plane's subnets and ccs's labels.
"""

from __future__ import annotations

from typing import Any

from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import NetworkDef
from controlplane.compose.units import to_bool

#: The drivers that mean the ccs cross-node network.
DRIVERS = ("bridge", "overlay")
#: What an external network may set besides ``external``.
_EXTERNAL_KEYS = ("external", "name")
_CLUSTER_NETWORK = "ccs network create"


def _external(value: Any, path: Path, diag: Diagnostics) -> tuple[bool, str | None]:
    """``external: true`` or the legacy ``external: {name: N}`` -> (external, legacy name)."""
    if isinstance(value, dict):
        name = value.get("name")
        if name is not None and not isinstance(name, str):
            diag.error((*path, "name"), "must be a string")
            return True, None
        return True, name
    if value is None:
        return False, None
    converted = diag.convert(path, to_bool, value)
    return bool(converted), None


def _flag(opts: dict[str, Any], key: str, path: Path, diag: Diagnostics) -> bool | None:
    if key not in opts:
        return None
    value = diag.convert((*path, key), to_bool, opts[key])
    return None if value is None else bool(value)


def network_def(name: str, opts: dict[str, Any], diag: Diagnostics) -> NetworkDef:
    """One top-level network definition (``opts`` already a mapping), errors reported."""
    path: Path = ("networks", name)
    external, legacy_name = _external(opts.get("external"), (*path, "external"), diag)
    explicit_name = opts.get("name")
    if explicit_name is not None and not isinstance(explicit_name, str):
        diag.error((*path, "name"), "must be a string")
        explicit_name = None
    if external:
        for key in sorted(k for k in opts if k not in _EXTERNAL_KEYS and not str(k).startswith("x-")):
            diag.error((*path, key), "cannot be set on an external network: it is the cluster network's "
                       f"({_CLUSTER_NETWORK}); keep only external and name")
        if legacy_name is not None and explicit_name is not None and legacy_name != explicit_name:
            diag.error((*path, "external", "name"), f"disagrees with name: {explicit_name!r}")
        joined = explicit_name or legacy_name or name
        return NetworkDef(name=name, external=True, external_name=joined)
    if explicit_name is not None:
        diag.error((*path, "name"), "is only for external networks: ccs names each application's networks "
                   "itself (a fixed name would share a bridge between applications); to share a network "
                   f"between applications, create it with `{_CLUSTER_NETWORK} NAME` and set external: true")
    driver = opts.get("driver")
    if driver is not None and driver not in DRIVERS:
        diag.error((*path, "driver"), f"{driver!r} is not supported: use bridge or overlay (both mean the ccs "
                   "network across the nodes), or leave it out")
    if _flag(opts, "attachable", path, diag):
        diag.error((*path, "attachable"), "true is not supported: an application's networks hold only its own "
                   f"containers; to share one between applications, create it with `{_CLUSTER_NETWORK} NAME` "
                   "and join it with external: true")
    if _flag(opts, "enable_ipv4", path, diag) is False:
        diag.error((*path, "enable_ipv4"), "false is not supported: ccs networks are IPv4 networks")
    if _flag(opts, "enable_ipv6", path, diag):
        diag.error((*path, "enable_ipv6"), "true is not supported: ccs networks are IPv4 only (no IPv6 "
                   "addresses, routes or firewall)")
    internal = _flag(opts, "internal", path, diag)
    return NetworkDef(name=name, driver=driver if driver in DRIVERS else None, internal=bool(internal))


__all__ = ["DRIVERS", "network_def"]
