"""Application networks across hosts: name lookups, TCP connects and throughput (issue 11).

Run (root, images from ``deploy/images/build.sh``, gcc for ``netbench.c``; takes the 3-host
testbed's lock, waiting for it if an e2e session holds it):
``.venv/bin/python tests/bench/network.py [--connects 2000] [--rounds 9] [--seconds 1] [--moves] [--keep]``

On the 3-host testbed with ccs-server and one agent per host, one application: ``client`` and
``near`` on host1, ``far`` on host2 (node labels and placement constraints), all running
``local/netbench:1`` (``netbench.c``: every figure is timed inside the client container).
Beside it, the baseline: the same image on the engines' *default* bridges, a client and a server
on host1 and a server on host2, with a manual route between the two hosts' default-bridge
subnets (both ways), a ``DOCKER-USER`` accept and a ``POSTROUTING`` exemption from masquerade:
the "plain routed path", the same kernel path as ccs's host-gw routes minus ccs's rules.

Four paths, each measured from a client on host1:

=================  ============================================================
ccs same-node      client -> near, on the application's bridge on host1
ccs cross-node     client -> far, host1 -> host2 through ccs's routes and rules
bridge same-node   default bridge on host1, by address
routed cross-node  host1's default bridge -> host2's, by the manual route
=================  ============================================================

- name lookups (UDP, one A query at a time, ``--lookups`` of each): a service name through the
  engine's embedded DNS (127.0.0.11), which forwards it to the node resolver; the same name
  asked of the node resolver directly; and, as the floor, a name the embedded DNS answers itself
  (the ``near`` container's own name on the application network);
- TCP connect, ``--connects`` per path: p50 and p99 of connect() alone. The two paths of one
  client alternate connect by connect, the two clients take turns in 10 blocks, so load from
  other work on a shared 2-core box falls on every path alike (and many samples: the p99 of a
  few hundred is one or two outliers);
- throughput: one TCP stream for ``--seconds``, ``--rounds`` times per path, interleaved;
  the median is compared.

Goals (issue 11): ccs cross-node connect p99 <= 1.2 x ccs same-node; ccs cross-node throughput
>= 0.9 x the plain routed path. ``--moves`` then runs ``name_moves.py``'s measurement on the same
cluster (see that script). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import _common as common
from tests.bench import _testbed
from tests.integration.e2e.conftest import Cluster3
from tests.testbed import Host

PORT = "7100"
RESOLVER = "169.254.20.53"  # nodeagent.network.DEFAULT_RESOLVER_ADDRESS
GOAL_CONNECT_P99 = 1.2
GOAL_THROUGHPUT = 0.9
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""
SERVE = f'["netbench", "serve", "{PORT}"]'
BASE_TAG = "ccs-bench-net"


def template() -> str:
    def svc(name: str, command: str, where: str) -> str:
        return (f"  {name}:\n    image: {_testbed.NETBENCH}\n    command: {command}\n"
                f"    deploy:\n      placement: {{constraints: [\"node.labels.nb=={where}\"]}}\n")

    return "services:\n" + svc("client", IDLE, "a") + svc("near", SERVE, "a") + svc("far", SERVE, "b")


@dataclass
class Path_:
    name: str
    client: str  # docker id on host1
    target: str  # IPv4 address
    connects: list[float] = field(default_factory=list)  # microseconds
    gbits: list[float] = field(default_factory=list)


def netbench(host: Host, cid: str, *args: str) -> str:
    res = host.docker("exec", cid, "netbench", *args, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"netbench {' '.join(args)} in {cid[:12]} -> {res.returncode}: {res.stdout} {res.stderr}")
    return res.stdout


def samples(out: str) -> list[list[float]]:
    """The "us:" lines of a netbench output, one list per target."""
    found = [[float(x) for x in line[3:].split()] for line in out.splitlines() if line.startswith("us:")]
    if not found:
        raise RuntimeError(f"no samples in {out!r}")
    return found


def p(values: list[float], q: float) -> float:
    return common.percentile(sorted(values), q)


def label_hosts(c: Cluster3, value: str | None) -> None:
    for host, v in (("host1", "a"), ("host2", "b"), ("host3", "c")):
        c.ccs("node", "label", "-c", c.name, host, f"nb={v if value is None else value}")


def one_live(c: Cluster3, app: str, service: str, node: str) -> tuple[str, str]:
    """(docker id, address on the application network) of the service's one live container."""
    def found() -> tuple[str, str] | None:
        live = [x for x in c.live(app, service) if x.node == node and x.status.addresses.get("default")]
        return (live[0].status.docker_id, live[0].status.addresses["default"]) if live else None

    got = c.wait_for(f"{app}/{service} live on {node}", found, timeout=120)
    assert got is not None
    return got


# ---------------------------------------------------------------- the plain routed baseline


