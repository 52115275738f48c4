"""Spec -> Docker Engine API request: a pure function, tested with tables.

The output is the raw Engine API body of `POST /containers/create` (what `docker inspect` shows
back under Config/HostConfig), not docker-SDK keyword arguments: the SDK's high-level
`ports=` cannot expose a port without publishing it, and raw bodies make the unit tests read
like the Engine API reference.

Choices worth knowing:
- Docker's restart policy is always "no". The control plane owns restarts (with backoff,
  max attempts and rescheduling elsewhere); a daemon that restarts on its own would race the
  agent and hide crashes from it. Swarm does the same: its tasks run with restart "no" and the
  orchestrator makes a new task instead.
- Every Compose network of an application is a bridge of its own on the node
  (`naming.network_name`), and a container joins the bridge of each network its service lists
  ("default" when it lists none), in template order: the engine's create takes one network
  (`NetworkingConfig`), the runtime connects the others before the container starts
  (`CreateRequest.joins`). A network's subnet is the block the control plane allocated to it on
  this node (`Container.subnets`, by Compose network), not one from the engine's default
  pools, which hold about 30 networks; an assignment without any (a cluster older than the
  allocator) leaves the choice to the engine. A network whose first block on this node
  filled has further blocks, each its own bridge: the container joins the bridge of its
  block (`Container.subnet_index`, `naming.network_name`). An assignment from a control plane older than
  per-network blocks holds only the "default" block: the container then joins that one
  bridge, as those releases did.
- Names: with the node resolver (`dns`, the agent's `--resolver-address`) every container has
  it as DNS server (HostConfig.Dns) and no engine alias: the engine's embedded DNS answers
  only container names itself and forwards service names and aliases to the resolver, which
  answers them cluster-wide from the control plane's map (nodeagent/network). An engine alias
  would be answered locally and never forwarded, hiding the service's containers on other
  nodes. Without a resolver (the agent runs with `--resolver-address ""`), the service name
  and its Compose aliases are engine aliases, resolvable among containers on the same node.
- `network_mode: host` (admitted by the cluster's policy) puts the container on the node's
  network: no application network, no port bindings (the parser refuses ports with it), and
  the node's own resolv.conf (no node resolver).
- The container options (capabilities, security options, ulimits, dns, tmpfs, ...) are
  built by `translate_options`. A service's Compose `dns` servers are the engine's DNS
  servers only without the node resolver; with it they are the resolver's upstreams for that
  container (nodeagent/network/resolver.py), since the engine's Dns must be the resolver.
- A port with `published: 0` is only exposed on the app network. A published port binds to
  the port's own host_ip, else to the agent's `bind_address` (the node's address).
- A routed port (`spec.routes[].port`) that no `spec.ports` entry publishes gets an
  ephemeral host port on `bind_address`: the routers of every node must reach it, and a
  fixed port would collide between replicas on one node. The engine picks the port; the
  agent reports it in the container's endpoints.
- Volumes, binds and tmpfs: see `mounts`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccs.networks import joined_networks
from ccs.v1 import resources_pb2

from . import naming
from .mounts import NamedVolume, container_mounts
from .translate_options import host_options
from .types import InvalidSpec

_NS_PER_MS = 1_000_000
_MIN_MEMORY = 6 * 1024 * 1024  # the engine refuses smaller limits
_PROTOCOLS = ("tcp", "udp", "sctp")
_HEALTH_KINDS = ("CMD", "CMD-SHELL", "NONE")


@dataclass(frozen=True, slots=True)
class NetworkJoin:
    """One application network a container joins."""

    name: str  # the engine's network (naming.network_name)
    compose: str  # the Compose network it stands for
    subnet: str = ""  # its IPv4 subnet on this node; "" lets the engine pick
    aliases: tuple[str, ...] = ()  # engine aliases (only without the node resolver)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """Everything needed to create one container: its name and the Engine API body."""

    name: str
    network: str  # "" with network_mode host: the container joins no application network
    body: dict[str, Any]
    volumes: tuple[NamedVolume, ...]
    subnet: str = ""  # the first network's IPv4 subnet on this node; "" lets the engine pick
    # Every network the container joins, the first (`network`, in the create body) included;
    # the others are connected after the create, before the start.
    joins: tuple[NetworkJoin, ...] = ()


def create_request(
    c: resources_pb2.Container, *, bind_address: str, dns: Sequence[str] = ()
) -> CreateRequest:
    """Translate a ccs container assignment into an Engine API create request (`dns`: the node
    resolver's address, see the module doc).

    Raises InvalidSpec naming the offending field when the spec cannot be honoured.
    """
    spec = c.spec
    if not spec.image:
        raise InvalidSpec("spec.image", "must not be empty")
    if spec.network_mode not in ("", "host"):
        raise InvalidSpec("spec.network_mode", f"must be empty or host, got {spec.network_mode!r}")
    host_network = spec.network_mode == "host"
    joins = () if host_network else _joins(c, aliases=not dns)
    network = joins[0].name if joins else ""
    exposed, bindings = ({}, {}) if host_network else _ports(spec, bind_address)
    mounts, binds, volumes = container_mounts(c)
    endpoint: dict[str, Any] = {"Aliases": list(joins[0].aliases)} if joins and joins[0].aliases else {}

    host_config: dict[str, Any] = {
        "RestartPolicy": {"Name": "no"},
        "NetworkMode": network or "host",
        "PortBindings": bindings,
        "Mounts": mounts,
        **_resources(spec),
        **host_options(spec),
    }
    if binds:
        host_config["Binds"] = binds
    body: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "Labels": naming.container_labels(c),
        "ExposedPorts": exposed,
        "HostConfig": host_config,
    }
    if network:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
        if dns:
            host_config["Dns"] = list(dns)
    if spec.command:
        body["Cmd"] = list(spec.command)
    if spec.entrypoint:
        body["Entrypoint"] = list(spec.entrypoint)
    if spec.user:
        body["User"] = spec.user
    if spec.working_dir:
        if not posixpath.isabs(spec.working_dir):
            raise InvalidSpec("spec.working_dir", f"must be an absolute path, got {spec.working_dir!r}")
        body["WorkingDir"] = spec.working_dir
    if spec.hostname:
        body["Hostname"] = spec.hostname
    if spec.stop_signal:
        body["StopSignal"] = spec.stop_signal
    if spec.stop_grace_period_ms < 0:
        raise InvalidSpec("spec.stop_grace_period_ms", "must not be negative")
    if spec.stop_grace_period_ms:
        body["StopTimeout"] = math.ceil(spec.stop_grace_period_ms / 1000)
    if spec.HasField("healthcheck"):
        body["Healthcheck"] = _healthcheck(spec.healthcheck)
    return CreateRequest(naming.container_name(c), network, body, volumes, joins[0].subnet if joins else "", joins)


def with_volume_names(request: CreateRequest, names: Mapping[str, str]) -> CreateRequest:
    """`request` mounting `names[v]` instead of each named volume `v` (a volume made under an
    older name and adopted, `docker_volumes.Volumes.ensure`); the same request when none is."""
    mounts = request.body["HostConfig"].get("Mounts") or []
    if not any(m.get("Type") == "volume" and m.get("Source") in names for m in mounts):
        return request
    body = dict(request.body)
    host_config = dict(body["HostConfig"])
    host_config["Mounts"] = [{**m, "Source": names[m["Source"]]}
                             if m.get("Type") == "volume" and m.get("Source") in names else m for m in mounts]
    body["HostConfig"] = host_config
    return dataclasses.replace(request, body=body)


def with_network_names(request: CreateRequest, names: Mapping[str, str]) -> CreateRequest:
    """`request` joining `names[n]` instead of each engine network `n` it names (a bridge made
    under an older name and adopted, `docker_networks.AppNetworks.ensure`); the same request
    when none is renamed."""
    if not any(j.name in names for j in request.joins):
        return request
    joins = tuple(dataclasses.replace(j, name=names.get(j.name, j.name)) for j in request.joins)
    body = dict(request.body)
    host_config = dict(body["HostConfig"])
    host_config["NetworkMode"] = joins[0].name
    body["HostConfig"] = host_config
    endpoints = body["NetworkingConfig"]["EndpointsConfig"]
    body["NetworkingConfig"] = {"EndpointsConfig": {joins[0].name: endpoints[request.network]}}
    return dataclasses.replace(request, network=joins[0].name, body=body, joins=joins)


def _joins(c: resources_pb2.Container, *, aliases: bool) -> tuple[NetworkJoin, ...]:
    """The networks `c` joins, in template order, with their subnets (and engine aliases when
    there is no node resolver: the service name and its aliases on that network)."""
    spec = c.spec
    names = joined_networks(n.name for n in spec.networks)
    if c.subnets and any(n not in c.subnets for n in names) and naming.DEFAULT_NETWORK in c.subnets:
        names = (naming.DEFAULT_NETWORK,)  # a control plane older than per-network blocks
    out = []
    for name in names:
        own = [a for n in spec.networks if (n.name or naming.DEFAULT_NETWORK) == name for a in n.aliases]
        if names == (naming.DEFAULT_NETWORK,):  # one network: every alias the template gives
            own = [a for n in spec.networks for a in n.aliases]
        names_there = tuple(sorted({c.service, *own} - {""})) if aliases else ()
        engine_name = naming.network_name(c.cluster, c.application, name, c.subnet_index.get(name, 0))
        out.append(NetworkJoin(engine_name, name, _subnet(c, name), names_there))
    return tuple(out)


def _subnet(c: resources_pb2.Container, network: str) -> str:
    where = f"subnets.{network}"
    text = c.subnets.get(network, "")
    if not text:
        return ""
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise InvalidSpec(where, f"must be an IPv4 network, got {text!r} ({exc})") from None
    if net.prefixlen > 30:
        raise InvalidSpec(where, f"must leave room for containers, got /{net.prefixlen}")
    return str(net)


def network_ipam(subnet: str) -> dict[str, Any] | None:
    """The `ipam` argument of the engine's network create for `subnet` (None: engine pools)."""
    if not subnet:
        return None
    return {"Driver": "default", "Config": [{"Subnet": subnet}]}


def _ports(
    spec: resources_pb2.ServiceSpec, bind_address: str
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for i, p in enumerate(spec.ports):
        where = f"spec.ports[{i}]"
        protocol = p.protocol or "tcp"
        if protocol not in _PROTOCOLS:
            raise InvalidSpec(f"{where}.protocol", f"must be one of {_PROTOCOLS}, got {protocol!r}")
        if not 1 <= p.target <= 65535:
            raise InvalidSpec(f"{where}.target", f"must be a port in 1-65535, got {p.target}")
        if p.published > 65535:
            raise InvalidSpec(f"{where}.published", f"must be a port in 0-65535, got {p.published}")
        key = f"{p.target}/{protocol}"
        exposed[key] = {}
        if p.published:
            host_ip = p.host_ip or bind_address
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": str(p.published)})
    for i, item in enumerate(spec.expose):
        for key in _expose(item, f"spec.expose[{i}]"):
            exposed.setdefault(key, {})
    published = {p.target for p in spec.ports if p.published and (p.protocol or "tcp") == "tcp"}
    for i, route in enumerate(spec.routes):
        if not 1 <= route.port <= 65535:
            raise InvalidSpec(f"spec.routes[{i}].port", f"must be a container port in 1-65535, got {route.port}")
        if route.port in published:  # already reachable (several routes may share a port)
            continue
        published.add(route.port)
        key = f"{route.port}/tcp"
        exposed.setdefault(key, {})
        bindings.setdefault(key, []).append({"HostIp": bind_address, "HostPort": ""})  # ephemeral
    return exposed, bindings


def _expose(item: str, where: str) -> list[str]:
    """`"80"`, `"80/udp"` or `"8000-8002"` -> engine port keys."""
    port, _, protocol = item.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise InvalidSpec(where, f"protocol must be one of {_PROTOCOLS}, got {protocol!r}")
    first, _, last = port.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise InvalidSpec(where, f"must be PORT[-PORT][/PROTOCOL], got {item!r}") from None
    if not 1 <= lo <= hi <= 65535:
        raise InvalidSpec(where, f"must be ports in 1-65535 with start <= end, got {item!r}")
    return [f"{n}/{protocol}" for n in range(lo, hi + 1)]


def _resources(spec: resources_pb2.ServiceSpec) -> dict[str, int]:
    limits, reservations = spec.resources.limits, spec.resources.reservations
    out: dict[str, int] = {}
    if limits.cpus < 0:
        raise InvalidSpec("spec.resources.limits.cpus", "must not be negative")
    if limits.cpus:
        out["NanoCpus"] = round(limits.cpus * 1e9)
    for field_name, value, key in (
        ("limits.memory_bytes", limits.memory_bytes, "Memory"),
        ("reservations.memory_bytes", reservations.memory_bytes, "MemoryReservation"),
    ):
        if value < 0 or 0 < value < _MIN_MEMORY:
            raise InvalidSpec(f"spec.resources.{field_name}", f"must be 0 or at least 6 MiB, got {value}")
        if value:
            out[key] = value
    if limits.pids < 0:
        raise InvalidSpec("spec.resources.limits.pids", "must not be negative")
    if limits.pids:
        out["PidsLimit"] = limits.pids
    return out


def _healthcheck(h: resources_pb2.HealthCheck) -> dict[str, Any]:
    """Compose healthcheck -> engine Healthcheck (durations in nanoseconds).

    An empty `test` keeps the image's own HEALTHCHECK command with the given timings.
    """
    test = list(h.test)
    if h.disable or test == ["NONE"]:
        return {"Test": ["NONE"]}
    if test and test[0] not in _HEALTH_KINDS:
        raise InvalidSpec("spec.healthcheck.test", f"must start with CMD or CMD-SHELL, got {test[0]!r}")
    if test and len(test) < 2:
        raise InvalidSpec("spec.healthcheck.test", f"{test[0]} needs a command")
    out: dict[str, Any] = {"Test": test} if test else {}
    for field_name, value, key in (
        ("interval_ms", h.interval_ms, "Interval"),
        ("timeout_ms", h.timeout_ms, "Timeout"),
        ("start_period_ms", h.start_period_ms, "StartPeriod"),
    ):
        if value < 0:
            raise InvalidSpec(f"spec.healthcheck.{field_name}", "must not be negative")
        if value:
            out[key] = value * _NS_PER_MS
    if h.retries:
        out["Retries"] = h.retries
    return out
