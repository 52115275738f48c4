"""Routes inside a container on several networks (nodeagent/network/endpoints.py), written into a
real network namespace the way the agent reaches a container's: by the PID of a process in it.

The namespace is a fresh one (``unshare --net``) holding two interfaces, standing for a
container's interfaces on two bridges; no engine is needed to show that the routes land, that
the default route is taken over, that an unchanged plan writes nothing, and that routes the
plan no longer has are removed while the interfaces' own routes stay."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from nodeagent.network.endpoints import sync_endpoint
from nodeagent.network.plan import DEFAULT_ROUTE

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                                reason="needs unshare and nsenter (util-linux)")


def ip(pid: int, *args: str) -> str:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def container() -> Iterator[int]:
    """A process in a network namespace of its own, with eth0 10.250.9.2/28 and eth1
    10.250.9.18/28 (a veth pair inside it), and a default route via eth0's gateway."""
    # unshare enters the new namespace and execs sh in the same process: once sh speaks, the
    # namespace exists and the PID is the way into it.
    proc = subprocess.Popen(["unshare", "--net", "sh", "-c", "echo ready; exec sleep 300"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        pid = proc.pid
        ip(pid, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        ip(pid, "addr", "add", "10.250.9.2/28", "dev", "eth0")
        ip(pid, "addr", "add", "10.250.9.18/28", "dev", "eth1")
        for link in ("lo", "eth0", "eth1"):
            ip(pid, "link", "set", link, "up")
        ip(pid, "route", "add", "default", "via", "10.250.9.1")  # what the engine sets
        yield pid
    finally:
        proc.kill()
        proc.wait()


def routes(pid: int) -> list[tuple[str, str, str, str]]:
    return sorted((r["dst"], r.get("gateway", ""), r.get("prefsrc", ""), str(r.get("protocol", "")))
                  for r in json.loads(ip(pid, "-4", "-j", "route", "show")))


def test_a_containers_routes_are_written_kept_and_pruned(container: int) -> None:
    a = IPv4Address
    desired = {
        IPv4Network("10.250.10.0/28"): (a("10.250.9.17"), a("10.250.9.18")),  # another node's block of eth1's network
        IPv4Network("10.250.11.0/28"): (a("10.250.9.1"), a("10.250.9.2")),
        DEFAULT_ROUTE: (a("10.250.9.17"), a("10.250.9.18")),  # eth1's network holds the way out
    }
    assert asyncio.run(sync_endpoint(container, desired)) == 3
    assert routes(container) == [
        ("10.250.10.0/28", "10.250.9.17", "10.250.9.18", "204"),
        ("10.250.11.0/28", "10.250.9.1", "10.250.9.2", "204"),
        ("10.250.9.0/28", "", "10.250.9.2", "kernel"),
        ("10.250.9.16/28", "", "10.250.9.18", "kernel"),
        ("default", "10.250.9.17", "10.250.9.18", "204"),
    ]
    assert asyncio.run(sync_endpoint(container, desired)) == 0  # unchanged: nothing written
    del desired[IPv4Network("10.250.11.0/28")]
    assert asyncio.run(sync_endpoint(container, desired)) == 1
    assert [r[0] for r in routes(container)] == ["10.250.10.0/28", "10.250.9.0/28", "10.250.9.16/28", "default"]
