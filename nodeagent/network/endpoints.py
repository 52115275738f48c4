"""Routes inside the local containers that are on several networks (planned by
`plan.endpoint_routes`, see there why).

Written with the host's `ip` in the container's network namespace (`nsenter -t PID -n`), one
`ip -batch` per container that needs a change, after one `ip -j route show` that reads what it
holds. Why a process and not pyroute2 here: pyroute2 enters another namespace by forking a
helper process from the agent (which runs threads: the docker SDK's pool), and nsenter with
iproute2 is what every host that runs Docker has; the count is one read per multi-network
container per apply (every 30 s and on change), not one per packet or per route.

The routes carry ccs's protocol number (`routes.PROTO`), so what ccs wrote is told apart from
what the engine set up (the connected routes of the interfaces); the default route is replaced
in place (the engine's has another protocol) and stays ccs's until the container goes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from .plan import DEFAULT_ROUTE

PROTO = 204  # the same number as the node's own routes (routes.PROTO), without importing pyroute2
TIMEOUT = 10.0


class EndpointError(Exception):
    """A container's routes could not be read or written; the message says which and why."""


def _parse(routes: list[dict[str, Any]]) -> dict[IPv4Network, tuple[IPv4Address, IPv4Address]]:
    out: dict[IPv4Network, tuple[IPv4Address, IPv4Address]] = {}
    for r in routes:
        dst, gateway, source = r.get("dst"), r.get("gateway"), r.get("prefsrc")
        if not dst or not gateway or not source:
            continue
        net = DEFAULT_ROUTE if dst == "default" else IPv4Network(dst, strict=False)
        out[net] = (IPv4Address(gateway), IPv4Address(source))
    return out


def changes(desired: Mapping[IPv4Network, tuple[IPv4Address, IPv4Address]],
            current: Mapping[IPv4Network, tuple[IPv4Address, IPv4Address]]) -> list[str]:
    """`ip -batch` lines that make `current` (ccs's routes in the container) equal `desired`."""
    lines = [f"route del {_dst(dst)} proto {PROTO}" for dst in sorted(current) if dst not in desired]
    lines += [f"route replace {_dst(dst)} via {gw} src {src} proto {PROTO}"
              for dst, (gw, src) in sorted(desired.items()) if current.get(dst) != (gw, src)]
    return lines


def _dst(net: IPv4Network) -> str:
    return "default" if net == DEFAULT_ROUTE else str(net)


async def _ip(pid: int, *args: str, stdin: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        "nsenter", "-t", str(pid), "-n", "ip", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise EndpointError(f"ip {' '.join(args)} in the namespace of pid {pid}: no answer in {TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        why = err.decode(errors="replace").strip()
        raise EndpointError(f"ip {' '.join(args)} in the namespace of pid {pid}: {why}")
    return out.decode()


async def sync_endpoint(pid: int, desired: Mapping[IPv4Network, tuple[IPv4Address, IPv4Address]]) -> int:
    """Make the container of `pid` hold exactly `desired` among ccs's routes; returns the number
    of lines written (0: it already did)."""
    text = await _ip(pid, "-4", "-j", "route", "show", "proto", str(PROTO))
    try:
        current = _parse(json.loads(text or "[]"))
    except (ValueError, TypeError) as exc:
        raise EndpointError(f"ip route show in the namespace of pid {pid}: unreadable output ({exc})") from None
    lines = changes(desired, current)
    if lines:
        await _ip(pid, "-force", "-batch", "-", stdin="".join(f"{line}\n" for line in lines))
    return len(lines)


__all__ = ["EndpointError", "changes", "sync_endpoint"]