def bridge_subnet(h: Host) -> str:
    return str(json.loads(h.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Subnet"])


def run_base(h: Host, name: str, command: list[str]) -> tuple[str, str]:
    h.docker("run", "-d", "--name", name, "--label", BASE_TAG, _testbed.NETBENCH, *command)
    info = json.loads(h.docker("inspect", name).stdout)[0]
    return str(info["Id"]), str(info["NetworkSettings"]["IPAddress"])


@contextmanager
def routed_baseline(c: Cluster3) -> Iterator[tuple[str, str, str]]:
    """(client id on host1, server address on host1, server address on host2), all on the
    default bridges, host1 <-> host2 routed by hand; everything undone on exit."""
    h1, h2 = c.host(1), c.host(2)
    s1, s2 = bridge_subnet(h1), bridge_subnet(h2)
    tag = f"{BASE_TAG}-{uuid.uuid4().hex[:6]}"
    comment = ["-m", "comment", "--comment", tag]
    undo: list[tuple[Host, list[str]]] = []

    def do(h: Host, add: list[str], remove: list[str]) -> None:
        h.in_netns(add)
        undo.append((h, remove))

    try:
        client, _ = run_base(h1, f"{tag}-client", json.loads(IDLE))
        _, near = run_base(h1, f"{tag}-near", ["netbench", "serve", PORT])
        _, far = run_base(h2, f"{tag}-far", ["netbench", "serve", PORT])
        do(h1, ["ip", "route", "add", s2, "via", h2.ip], ["ip", "route", "del", s2, "via", h2.ip])
        do(h2, ["ip", "route", "add", s1, "via", h1.ip], ["ip", "route", "del", s1, "via", h1.ip])
        for h, own, other in ((h1, s1, s2), (h2, s2, s1)):
            inbound = ["-s", other, "-d", own, *comment]  # new connections into this host's bridge
            do(h, ["iptables", "-I", "DOCKER-USER", *inbound, "-j", "ACCEPT"],
               ["iptables", "-D", "DOCKER-USER", *inbound, "-j", "ACCEPT"])
            outbound = ["-s", own, "-d", other, *comment]  # leaves with its own source address
            do(h, ["iptables", "-t", "nat", "-I", "POSTROUTING", *outbound, "-j", "ACCEPT"],
               ["iptables", "-t", "nat", "-D", "POSTROUTING", *outbound, "-j", "ACCEPT"])
        yield client, near, far
    finally:
        for h, argv in reversed(undo):
            h.in_netns(argv, check=False)
        for h in (h1, h2):
            ids = h.docker("ps", "-aq", "--filter", f"label={BASE_TAG}").stdout.split()
            if ids:
                h.docker("rm", "-f", *ids, check=False)


# ---------------------------------------------------------------- measuring


def lookups(c: Cluster3, cid: str, near_name: str, n: int) -> None:
    h1 = c.host(1)
    rows = [
        ("service name via embedded DNS -> node resolver", ["far", str(n)]),
        ("the same, asked of the node resolver directly", ["far", str(n), RESOLVER]),
        ("container name the embedded DNS answers itself", [near_name, str(n)]),
    ]
    print(f"name lookups from the client on host1 ({n} each, one at a time):")
    for what, args in rows:
        out = netbench(h1, cid, "lookup", *args)
        (us,) = samples(out)
        addrs = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("addrs:"))
        print(f"  {what:<50} p50 {p(us, 50) / 1000:6.3f} ms  p99 {p(us, 99) / 1000:6.3f} ms  -> {addrs}")


def connects(c: Cluster3, paths: list[Path_], n: int, blocks: int = 10) -> None:
    """Paths that share a client are measured by one netbench, round robin per connect (see
    netbench.c), so a same-node and a cross-node connect always see the same moment of the
    machine's load; the clients take turns in ``blocks``."""
    h1 = c.host(1)
    by_client: dict[str, list[Path_]] = {}
    for path in paths:
        by_client.setdefault(path.client, []).append(path)
    for client, group in by_client.items():  # warm-up: ARP, conntrack, first route lookups
        targets = ",".join(x.target for x in group)
        for _ in range(10):
            res = h1.docker("exec", client, "netbench", "connect", targets, PORT, "20", check=False)
            if res.returncode == 0:
                break
            print(f"  warm-up {targets}: {res.stdout.splitlines()[-1] if res.stdout else res.stderr.strip()}; "
                  "again in 1 s", flush=True)
            time.sleep(1.0)
        else:
            raise RuntimeError(f"no clean round of connects to {targets} in 10 tries: {res.stdout} {res.stderr}")
    for _ in range(blocks):
        for client, group in by_client.items():
            got = samples(netbench(h1, client, "connect", ",".join(x.target for x in group), PORT, str(n // blocks)))
            for path, us in zip(group, got, strict=True):
                path.connects += us


def throughput(c: Cluster3, paths: list[Path_], rounds: int, seconds: float) -> None:
    h1 = c.host(1)
    for r in range(rounds):
        for path in paths:
            words = netbench(h1, path.client, "send", path.target, PORT, str(seconds)).split()
            path.gbits.append(int(words[1]) * 8 / float(words[3]) / 1e9)
        print(f"  throughput round {r + 1}: " + ", ".join(f"{x.name} {x.gbits[-1]:.2f}" for x in paths)
              + " Gbit/s", flush=True)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def report(paths: list[Path_]) -> None:
    by = {x.name: x for x in paths}
    print(f"{'path':<20} {'connects':>8} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'Gbit/s (median)':>16}  rounds")
    for x in paths:
        print(f"{x.name:<20} {len(x.connects):>8} {p(x.connects, 50):>8.1f} {p(x.connects, 90):>8.1f} "
              f"{p(x.connects, 99):>8.1f} "
              f"{statistics.median(x.gbits):>16.2f}  {', '.join(f'{g:.2f}' for g in x.gbits)}")
    same, cross = by["ccs same-node"], by["ccs cross-node"]
    bridge, routed = by["bridge same-node"], by["routed cross-node"]
    r_p99 = p(cross.connects, 99) / p(same.connects, 99)
    r_tp = statistics.median(cross.gbits) / statistics.median(routed.gbits)
    print(f"ccs cross-node / ccs same-node connect p99 = {r_p99:.2f} (goal <= {GOAL_CONNECT_P99}): "
          f"{verdict(r_p99 <= GOAL_CONNECT_P99)}")
    print(f"ccs cross-node / plain routed throughput   = {r_tp:.2f} (goal >= {GOAL_THROUGHPUT}): "
          f"{verdict(r_tp >= GOAL_THROUGHPUT)}")
    print("for context: "
          f"ccs cross-node / same-node connect p50 {p(cross.connects, 50) / p(same.connects, 50):.2f}, "
          f"the plain paths' own cross / same p99 {p(routed.connects, 99) / p(bridge.connects, 99):.2f} "
          f"(p50 {p(routed.connects, 50) / p(bridge.connects, 50):.2f}); "
          f"ccs same-node / default bridge: connect p99 {p(same.connects, 99) / p(bridge.connects, 99):.2f}, "
          f"throughput {statistics.median(same.gbits) / statistics.median(bridge.gbits):.2f}; "
          f"ccs cross-node / routed connect p99 {p(cross.connects, 99) / p(routed.connects, 99):.2f}")


def run(c: Cluster3, args: argparse.Namespace) -> None:
    app = f"net{uuid.uuid4().hex[:6]}"
    label_hosts(c, None)
    try:
        c.deploy(app, template())
        client, _ = one_live(c, app, "client", "host1")
        near_id, near = one_live(c, app, "near", "host1")
        _, far = one_live(c, app, "far", "host2")
        near_name = c.host(1).docker("inspect", "-f", "{{.Name}}", near_id).stdout.strip().lstrip("/")
        c.wait_for("the client resolves far", lambda: far in netbench(c.host(1), client, "lookup", "far", "1"), 30)
        lookups(c, client, near_name, args.lookups)
        with routed_baseline(c) as (bclient, bnear, bfar):
            paths = [Path_("ccs same-node", client, near), Path_("ccs cross-node", client, far),
                     Path_("bridge same-node", bclient, bnear), Path_("routed cross-node", bclient, bfar)]
            t0 = time.monotonic()
            connects(c, paths, args.connects)
            print(f"  connects done in {time.monotonic() - t0:.1f} s", flush=True)
            throughput(c, paths, args.rounds, args.seconds)
        report(paths)
    finally:
        c.ccs("app", "rm", "-c", c.name, app, check=False)
        label_hosts(c, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=2000, help="TCP connects per path (10 blocks)")
    parser.add_argument("--lookups", type=int, default=300, help="DNS queries per kind")
    parser.add_argument("--rounds", type=int, default=9, help="throughput samples per path")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one throughput sample")
    parser.add_argument("--moves", action="store_true", help="then run name_moves.py's measurement too")
    parser.add_argument("--updates", type=int, default=3, help="with --moves: rolling updates to measure")
    parser.add_argument("--keep", action="store_true", help="keep the server/agent logs")
    args = parser.parse_args()
    if args.connects < 10 or args.lookups < 1 or args.rounds < 1 or args.seconds <= 0 or args.updates < 1:
        parser.error("--connects >= 10, --lookups/--rounds/--updates >= 1, --seconds > 0")
    from tests.bench import name_moves

    with _testbed.cluster3(keep=args.keep) as c:
        run(c, args)
        if args.moves:
            name_moves.run(c, updates=args.updates)


if __name__ == "__main__":
    main()
