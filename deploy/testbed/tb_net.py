"""The testbed network: one Linux bridge, one namespace and veth per host, a few iptables rules.

Design choices:
- Each step checks before it acts, so ``up`` is idempotent and can repair a half-built testbed.
- Hosts get an address on 10.77.0.0/24 and *no default route*: traffic from a host (or its
  containers) can reach the bridge network and nothing else.
- The root namespace's FORWARD policy is DROP (set by the root dockerd) and br_netfilter makes
  bridged frames traverse it, so host<->host traffic needs an ACCEPT rule. A DROP rule for
  anything leaving the bridge towards another interface backs up the "no default route" rule.
  Both rules carry the ``ccs-testbed`` comment; ``down`` deletes exactly those.
- Frames between hosts cross the root namespace's bridge, and br_netfilter hands them to the
  root namespace's conntrack and nat table too: a MASQUERADE rule there (the root dockerd's, for
  a network another test made on the same subnet as a host's containers, e.g. 10.128.0.0/26)
  would rewrite a host-to-host packet's source on the simulated wire, which no real switch
  does. So what enters the bridge for anything but the bridge's own address is not tracked
  (raw table, `CT --notrack`): never NATed by the root namespace, whatever rules it gains.
- Partitioning sets the root-side veth down: the host keeps its address and processes but
  loses every packet, like a pulled cable.
"""

from __future__ import annotations

import json
from pathlib import Path

from tb_common import BRIDGE, GATEWAY_IP, IPT_COMMENT, NAME_PREFIX, PREFIX_LEN, HostLayout, run

IPT_RULES: tuple[tuple[str, ...], ...] = (
    ("-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"),
    ("-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP"),
)
#: raw PREROUTING: host-to-host frames are not tracked, so no root nat rule can rewrite them.
RAW_RULE: tuple[str, ...] = ("-i", BRIDGE, "!", "-d", f"{GATEWAY_IP}/32", "-j", "CT", "--notrack")


def link_exists(name: str, netns: str | None = None) -> bool:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, "link", "show", name], check=False).returncode == 0


def ensure_bridge() -> None:
    if not link_exists(BRIDGE):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if f"{GATEWAY_IP}/{PREFIX_LEN}" not in addrs:
        run(["ip", "addr", "add", f"{GATEWAY_IP}/{PREFIX_LEN}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def _raw_rule() -> list[str]:
    return [*RAW_RULE[:-3], "-m", "comment", "--comment", IPT_COMMENT, *RAW_RULE[-3:]]


def ensure_iptables() -> None:
    # Insert in reverse so that the ACCEPT rule ends up first in the chain.
    for rule in reversed(IPT_RULES):
        full = [*rule[:-2], "-m", "comment", "--comment", IPT_COMMENT, *rule[-2:]]
        if run(["iptables", "-C", "FORWARD", *full], check=False).returncode != 0:
            run(["iptables", "-I", "FORWARD", "1", *full])
    if run(["iptables", "-t", "raw", "-C", "PREROUTING", *_raw_rule()], check=False).returncode != 0:
        run(["iptables", "-t", "raw", "-I", "PREROUTING", "1", *_raw_rule()])


def remove_iptables() -> None:
    """Delete every FORWARD (and raw PREROUTING) rule that carries our comment (however many
    runs added them)."""
    for _ in range(20):
        if run(["iptables", "-t", "raw", "-D", "PREROUTING", *_raw_rule()], check=False).returncode != 0:
            break
    for _ in range(20):
        rules = [r for r in run(["iptables", "-S", "FORWARD"]).stdout.splitlines()
                 if f"--comment {IPT_COMMENT}" in r]
        if not rules:
            return
        for rule in rules:
            # "-A FORWARD ..." -> "-D FORWARD ..."; iptables -S output re-parses as arguments.
            run(["iptables", "-D", *rule.split()[1:]], check=False)


def leftover_iptables() -> list[str]:
    out = run(["iptables", "-S", "FORWARD"], check=False).stdout
    raw = run(["iptables", "-t", "raw", "-S", "PREROUTING"], check=False).stdout
    return [r for r in (*out.splitlines(), *raw.splitlines()) if f"--comment {IPT_COMMENT}" in r]


def ensure_host_network(host: HostLayout) -> None:
    """Namespace, veth pair (eth0 inside), address, lo up; no default route on purpose."""
    if not host.netns_path.exists():
        run(["ip", "netns", "add", host.netns])
    if not link_exists("eth0", host.netns):
        if link_exists(host.veth):
            run(["ip", "link", "del", host.veth])
        peer = f"{host.veth}p"
        run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", peer])
        run(["ip", "link", "set", peer, "netns", host.netns])
        run(["ip", "-n", host.netns, "link", "set", peer, "name", "eth0"])
    run(["ip", "link", "set", host.veth, "master", BRIDGE])
    addrs = run(["ip", "-n", host.netns, "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    if f"{host.ip}/{PREFIX_LEN}" not in addrs:
        run(["ip", "-n", host.netns, "addr", "add", f"{host.ip}/{PREFIX_LEN}", "dev", "eth0"])
    run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
    run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
    run(["ip", "link", "set", host.veth, "up"])


def set_partitioned(host: HostLayout, partitioned: bool) -> None:
    run(["ip", "link", "set", host.veth, "down" if partitioned else "up"])


def is_partitioned(host: HostLayout) -> bool:
    out = run(["ip", "-j", "link", "show", host.veth], check=False)
    if out.returncode != 0:
        return False
    flags = json.loads(out.stdout)[0].get("flags", [])
    return "UP" not in flags


def testbed_namespaces() -> list[str]:
    """Every namespace we may have created, including ones from a lost state directory."""
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(NAME_PREFIX)]


def testbed_links() -> list[str]:
    out = run(["ip", "-j", "link", "show"], check=False).stdout or "[]"
    names = [str(link.get("ifname", "")) for link in json.loads(out)]
    return [n for n in names if n.startswith(NAME_PREFIX) or n == BRIDGE]


def remove_network() -> None:
    """Delete namespaces (their veth peers go with them), stray veths and the bridge."""
    for ns in testbed_namespaces():
        run(["ip", "netns", "del", ns], check=False)
        stale = Path("/var/run/netns") / ns
        if stale.exists():
            run(["umount", "-l", str(stale)], check=False)
            stale.unlink(missing_ok=True)
    for name in testbed_links():
        if name != BRIDGE:
            run(["ip", "link", "del", name], check=False)
    if link_exists(BRIDGE):
        run(["ip", "link", "del", BRIDGE], check=False)
    remove_iptables()
