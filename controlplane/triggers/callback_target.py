"""Where a trigger's callback may be sent: never into the server's own host or its metadata service.

A callback URL is chosen by whoever makes the trigger (a deployer), and the *server* sends it:
without a check, a deployer could make the server POST to ``http://127.0.0.1:2379`` (etcd's
JSON gateway, next to every server), to an agent, or to a cloud's metadata service at
``169.254.169.254`` (SSRF). So the host is resolved and every address it resolves to is checked:

- **always refused**: loopback, link-local (the metadata services live there), unspecified,
  multicast and reserved addresses (240/4, the broadcast address in it), and the cloud metadata addresses outside those
  ranges (AWS's IPv6 one, Alibaba's); an IPv4-mapped IPv6 address is judged as its IPv4 one;
- **refused unless the server runs with** ``--allow-private-callbacks``: any other address that
  is not globally routable (RFC 1918, carrier-grade NAT 100.64/10, IPv6 unique-local, the
  documentation and benchmarking ranges). Default off because the servers, etcd and the agents
  sit on exactly those networks: a deployer should not reach them through the server unless
  the operator, who knows the CI server is on the private network too, says so.

Checked when the trigger is made (``callback_url`` refused naming the address and why) and again
before each send (DNS may have changed since); the send then connects to the address that was
checked, not to a second lookup's answer (a DNS-rebinding answer cannot swap it), with the URL's
host name kept for the Host header and TLS verification. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from ccs.callback_addresses import Address, refusal, refusal_message


class CallbackRefused(ValueError):
    """The callback URL's host is, or resolves to, an address callbacks may not go to."""


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an address literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise CallbackRefused(f"host {host!r} does not resolve ({e.strerror or e})") from None
    out: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


async def checked_address(url: str, allow_private: bool) -> Address:
    """The address to send ``url``'s callback to; :class:`CallbackRefused` when any address its
    host resolves to may not receive one (one bad answer among several is refused: which one a
    connection would use is not ours to choose)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(host, port)
    if not addresses:
        raise CallbackRefused(f"host {host!r} resolves to no address")
    for ip in addresses:
        why = refusal(ip, allow_private)
        if why:
            raise CallbackRefused(refusal_message(host, ip, why))
    return addresses[0]


def pinned_url(url: str, address: Address) -> str:
    """``url`` with its host replaced by ``address`` (the one checked), port and path kept."""
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return parts._replace(netloc=netloc).geturl()
