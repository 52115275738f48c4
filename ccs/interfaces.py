"""This host's IPv4 interface addresses (Linux SIOCGIFADDR), loopback included, in interface
index order.

Here, in the package every side may import, because two sides ask: the agent picks its node
address from them, and the server names its certificate after them. (The control plane and
the agent may not import each other.) An ioctl per interface, not `ip addr` in a subprocess.
"""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFADDR = 0x8915


def interface_addresses() -> list[str]:
    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on this interface
            out.append(socket.inet_ntoa(raw[20:24]))
    return out
