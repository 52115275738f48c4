"""What ``docker inspect`` must show for a container of a ServiceSpec: the corpus test's oracle.

Written from the Compose keys' meaning and the Engine API's inspect format, not from the agent's
translation code (reading that back would prove nothing): a port is published on all the node's addresses
unless the template names one (as Compose does), a named volume is ``ccs-<app>-<key>`` unless it has a ``name:``, an
unset option shows the engine's default, Docker's own restart policy is ``no`` (ccs restarts), and
every container on an application network uses the node's resolver as its DNS server.

:func:`expected` maps a dotted inspect path to the value it must hold, or to a :class:`Check`
for what is not a plain equality; :func:`mismatches` compares. ``SPEC_FIELDS`` says, for every
ServiceSpec field, whether the container shows it (and so :func:`expected` checks it) or it acts
elsewhere (scheduler, planner, releases, routers); a unit test keeps that list complete, so a new
field cannot slip past the oracle.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import naming

SHM_DEFAULT = 64 << 20  # the engine's /dev/shm size
NS_PER_MS = 1_000_000

#: ServiceSpec fields the container shows (checked below) ...
ON_THE_CONTAINER = frozenset({
    "image", "command", "entrypoint", "environment", "ports", "expose", "volumes", "labels",
    "healthcheck", "resources", "stop_grace_period_ms", "stop_signal", "user", "working_dir",
    "hostname", "cap_add", "cap_drop", "security_opt", "privileged", "devices", "network_mode", "pid",
    "read_only", "ulimits", "shm_size_bytes", "sysctls", "extra_hosts", "dns", "dns_search", "dns_opt",
    "group_add", "tmpfs", "init", "cpu_shares", "oom_score_adj", "restart", "restart_policy",
})
#: ... and those that act elsewhere: placement, counts, releases, routing, names, node loss.
ELSEWHERE = frozenset({
    "depends_on", "networks", "mode", "replicas", "placement", "update_config", "rollback_config",
    "probe", "routes", "session_sticky", "always_pull", "strategy", "on_node_loss", "replace_unhealthy",
    # Bind mounts of files the agent writes (tests/integration/test_secret_files.py checks them).
    "secrets", "configs",
    # The cluster login an image is pulled with: the pull's auth, never on the container
    # (tests/integration/test_registry.py checks the pull and that the password is nowhere).
    "registry_login",
})


@dataclass(frozen=True)
class Check:
    """A predicate on the inspected value, with what it expects in words."""

    what: str
    ok: Callable[[Any], bool]


@dataclass(frozen=True)
class Where:
    """Where the container runs: its cluster, application and service, and the address of its
    node's DNS resolver."""

    cluster: str
    app: str
    service: str
    resolver: str


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False) or value == [] or value == {}


def _contains(items: Mapping[str, Any]) -> Check:
    return Check(f"to contain {dict(items)}", lambda got: all((got or {}).get(k) == v for k, v in items.items()))


def _superset(items: list[str]) -> Check:
    return Check(f"to include {items}", lambda got: set(items) <= set(got or []))


def _ports(spec: pb.ServiceSpec) -> dict[str, Any]:
    exposed: set[str] = set()
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in spec.ports:
        key = f"{p.target}/{p.protocol or 'tcp'}"
        exposed.add(key)
        if p.published:
            bindings.setdefault(key, []).append({"HostIp": p.host_ip or "0.0.0.0",
                                                 "HostPort": str(p.published)})
    for item in spec.expose:
        port, _, protocol = item.partition("/")
        first, _, last = port.partition("-")
        exposed |= {f"{n}/{protocol or 'tcp'}" for n in range(int(first), int(last or first) + 1)}
    if spec.network_mode == "host":  # the node's network: nothing to publish or expose
        return {"Config.ExposedPorts": None, "HostConfig.PortBindings": None}
    return {
        "Config.ExposedPorts": _superset(sorted(exposed)),
        # Routes add ephemeral bindings of their own: the template's must all be there.
        "HostConfig.PortBindings": Check(
            f"to bind {bindings}", lambda got: all(b in (got or {}).get(k, []) for k, bs in bindings.items() for b in bs)),
    }


def _mounts(spec: pb.ServiceSpec, where: Where) -> dict[str, Any]:
    """Volumes and binds show in ``Mounts``, tmpfs mounts in ``HostConfig.Mounts`` (and the
    service-level ``tmpfs:`` in ``HostConfig.Tmpfs``)."""
    runtime: list[tuple[str, str, str, bool]] = []
    tmpfs: list[str] = []
    for m in spec.volumes:
        if m.type == "tmpfs":
            tmpfs.append(m.target)
            continue
        if m.type == "volume":
            name = (m.volume.volume_name or naming.volume_name(where.cluster, where.app, m.source)) if m.source else "*"  # *: anonymous
            runtime.append(("volume", name, posixpath.normpath(m.target), not m.read_only))
        else:  # the engine cleans paths ("/media/" -> "/media")
            runtime.append(("bind", posixpath.normpath(m.source), posixpath.normpath(m.target), not m.read_only))

    def same(got: Any) -> bool:
        seen = sorted((x["Type"], x.get("Name") or x["Source"] if x["Type"] == "volume" else x["Source"],
                       x["Destination"], x["RW"]) for x in got or [])
        want = sorted(runtime)
        return len(seen) == len(want) and all(
            s[0] == w[0] and (w[1] == "*" or s[1] == w[1]) and s[2:] == w[2:] for s, w in zip(seen, want, strict=True))

    return {
        "Mounts": Check(f"to be exactly {sorted(runtime)} (type, volume name or source, target, writable)", same),
        "HostConfig.Mounts": Check(f"to hold the tmpfs mounts {tmpfs}", lambda got: sorted(
            x["Target"] for x in got or [] if x["Type"] == "tmpfs") == sorted(tmpfs)),
        "HostConfig.Tmpfs": dict(spec.tmpfs) or None,
    }


