"""Kernel routes to the other nodes' blocks, and the resolver's interface: netlink via pyroute2.

Why pyroute2: it speaks rtnetlink directly (no `ip` process per route, no parsing of its text
output), has an asyncio API that runs on the agent's own loop, returns the kernel's errors as
errno codes (`NetlinkError.code`) rather than messages, and is the netlink library of
OpenStack Neutron and many other network daemons (well kept, pure Python, no C build).

Routes carry a protocol number of ccs's own (`PROTO`, 204: unassigned in iproute2's
rt_protos, as bird's 12 or Calico's 80 are theirs), so the agent lists and removes exactly
its routes and nothing an operator or another daemon added: `ip route show proto 204`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .plan import route_changes

PROTO = 204
MAIN_TABLE = 254
RESOLVER_LINK = "ccs-dns0"


class RouteError(Exception):
    """One or more routes could not be written; the message names each and the kernel's reason."""


async def current_routes() -> dict[IPv4Network, IPv4Address]:
    """The routes of ccs in the main table: destination -> gateway."""
    out: dict[IPv4Network, IPv4Address] = {}
    async with AsyncIPRoute() as ipr:
        async for r in await ipr.route("dump", family=socket.AF_INET, proto=PROTO, table=MAIN_TABLE):
            dst, gateway = r.get("dst"), r.get("gateway")
            if dst is None or gateway is None:
                continue
            out[IPv4Network(f"{dst}/{r.get('dst_len')}", strict=False)] = IPv4Address(gateway)
    return out


async def sync_routes(desired: Mapping[IPv4Network, IPv4Address]) -> tuple[int, int]:
    """Make ccs's routes equal `desired`; returns (written, deleted). Every route is tried;
    RouteError lists those that failed (e.g. a gateway not on a connected network: host-gw
    needs the nodes on one link)."""
    upserts, deletes = route_changes(desired, await current_routes())
    failed: list[str] = []
    async with AsyncIPRoute() as ipr:
        for dst in deletes:
            try:
                await ipr.route("del", dst=str(dst), proto=PROTO, table=MAIN_TABLE)
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:  # already gone
                    failed.append(f"delete {dst}: {exc.args[-1] if exc.args else exc}")
        for dst, gateway in upserts.items():
            try:
                await ipr.route("replace", dst=str(dst), gateway=str(gateway), proto=PROTO, table=MAIN_TABLE)
            except NetlinkError as exc:
                failed.append(f"{dst} via {gateway}: {exc.args[-1] if exc.args else exc}")
    if failed:
        raise RouteError("routes: " + "; ".join(failed))
    return len(upserts), len(deletes)


async def ensure_resolver_address(address: IPv4Address) -> None:
    """A link `ccs-dns0` holding `address`/32, up, so containers reach the resolver through their
    gateway, as NodeLocal DNSCache's `nodelocaldns` link does. The link is a dummy where the
    kernel has the dummy driver and a bridge without ports elsewhere (some kernels, this
    project's CI VM among them, are built without it; a port-less bridge is an equally inert
    home for a local address, and every host Docker runs on has the bridge driver)."""
    async with AsyncIPRoute() as ipr:
        if not await ipr.link_lookup(ifname=RESOLVER_LINK):
            try:
                await ipr.link("add", ifname=RESOLVER_LINK, kind="dummy")
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    pass
                elif exc.code == errno.EOPNOTSUPP:
                    await ipr.link("add", ifname=RESOLVER_LINK, kind="bridge")
                else:
                    raise
        (index,) = await ipr.link_lookup(ifname=RESOLVER_LINK)
        try:
            await ipr.addr("add", index=index, address=str(address), prefixlen=32)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        await ipr.link("set", index=index, state="up")


__all__ = ["PROTO", "RESOLVER_LINK", "RouteError", "current_routes", "ensure_resolver_address", "sync_routes"]
