"""Compose short and long syntaxes for ports, expose and volumes, as pure parsers.

Each function raises ValueError with a plain message; the caller attaches the field path.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.compose.model import BindMountOptions, PortSpec, VolumeMount
from controlplane.compose.units import to_bool
from controlplane.compose.volumes import apply_long_options, apply_short_modes

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_EXPOSE = re.compile(r"\d+(?:-\d+)?(?:/(?:tcp|udp))?")


def _port_range(text: str, what: str) -> tuple[int, int]:
    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{what} port {text!r} must be a number or a range like 8000-8010")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValueError(f"{what} port {port} must be between 1 and 65535")
    if high < low:
        raise ValueError(f"{what} port range {text!r} ends before it starts")
    return low, high


def _protocol(value: str) -> str:
    proto = value.lower()
    if proto not in ("tcp", "udp"):
        raise ValueError(f"protocol must be tcp or udp, got {value!r}")
    return proto


def _expand(target: str, published: str, protocol: str, host_ip: str, mode: str = "") -> list[PortSpec]:
    t_low, t_high = _port_range(target, "container")
    if not published:
        return [
            PortSpec(target=p, protocol=protocol, host_ip=host_ip, mode=mode)
            for p in range(t_low, t_high + 1)
        ]
    p_low, p_high = _port_range(published, "host")
    if p_high - p_low != t_high - t_low:
        if t_low == t_high:
            raise ValueError(
                f"a host port range ({published}) for one container port is not supported; "
                "publish one host port"
            )
        raise ValueError(f"host range {published} and container range {target} differ in size")
    return [
        PortSpec(target=t, published=p, protocol=protocol, host_ip=host_ip, mode=mode)
        for t, p in zip(range(t_low, t_high + 1), range(p_low, p_high + 1), strict=True)
    ]


#: Why ``ports[].mode: ingress`` is refused (the caller reports it at the ``mode`` key).
INGRESS_REFUSAL = (
    "ingress (Swarm's routing mesh: the port open on every node) is not supported: ccs publishes a "
    "port on the node that runs the container, which is mode: host. To reach a service from any "
    "node, route HTTP through the cluster's routers (x-ccs.routes or aliyun.routing.port_N). "
    "Remove mode: or write mode: host"
)


def parse_port(item: Any) -> list[PortSpec]:
    """One ``ports:`` entry (short or long syntax) as one PortSpec per port of a range."""
    if isinstance(item, dict):
        target = str(item.get("target", ""))
        if not target:
            raise ValueError("target is required")
        published = item.get("published")
        mode = str(item.get("mode") or "")
        if mode not in ("", "host"):  # ingress is refused before this, at its own key (service.py)
            raise ValueError(f"mode must be host, got {mode!r}")
        return _expand(
            target,
            "" if published is None else str(published),
            _protocol(str(item.get("protocol") or "tcp")),
            str(item.get("host_ip") or ""),
            mode,
        )
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise ValueError("must be a port like '8080:80' or a mapping")
    text = str(item).strip()
    text, _, proto = text.partition("/")
    host_ip = ""
    if text.startswith("["):  # [::1]:8080:80
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid IPv6 address in {item!r}")
        host_ip, text = text[1:end], text[end + 2 :]
    parts = text.split(":")
    if len(parts) > 3 or (host_ip and len(parts) != 2):
        raise ValueError(f"must look like [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], got {item!r}")
    if len(parts) == 3:
        host_ip = parts.pop(0)
    published = parts[0] if len(parts) == 2 else ""
    return _expand(parts[-1], published, _protocol(proto or "tcp"), host_ip)


def parse_expose(item: Any) -> str:
    """An ``expose:`` entry ("3000", 3000, "8000-8010/udp") normalized to a string."""
    text = str(item).strip()
    if isinstance(item, bool) or _EXPOSE.fullmatch(text) is None:
        raise ValueError(f"must be a port, a range or port/protocol, got {item!r}")
    return text


_VOLUME_MODES = {
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "consistent",
    "cached",
    "delegated",
    "shared",
    "slave",
    "private",
    "rshared",
    "rslave",
    "rprivate",
}


def parse_volume(item: Any) -> tuple[VolumeMount, list[str]]:
    """A ``volumes:`` entry as a mount, plus the options that were accepted but ignored."""
    if isinstance(item, dict):
        kind = str(item.get("type", ""))
        if kind not in ("volume", "bind", "tmpfs"):
            raise ValueError(f"type {kind!r} is not supported; use volume, bind or tmpfs")
        target = str(item.get("target") or "")
        if not target:
            raise ValueError("target is required")
        source = str(item.get("source") or "")
        if kind == "bind" and not source:
            raise ValueError("a bind mount needs a source")
        if kind == "tmpfs" and source:
            raise ValueError("a tmpfs mount takes no source")
        read_only = to_bool(item.get("read_only", False))
        mount = VolumeMount(type=kind, source=source, target=target, read_only=read_only)
        apply_long_options(mount, item)
        return mount, []
    if not isinstance(item, str) or not item.strip():
        raise ValueError("must be 'SOURCE:TARGET[:MODE]', a path or a mapping")
    parts = item.split(":")
    if len(parts) == 1:
        return VolumeMount(type="volume", target=parts[0]), []
    if len(parts) > 3:
        raise ValueError(f"must be 'SOURCE:TARGET[:MODE]', got {item!r}")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    unknown = [m for m in modes if m not in _VOLUME_MODES]
    if unknown:
        raise ValueError(f"unknown volume mode {unknown[0]!r} (use ro or rw)")
    if not source or not target:
        raise ValueError(f"must be 'SOURCE:TARGET[:MODE]', got {item!r}")
    kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    mount = VolumeMount(type=kind, source=source, target=target, read_only="ro" in modes)
    if kind == "bind":  # Compose: the short syntax creates a missing host path
        mount.bind = BindMountOptions(create_host_path=True)
    return mount, apply_short_modes(mount, modes)