def _healthcheck(spec: pb.ServiceSpec) -> dict[str, Any]:
    if not spec.HasField("healthcheck"):
        return {}
    h = spec.healthcheck
    if h.disable or list(h.test) == ["NONE"]:
        return {"Config.Healthcheck.Test": ["NONE"]}
    out: dict[str, Any] = {
        "Config.Healthcheck.Interval": h.interval_ms * NS_PER_MS,
        "Config.Healthcheck.Timeout": h.timeout_ms * NS_PER_MS,
        "Config.Healthcheck.StartPeriod": h.start_period_ms * NS_PER_MS,
        "Config.Healthcheck.Retries": h.retries,
    }
    if h.test:
        out["Config.Healthcheck.Test"] = list(h.test)
    return out


def _security_opt(spec: pb.ServiceSpec) -> Check:
    """A seccomp profile path arrives as the file's content; systempaths=unconfined is not an option
    of the engine (it empties the masked and read-only paths)."""
    want = [o for o in spec.security_opt if o != "systempaths=unconfined"]

    def same(got: Any) -> bool:
        got = list(got or [])
        return len(got) == len(want) and all(
            g == w or (w.startswith("seccomp=/") and g.startswith("seccomp={")) for g, w in zip(got, want, strict=True))

    return Check(f"to be {want}", same)


def expected(spec: pb.ServiceSpec, where: Where) -> dict[str, Any]:
    """Dotted ``docker inspect`` path -> the value (or :class:`Check`) the container must show."""
    host_net = spec.network_mode == "host"
    app_net = naming.network_name(where.cluster, where.app)
    limits, reservations = spec.resources.limits, spec.resources.reservations
    out: dict[str, Any] = {
        "State.Running": True,
        "Config.Image": spec.image,
        "Config.Env": _superset([f"{k}={v}" for k, v in spec.environment.items()]),
        "Config.Labels": _contains({**spec.labels, "ccs.cluster": where.cluster, "ccs.app": where.app,
                                    "ccs.service": where.service}),
        "Config.StopTimeout": math.ceil(spec.stop_grace_period_ms / 1000) or None,
        # ccs restarts (restart / restart_policy act through the control plane), never the engine.
        "HostConfig.RestartPolicy.Name": "no",
        "HostConfig.NetworkMode": "host" if host_net else Check(f"to be {app_net}*", lambda got: str(got).startswith(app_net)),
        "NetworkSettings.Networks": Check(
            "to be the node's network" if host_net else f"to be the application's ({app_net}*)",
            lambda got: list(got) == ["host"] if host_net else bool(got) and all(n.startswith(app_net) for n in got)),
        # With the node resolver, the template's dns servers are its upstreams, not the engine's.
        "HostConfig.Dns": None if host_net else [where.resolver],
        "HostConfig.DnsSearch": list(spec.dns_search),
        "HostConfig.DnsOptions": list(spec.dns_opt),
        "HostConfig.ExtraHosts": list(spec.extra_hosts),
        "HostConfig.Memory": limits.memory_bytes,
        "HostConfig.NanoCpus": round(limits.cpus * 1e9),
        "HostConfig.PidsLimit": limits.pids or None,
        "HostConfig.MemoryReservation": reservations.memory_bytes,
        "HostConfig.CpuShares": spec.cpu_shares,
        "HostConfig.OomScoreAdj": spec.oom_score_adj,
        "HostConfig.CapAdd": list(spec.cap_add),
        "HostConfig.CapDrop": list(spec.cap_drop),
        "HostConfig.SecurityOpt": _security_opt(spec),
        "HostConfig.Privileged": spec.privileged,
        "HostConfig.Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container or d.path_on_host,
                                "CgroupPermissions": d.permissions or "rwm"} for d in spec.devices],
        "HostConfig.PidMode": spec.pid,
        "HostConfig.ReadonlyRootfs": spec.read_only,
        "HostConfig.Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits],
        "HostConfig.ShmSize": spec.shm_size_bytes or SHM_DEFAULT,
        "HostConfig.Sysctls": dict(spec.sysctls),
        "HostConfig.GroupAdd": list(spec.group_add),
        "HostConfig.Init": spec.init if spec.HasField("init") else None,
        **_ports(spec),
        **_mounts(spec, where),
        **_healthcheck(spec),
    }
    # Unset, these show the image's own values (or, for the hostname, the container id's head).
    for path, value in (("Config.Cmd", list(spec.command)), ("Config.Entrypoint", list(spec.entrypoint)),
                        ("Config.WorkingDir", spec.working_dir), ("Config.Hostname", spec.hostname),
                        ("Config.User", spec.user), ("Config.StopSignal", spec.stop_signal)):
        if value:
            out[path] = value
    return out


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def mismatches(inspected: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """One line per path whose inspected value is not what ``want`` says."""
    out = []
    for path, expect in want.items():
        got = _at(inspected, path)
        if isinstance(expect, Check):
            ok = expect.ok(got)
            shown = expect.what
        else:
            ok = got == expect or (_empty(got) and _empty(expect))
            shown = repr(expect)
        if not ok:
            out.append(f"{path}: expected {shown}, got {got!r}")
    return out
