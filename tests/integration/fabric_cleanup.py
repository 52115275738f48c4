"""Removing what ccs agents run in this (the root) network namespace leave behind.

Why tests need it: an agent keeps its cluster's routes, chains and sets when it stops, on
purpose (its containers keep running and keep their network). Integration tests start agents
in the root namespace for clusters that live for one test, so without a clean-up every such
cluster would leave a filter chain in DOCKER-USER whose "into this node" DROP matches its
blocks; the next test cluster of the next ccs-server gets the same default blocks and its
containers' traffic would be judged by a dead cluster's rules. And `.ci/run` must leave the
machine as it found it.

`clear_fabric(cluster)` applies an empty plan through the agent's own firewall code (the same
path an agent takes when its last application network leaves the node). `leftovers()` and
`remove_leftovers(before)` are the session-level net: whatever ccs objects appeared during the
run (chains of clusters no test cleared, sets, the resolver's link) are removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import subprocess
from dataclasses import dataclass

from nodeagent.network.firewall import FirewallError, apply_firewall
from nodeagent.network.plan import FabricPlan
from nodeagent.network.routes import RESOLVER_LINK


def clear_fabric(cluster: str) -> None:
    """Remove ``cluster``'s chains, jumps and sets from this namespace."""
    with contextlib.suppress(FirewallError, OSError):
        asyncio.run(apply_firewall(FabricPlan(cluster=cluster, node="", version=0, pod_cidr=None)))


@dataclass(frozen=True)
class Leftovers:
    chains: frozenset[tuple[str, str]]  # (table, chain)
    sets: frozenset[str]
    resolver_link: bool


def _out(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def leftovers() -> Leftovers:
    """The ccs objects in this namespace now."""
    chains = {(table, m.group(1)) for table in ("filter", "nat")
              for m in re.finditer(r"^:(CCS-[A-Za-z0-9-]+) ", _out("iptables-save", "-t", table), re.M)}
    sets = {name for name in _out("ipset", "list", "-n").split() if name.startswith("ccs-")}
    link = bool(_out("ip", "-o", "link", "show", RESOLVER_LINK).strip())
    return Leftovers(frozenset(chains), frozenset(sets), link)


def remove_leftovers(before: Leftovers) -> None:
    """Remove every ccs object that was not there at ``before``: jumps first, then chains, sets
    and the resolver's link."""
    now = leftovers()
    for table, chain in sorted(now.chains - before.chains):
        for line in _out("iptables-save", "-t", table).splitlines():
            if line.startswith("-A ") and f" -j {chain}" in line and not line.startswith(f"-A {chain} "):
                # "-A CHAIN rule..." -> "-D CHAIN rule..." (shlex keeps quoted comments whole)
                subprocess.run(["iptables", "-w", "-t", table, "-D", *shlex.split(line)[1:]],
                               capture_output=True, check=False)
        subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True, check=False)
        subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True, check=False)
    for name in sorted(now.sets - before.sets):
        subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)
    if now.resolver_link and not before.resolver_link:
        subprocess.run(["ip", "link", "del", RESOLVER_LINK], capture_output=True, check=False)

