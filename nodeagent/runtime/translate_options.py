"""ServiceSpec container options -> the HostConfig part of an Engine API create body (pure).

One spec field per engine field, as `docker run` would send them; the parser
(`controlplane/compose/security.py`, `options.py`) has checked the values against Compose's
rules and the cluster's policy, so this module checks only what it needs to build a valid
body, naming the spec field. Two values need the node and are finished by
`node_security.resolve` before create: a seccomp profile path (the engine takes the JSON) and
an AppArmor profile (the engine ignores it when AppArmor is off).

`systempaths=unconfined` is not an engine security option: the docker CLI turns it into empty
`MaskedPaths`/`ReadonlyPaths`, and so does this module.
"""

from __future__ import annotations

import posixpath
from typing import Any

from ccs.v1 import resources_pb2

from .types import InvalidSpec

_NAMESPACES = ("", "host")
_SYSTEMPATHS = "systempaths=unconfined"


def host_options(spec: resources_pb2.ServiceSpec) -> dict[str, Any]:
    """The HostConfig entries for `spec`'s container options (only those that are set)."""
    out: dict[str, Any] = {}
    if spec.cap_add:
        out["CapAdd"] = list(spec.cap_add)
    if spec.cap_drop:
        out["CapDrop"] = list(spec.cap_drop)
    security = [opt for opt in spec.security_opt if opt != _SYSTEMPATHS]
    for i, opt in enumerate(security):
        if opt != "no-new-privileges" and "=" not in opt:
            raise InvalidSpec(f"spec.security_opt[{i}]", f"must be no-new-privileges or NAME=VALUE, got {opt!r}")
    if security:
        out["SecurityOpt"] = security
    if _SYSTEMPATHS in spec.security_opt:
        out["MaskedPaths"] = []
        out["ReadonlyPaths"] = []
    if spec.privileged:
        out["Privileged"] = True
    if spec.devices:
        out["Devices"] = [_device(i, d) for i, d in enumerate(spec.devices)]
    if spec.pid not in _NAMESPACES:
        raise InvalidSpec("spec.pid", f"must be empty or host, got {spec.pid!r}")
    if spec.pid:
        out["PidMode"] = spec.pid
    if spec.read_only:
        out["ReadonlyRootfs"] = True
    if spec.ulimits:
        out["Ulimits"] = [_ulimit(i, u) for i, u in enumerate(spec.ulimits)]
    if spec.shm_size_bytes < 0:
        raise InvalidSpec("spec.shm_size_bytes", "must not be negative")
    if spec.shm_size_bytes:
        out["ShmSize"] = spec.shm_size_bytes
    if spec.sysctls:
        out["Sysctls"] = dict(sorted(spec.sysctls.items()))
    for field_name, key in (
        ("extra_hosts", "ExtraHosts"),
        ("dns", "Dns"),
        ("dns_search", "DnsSearch"),
        ("dns_opt", "DnsOptions"),
        ("group_add", "GroupAdd"),
    ):
        values = list(getattr(spec, field_name))
        if values:
            out[key] = values
    if spec.tmpfs:
        for target in spec.tmpfs:
            if not posixpath.isabs(target):
                raise InvalidSpec(f"spec.tmpfs[{target!r}]", "the mount point must be an absolute path")
        out["Tmpfs"] = dict(sorted(spec.tmpfs.items()))
    if spec.HasField("init"):
        out["Init"] = spec.init
    if spec.cpu_shares < 0:
        raise InvalidSpec("spec.cpu_shares", "must not be negative")
    if spec.cpu_shares:
        out["CpuShares"] = spec.cpu_shares
    if not -1000 <= spec.oom_score_adj <= 1000:
        raise InvalidSpec("spec.oom_score_adj", f"must be in -1000..1000, got {spec.oom_score_adj}")
    if spec.oom_score_adj:
        out["OomScoreAdj"] = spec.oom_score_adj
    return out


def _device(i: int, d: resources_pb2.DeviceMapping) -> dict[str, str]:
    if not posixpath.isabs(d.path_on_host):
        raise InvalidSpec(f"spec.devices[{i}].path_on_host", f"must be an absolute path, got {d.path_on_host!r}")
    target = d.path_in_container or d.path_on_host
    if not posixpath.isabs(target):
        raise InvalidSpec(f"spec.devices[{i}].path_in_container", f"must be an absolute path, got {target!r}")
    return {"PathOnHost": d.path_on_host, "PathInContainer": target, "CgroupPermissions": d.permissions or "rwm"}


def _ulimit(i: int, u: resources_pb2.Ulimit) -> dict[str, Any]:
    if not u.name:
        raise InvalidSpec(f"spec.ulimits[{i}].name", "must not be empty")
    if u.hard != -1 and not -1 < u.soft <= u.hard:
        raise InvalidSpec(f"spec.ulimits[{i}].soft", f"{u.soft} must be within 0..{u.hard} (the hard limit)")
    return {"Name": u.name, "Soft": u.soft, "Hard": u.hard}
