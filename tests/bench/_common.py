"""Shared plumbing for the benchmark scripts: a real etcd + ccs-server, stubs, waits, figures.

Why reuse ``tests/conftest.py``'s ``start_etcd``/``start_server``: the benchmarks then measure
exactly the processes the integration tests start (same flags, same logs), and nothing here
re-implements process management. Everything runs in separate processes, so the figures
include real gRPC and etcd round trips.

The "all running" wait uses the Watch RPC (container kind), not polling: it costs the server
one stream instead of repeated 20,000-container lists, and the time recorded is the moment the
last status change was delivered, not the next poll tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as ``python tests/bench/X.py`` from anywhere
    sys.path.insert(0, str(ROOT))

from ccs.v1 import api_pb2  # noqa: E402
from ccs.v1 import resources_pb2 as pb  # noqa: E402
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server  # noqa: E402
from tests.integration.grpc_helpers import Stubs, stubs  # noqa: E402

RUNNING_STATES = frozenset({pb.CONTAINER_STATE_RUNNING, pb.CONTAINER_STATE_HEALTHY})


@dataclass
class Stack:
    """One etcd and one ccs-server, each its own process, in a temporary directory."""

    base: Path
    etcd: EtcdProc
    server: ServerProc

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def token(self) -> str:
        return self.server.token

    def stubs(self) -> Stubs:
        """Fresh raw stubs on a new channel (grpc.aio binds a channel to the running loop)."""
        return stubs(self.server.address, self.server.token)


@contextlib.contextmanager
def stack(server_args: Sequence[str] = (), keep: bool = False) -> Iterator[Stack]:
    """Start etcd + server; stop both (and delete their data unless `keep`) on exit."""
    base = Path(tempfile.mkdtemp(prefix="ccs-bench-"))
    etcd = start_etcd(base)
    try:
        server = start_server(base / "state", etcd.url, base / "config.yaml", extra=list(server_args))
    except BaseException:
        etcd.stop()
        raise
    try:
        if not server.token:
            raise RuntimeError(f"server wrote no admin token; see {server.log_path}")
        yield Stack(base, etcd, server)
    finally:
        server.stop()
        etcd.stop()
        if keep:
            print(f"(kept logs and data in {base})")
        else:
            import shutil

            shutil.rmtree(base, ignore_errors=True)


async def create_cluster(api: Stubs, name: str, pod_cidr: str = "") -> str:
    """Create a cluster (``pod_cidr`` "": the server's default range) and return its join token."""
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=name, pod_cidr=pod_cidr), metadata=api.metadata)
    resp = await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=name), metadata=api.metadata)
    return str(resp.token)


def service_template(services: int, replicas: int, image: str = "local/busybox:1") -> str:
    """A Compose template of `services` identical services with `replicas` each."""
    lines = ["services:"]
    for i in range(services):
        lines += [
            f"  s{i:03d}:",
            f"    image: {image}",
            "    command: sleep 3600",
            "    deploy:",
            f"      replicas: {replicas}",
        ]
    return "\n".join(lines) + "\n"


async def current_revision(api: Stubs, cluster: str) -> int:
    resp = await api.containers.ListContainers(
        api_pb2.ListContainersRequest(cluster=cluster, page_size=1), metadata=api.metadata
    )
    return int(resp.revision)


@dataclass
class Progress:
    """What the watch saw: when each container was first placed and first reported running."""

    placed_at: dict[str, float]
    running_at: dict[str, float]


async def watch_until_running(
    api: Stubs, cluster: str, expected: int, from_revision: int, timeout: float,
    progress: Progress | None = None, on_response: Callable[[api_pb2.WatchResponse], None] | None = None,
) -> Progress:
    """Follow container changes until `expected` containers are running; raise on timeout.

    A container counts as placed when it first carries a node, and as running when its status
    is first RUNNING or HEALTHY. Times are ``time.perf_counter()`` at delivery. ``on_response``
    sees every response (container changes and, when given, events too: see ``_invariants``).
    """
    prog = progress or Progress({}, {})
    kinds = ["container", "event"] if on_response is not None else ["container"]
    req = api_pb2.WatchRequest(cluster=cluster, from_revision=from_revision, kinds=kinds)
    call = api.events.Watch(req, metadata=api.metadata)

    async def follow() -> None:
        async for resp in call:
            t = time.perf_counter()
            if on_response is not None:
                on_response(resp)
            for ev in resp.events:
                if ev.type != ev.TYPE_PUT or not ev.HasField("container"):
                    continue
                c = ev.container
                key = f"{c.application}/{c.service}/{c.meta.name}"
                if c.node and key not in prog.placed_at:
                    prog.placed_at[key] = t
                if c.status.state in RUNNING_STATES and key not in prog.running_at:
                    prog.running_at[key] = t
            if len(prog.running_at) >= expected:
                return

    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        raise TimeoutError(
            f"only {len(prog.running_at)}/{expected} containers running "
            f"({len(prog.placed_at)} placed) after {timeout:.0f} s"
        ) from None
    finally:
        call.cancel()
    return prog


def free_pod_cidr() -> str:
    """A /16 for a benchmark cluster's range that no network of the local dockerd and no route
    of this namespace overlaps.

    Why not the server's default: every fresh ccs-server hands its first cluster the same
    default range, and so the same first blocks; other ccs clusters on the same shared dockerd
    (test sessions running beside the benchmark) would then ask the engine for overlapping
    subnets, and one side's containers fail with "Pool overlaps".
    """
    import ipaddress
    import json
    import subprocess

    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    used = [ipaddress.IPv4Network(line.split()[0]) for line in out("ip", "-4", "route", "show", "table", "all").splitlines()
            if line.split() and "/" in line.split()[0] and line.split()[0][0].isdigit()]
    ids = out("docker", "network", "ls", "-q").split()
    if ids:
        for net in json.loads(out("docker", "network", "inspect", *ids) or "[]"):
            for cfg in (net.get("IPAM") or {}).get("Config") or []:
                if ":" not in cfg.get("Subnet", ":"):
                    used.append(ipaddress.IPv4Network(cfg["Subnet"]))
    for second in range(200, 255):
        candidate = ipaddress.IPv4Network(f"10.{second}.0.0/16")
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise RuntimeError("no free /16 in 10.200.0.0-10.254.255.255 for the benchmark cluster's range")


def clear_fabric(cluster: str) -> None:
    """Remove the chains, jumps and ipsets that an agent of ``cluster`` running in this (the root)
    network namespace left behind.

    An agent keeps its cluster's routes and rules when it stops, on purpose (its containers keep
    running). A benchmark's cluster lives for one run under a fresh name, so without this every
    run would leave a chain in DOCKER-USER. Applied as the agent itself would when its last
    application network leaves the node: an empty plan through its own firewall code.
    """
    from nodeagent.network.firewall import FirewallError, apply_firewall
    from nodeagent.network.plan import FabricPlan

    with contextlib.suppress(FirewallError, OSError):
        asyncio.run(apply_firewall(FabricPlan(cluster=cluster, node="", version=0, pod_cidr=None)))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        raise ValueError("percentile: no values")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def dir_size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / (1 << 20)


def span(times: Sequence[float]) -> str:
    """First-to-last delivery of a set of times, for the breakdown lines."""
    if not times:
        return "-"
    return f"{min(times):.2f}..{max(times):.2f}"
