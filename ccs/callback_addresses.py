"""Which addresses a trigger's callback may be sent to: one rule for the server and the SDK's fake.

Pure (no I/O): the server resolves the host and asks this about every address
(``controlplane.triggers.callback_target``, whose docstring says why each class is refused);
the fake asks the same, so both refuse a callback URL with the same words.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Metadata services outside the link-local ranges (those are refused as link-local).
METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})
#: The server option that lets callbacks go to private addresses.
PRIVATE_FLAG = "--allow-private-callbacks"


def refusal(address: Address, allow_private: bool) -> str:
    """Why ``address`` may not receive a callback ("" when it may)."""
    ip = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    if ip in METADATA:
        return "a cloud metadata service's address"
    for what, hit in (("a loopback", ip.is_loopback), ("a link-local", ip.is_link_local),
                      ("the unspecified", ip.is_unspecified), ("a multicast", ip.is_multicast),
                      ("a reserved", ip.is_reserved)):
        if hit:
            return f"{what} address"
    if not ip.is_global and not allow_private:
        return f"a private address (the server allows those only with {PRIVATE_FLAG})"
    return ""


def refusal_message(host: str, address: Address, why: str) -> str:
    """The words of a refusal (after ``callback_url: ``), naming the address and why."""
    shown = f"{host} resolves to {address}" if str(address) != host else f"{address}"
    return f"{shown}, {why}; callbacks go to CI servers, not to the control plane's hosts"
