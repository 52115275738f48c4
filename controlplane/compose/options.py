"""Compose keys that tune one container without widening what it may do.

``read_only``, ``init``, ``shm_size``, ``ulimits``, ``tmpfs``, ``extra_hosts``, ``dns``,
``dns_search``, ``dns_opt``, ``group_add``, and the legacy (Compose file format 2) resource
keys, which land on the same ServiceSpec fields as ``deploy.resources``: ``cpus``,
``mem_limit``, ``mem_reservation``, ``pids_limit``, plus ``cpu_shares`` (no ``deploy:``
twin). A template that sets a legacy key and its ``deploy.resources`` twin to different
values is refused naming both, as other claims are (``claims.py``); equal values are fine.

``memswap_limit`` is not among them: engines on kernels without swap accounting (cgroup v1
without ``swapaccount=1``, as on the machines ccs is tested on) drop it with only a log
line, so accepting it would ignore it on exactly those nodes.

Values are checked here so that a bad one names its field; the engine would refuse most of
them too, but only on the node, after the template was accepted.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any

from controlplane.compose.claims import Claims
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import ResourceAmounts, Resources, ServiceSpec, Ulimit
from controlplane.compose.units import size_bytes, to_bool, to_float, to_int, to_str

# go-units' ulimit names, which the engine accepts.
ULIMITS = frozenset(
    {
        "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
        "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
    }
)
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_DOMAIN = re.compile(r"\.|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
_DNS_OPT = re.compile(r"[a-z][a-z0-9-]*(:[0-9]+)?")
_GROUP = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*|\d+")
# tmpfs(5) and the generic mount flags the engine accepts for a tmpfs.
_TMPFS_FLAGS = frozenset(
    {
        "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "dirsync",
        "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
        "nostrictatime", "mand", "nomand",
    }
)
_TMPFS_VALUES = frozenset(["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"])
_UNLIMITED = -1


def _strings(value: Any) -> list[Any]:
    """Compose's string_or_list: one value or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ulimit_value(value: Any) -> int:
    return to_int(value, minimum=_UNLIMITED)


def _ulimits(value: dict[str, Any], path: Path, diag: Diagnostics) -> list[Ulimit]:
    out = []
    for name, setting in value.items():
        where = (*path, name)
        if name not in ULIMITS:
            diag.error(where, f"unknown ulimit; use one of {', '.join(sorted(ULIMITS))}")
            continue
        if isinstance(setting, dict):
            soft = diag.convert((*where, "soft"), _ulimit_value, setting.get("soft"))
            hard = diag.convert((*where, "hard"), _ulimit_value, setting.get("hard"))
        else:
            soft = hard = diag.convert(where, _ulimit_value, setting)
        if soft is None or hard is None:
            continue
        if hard != _UNLIMITED and (soft == _UNLIMITED or soft > hard):
            diag.error((*where, "soft"), f"{soft} is above the hard limit {hard}")
            continue
        out.append(Ulimit(name=name, soft=soft, hard=hard))
    return out


def _extra_hosts(value: Any, path: Path, diag: Diagnostics) -> list[str]:
    pairs: list[tuple[Path, str, str]] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for index, ip in enumerate(_strings(ips)):
                where = (*path, host, index) if isinstance(ips, list) else (*path, host)
                pairs.append((where, str(host), to_str(ip)))
    else:
        for index, item in enumerate(value or []):
            text = to_str(item)
            sep = "=" if "=" in text else ":"
            host, found, ip = text.partition(sep)
            if not found:
                diag.error((*path, index), f"must be HOSTNAME=IP or HOSTNAME:IP, got {text!r}")
                continue
            pairs.append(((*path, index), host.strip(), ip.strip()))
    out = []
    for where, host, ip in pairs:
        if not _HOSTNAME.fullmatch(host):
            diag.error(where, f"{host!r} is not a host name")
            continue
        if ip != "host-gateway":
            try:
                ip = str(ipaddress.ip_address(ip.strip("[]")))
            except ValueError:
                diag.error(where, f"{ip!r} is not an IP address (or host-gateway)")
                continue
        out.append(f"{host}:{ip}")
    return out


