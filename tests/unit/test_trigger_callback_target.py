"""Which addresses a trigger's callback may go to (pure: the table of ``refusal``)."""

from __future__ import annotations

import ipaddress

import pytest

from ccs.callback_addresses import refusal
from controlplane.triggers.callback_target import pinned_url


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "a loopback address"),
    ("127.8.9.10", "a loopback address"),
    ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped: judged as its IPv4 address
    ("169.254.169.254", "a link-local address"),  # the metadata service of most clouds
    ("fe80::1", "a link-local address"),
    ("0.0.0.0", "the unspecified address"),
    ("::", "the unspecified address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("fd00:ec2::254", "a cloud metadata service's address"),
    ("100.100.100.200", "a cloud metadata service's address"),
])
def test_refused_always(address: str, why: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False) == why
    assert refusal(ip, allow_private=True) == why


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "fc00::1",
                                     "::ffff:10.0.0.1", "192.0.2.2"])
def test_private_only_with_the_option(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert "--allow-private-callbacks" in refusal(ip, allow_private=False)
    assert refusal(ip, allow_private=True) == ""


@pytest.mark.parametrize("address", ["8.8.8.8", "140.82.112.3", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) == ""


def test_the_send_goes_to_the_address_checked() -> None:
    assert pinned_url("https://ci.example:8443/hook?x=1", ipaddress.ip_address("10.1.2.3")) == \
        "https://10.1.2.3:8443/hook?x=1"
    assert pinned_url("http://ci.example/hook", ipaddress.ip_address("fc00::5")) == "http://[fc00::5]/hook"
