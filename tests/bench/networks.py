"""Application networks on one engine: what creating many bridge networks costs, as the agent makes them.

Run: ``.venv/bin/python tests/bench/networks.py [--networks 1000] [--concurrency 4] [--step 100]``

Creates ``--networks`` application networks through the agent's runtime code
(``DockerRuntime.prepare``), each with a /28 handed out by the control plane's allocator
(``controlplane.ipam.SubnetPool`` over 100.102.0.0/16), ``--concurrency`` at a time, and prints
the seconds each ``--step`` networks took, so the growth of the per-network cost shows (Docker
20.10 adds iptables isolation rules per bridge network). Then one plain ``docker network create``
/ ``rm`` beside them, then the removal of all. Everything it creates carries its own cluster
label and is removed at the end, also on failure or Ctrl-C. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import subprocess
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import docker

from ccs.v1 import resources_pb2 as pb
from controlplane.ipam import DEFAULT_NETWORK, SubnetPool, block_prefix
from nodeagent.runtime import naming
from nodeagent.runtime.docker_engine import DockerRuntime

IMAGE = "local/busybox:1"
POD_RANGE = ipaddress.IPv4Network("100.102.0.0/16")


def assignment(cluster: str, app: str, subnet: str) -> pb.Container:
    c = pb.Container(meta=pb.Meta(id=uuid.uuid4().hex, name="web-1"), cluster=cluster, application=app,
                     service="web", node="bench", slot=1, desired_state=pb.DESIRED_STATE_RUNNING)
    c.spec.image = IMAGE
    c.subnets[DEFAULT_NETWORK] = subnet
    return c


def iptables_rules() -> int:
    out = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=False).stdout
    return len(out.splitlines())


def cleanup(cluster: str) -> None:
    client = docker.from_env()
    try:
        for n in client.api.networks(filters={"label": [f"{naming.CLUSTER}={cluster}"]}):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_network(n["Id"])
    finally:
        client.close()


async def run(args: argparse.Namespace, cluster: str) -> None:
    rt = DockerRuntime(cluster=cluster)
    pool = SubnetPool(POD_RANGE)
    sem = asyncio.Semaphore(args.concurrency)
    rules_before = iptables_rules()

    async def prepare(i: int) -> None:
        async with sem:
            await rt.prepare(assignment(cluster, f"app{i:05d}", str(pool.allocate(block_prefix(1)))))

    try:
        t_all = time.monotonic()
        for first in range(0, args.networks, args.step):
            t0 = time.monotonic()
            await asyncio.gather(*(prepare(i) for i in range(first, min(first + args.step, args.networks))))
            took = time.monotonic() - t0
            count = min(first + args.step, args.networks)
            print(f"networks {first + 1:>5}-{count:>5}: {took:6.1f} s  ({took / args.step * 1000:5.0f} ms each)",
                  flush=True)
        total = time.monotonic() - t_all
        print(f"{args.networks} networks in {total:.1f} s; iptables rules {rules_before} -> {iptables_rules()}")
        name = f"{cluster}-plain"
        t0 = time.monotonic()
        subprocess.run(["docker", "network", "create", "--subnet", str(pool.allocate(28)), name],
                       check=True, capture_output=True)
        created = time.monotonic() - t0
        t0 = time.monotonic()
        subprocess.run(["docker", "network", "rm", name], check=True, capture_output=True)
        print(f"one `docker network create` beside them: {created:.2f} s; `docker network rm`: "
              f"{time.monotonic() - t0:.2f} s")
        t0 = time.monotonic()
        for i in range(args.networks):
            await rt.remove_app_resources(cluster, f"app{i:05d}", volumes=False)
        print(f"removed {args.networks} networks in {time.monotonic() - t0:.1f} s")
    finally:
        await rt.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--step", type=int, default=100)
    args = parser.parse_args()
    if args.networks < 1 or args.concurrency < 1 or args.step < 1:
        parser.error("--networks, --concurrency and --step must be >= 1")
    cluster = f"bnet{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(run(args, cluster))
    finally:
        cleanup(cluster)
        subprocess.run(["docker", "network", "rm", f"{cluster}-plain"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