def _ip(value: Any) -> str:
    text = to_str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address; dns takes name server addresses") from None


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> str:
        text = to_str(value).strip()
        if not pattern.fullmatch(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return check


def _tmpfs(item: Any) -> tuple[str, str]:
    target, _, options = to_str(item).partition(":")
    if not posixpath.isabs(target):
        raise ValueError(f"the mount point {target!r} must be an absolute path")
    for option in filter(None, options.split(",")):
        name, sep, value = option.partition("=")
        if (sep and name not in _TMPFS_VALUES) or (not sep and name not in _TMPFS_FLAGS):
            raise ValueError(f"unknown tmpfs option {option!r}")
        if name == "size" and not re.fullmatch(r"\d+%", value):
            size_bytes(value)  # raises with the size syntax
        if name == "mode" and not re.fullmatch(r"[0-7]{3,4}", value):
            raise ValueError(f"mode must be octal like 1777, got {value!r}")
    return posixpath.normpath(target), options


def convert_options(svc: dict[str, Any], path: Path, spec: ServiceSpec, diag: Diagnostics) -> None:
    """Fill ``spec`` from the container tuning keys of ``svc``."""
    for key in ("read_only", "init"):
        if key in svc:
            flag = diag.convert((*path, key), to_bool, svc[key])
            if flag is not None:
                setattr(spec, key, flag)
    if "shm_size" in svc:
        spec.shm_size_bytes = diag.convert((*path, "shm_size"), size_bytes, svc["shm_size"])
    if isinstance(svc.get("ulimits"), dict):
        spec.ulimits = _ulimits(svc["ulimits"], (*path, "ulimits"), diag)
    if "extra_hosts" in svc:
        spec.extra_hosts = _extra_hosts(svc["extra_hosts"], (*path, "extra_hosts"), diag)
    lists: tuple[tuple[str, Any], ...] = (
        ("dns", _ip),
        ("dns_search", _matching(_DOMAIN, "a DNS domain")),
        ("dns_opt", _matching(_DNS_OPT, "a resolver option like ndots:2 or rotate")),
        ("group_add", _matching(_GROUP, "a group name or number")),
    )
    for key, convert in lists:
        values = [
            diag.convert((*path, key, index) if isinstance(svc.get(key), list) else (*path, key), convert, item)
            for index, item in enumerate(_strings(svc.get(key)))
        ]
        setattr(spec, key, [v for v in values if v is not None])
    tmpfs = svc.get("tmpfs")
    mounted = {v.target for v in spec.volumes}
    for index, item in enumerate(_strings(tmpfs)):
        where = (*path, "tmpfs", index) if isinstance(tmpfs, list) else (*path, "tmpfs")
        converted = diag.convert(where, _tmpfs, item)
        if converted is None:
            continue
        target, options = converted
        if target in mounted or target in spec.tmpfs:
            diag.error(where, f"{target} is already a mount point of this service")
            continue
        spec.tmpfs[target] = options


# legacy key -> (resources section, ResourceAmounts field, deploy.resources key, converter)
_LEGACY: dict[str, tuple[str, str, str, Any]] = {
    "cpus": ("limits", "cpus", "cpus", to_float),
    "mem_limit": ("limits", "memory_bytes", "memory", size_bytes),
    "mem_reservation": ("reservations", "memory_bytes", "memory", size_bytes),
    "pids_limit": ("limits", "pids", "pids", lambda v: to_int(v, minimum=_UNLIMITED)),
}


def apply_legacy_resources(svc: dict[str, Any], path: Path, spec: ServiceSpec, diag: Diagnostics) -> None:
    """Put the legacy resource keys on ``deploy.resources``' fields; refuse disagreements.

    ``pids_limit: -1`` means no limit, which is what an unset limit means to the engine.
    """
    deploy_resources = (svc.get("deploy") or {}).get("resources") or {}
    for key, (section, field_name, deploy_key, convert) in _LEGACY.items():
        if key not in svc:
            continue
        value = diag.convert((*path, key), convert, svc[key])
        if value is None:
            continue
        if key == "pids_limit" and value == _UNLIMITED:
            value = 0
        amounts = getattr(spec.resources, section) if spec.resources else None
        current = getattr(amounts, field_name) if amounts else None
        if current is not None:
            claims = Claims()
            twin = (*path, "deploy", "resources", section, deploy_key)
            claims.add(field_name, twin, current, ((deploy_resources.get(section) or {}).get(deploy_key)))
            claims.add(field_name, (*path, key), value, svc[key])
            claims.resolve(diag)
        elif value:
            spec.resources = spec.resources or Resources()
            amounts = amounts or ResourceAmounts()
            setattr(amounts, field_name, value)
            setattr(spec.resources, section, amounts)
    if "cpu_shares" in svc:
        shares = diag.convert((*path, "cpu_shares"), lambda v: to_int(v, minimum=2, maximum=262144), svc["cpu_shares"])
        spec.cpu_shares = shares
