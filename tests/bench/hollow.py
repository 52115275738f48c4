"""Hollow-node scale: 500 agents on FakeRuntime against a real server + etcd, 20,000 containers.

Run: ``.venv/bin/python tests/bench/hollow.py [--nodes 500] [--apps 40] [--replicas 500]
[--procs 2] [--heartbeat 30] [--profile]``

The real agent code (register, session, executor, status batching, heartbeats) runs against
``FakeRuntime`` (kubemark style), ``--nodes / --procs`` agents per spawned process, sharing one
grpc.aio channel per 50 agents. Once every node is READY, it creates ``--apps`` applications of
one service with ``--replicas`` replicas each, back to back, and follows the Watch stream until
every container is reported RUNNING. It prints:

- total time from the first CreateApplication call to the last RUNNING report;
- placements/s: containers placed (first seen with a node) per second, from the first create call
  to the last placement;
- the control plane's peak VmRSS (sampled every 0.5 s) and the etcd db file size;
- with ``--profile``: a py-spy profile of the server for the whole deploy, summarised as the
  functions with the most samples (self and inclusive), with the raw file kept for flamegraphs.

The heartbeat period is raised (server flag) so that 500 heartbeats do not dominate. On a
2-core box the agents, the watcher, the server and etcd share the cores. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.bench import _common as common

AGENTS_PER_CHANNEL = 50
GOAL_SECONDS = 60.0
GOAL_RATE = 1000.0
PY_SPY = Path("/tmp/benchvenv/bin/py-spy")


# ---------------------------------------------------------------- hollow node processes


def hollow_nodes(address: str, token: str, first: int, count: int, stop: Any) -> int:
    """Run `count` hollow agents in this process until `stop` (a Manager Event) is set."""
    import logging

    import grpc.aio
    import structlog

    from nodeagent.agent import Agent
    from nodeagent.runtime import FakeRuntime

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    async def main() -> None:
        channels = [grpc.aio.insecure_channel(address) for _ in range(0, count, AGENTS_PER_CHANNEL)]
        agents = [
            Agent(address, runtime=FakeRuntime(), name=f"hollow-{first + i:04d}", join_token=token,
                  labels={"zone": f"z{(first + i) % 5}"}, address=f"10.1.{(first + i) // 250}.{(first + i) % 250}",
                  channel=channels[i // AGENTS_PER_CHANNEL])
            for i in range(count)
        ]
        tasks = [asyncio.create_task(a.run()) for a in agents]
        await asyncio.to_thread(stop.wait)
        for a in agents:
            await a.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in channels:
            await ch.close()

    asyncio.run(main())
    return count


# ---------------------------------------------------------------- driver


async def wait_nodes_ready(stack: common.Stack, cluster: str, n: int, timeout: float) -> float:
    api = stack.stubs()
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < timeout:
            ready, page = 0, ""
            while True:
                resp = await api.nodes.ListNodes(
                    api_pb2.ListNodesRequest(cluster=cluster, page_size=500, page_token=page),
                    metadata=api.metadata)
                ready += sum(1 for x in resp.nodes if x.status.state == pb.NODE_STATE_READY)
                page = resp.next_page_token
                if not page:
                    break
            if ready >= n:
                return time.perf_counter() - start
            await asyncio.sleep(0.5)
    finally:
        await api.channel.close()
    raise TimeoutError(f"only {ready}/{n} nodes READY after {timeout:.0f} s")


async def deploy(stack: common.Stack, cluster: str, apps: int, replicas: int,
                 timeout: float) -> tuple[float, float, float, common.Progress]:
    api = stack.stubs()
    try:
        rev = await common.current_revision(api, cluster)
        prog = common.Progress({}, {})
        total = apps * replicas
        watch = asyncio.create_task(
            common.watch_until_running(api, cluster, total, rev + 1, timeout=timeout, progress=prog))
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        template = common.service_template(1, replicas)
        for i in range(apps):
            await api.apps.CreateApplication(
                api_pb2.CreateApplicationRequest(cluster=cluster, name=f"app{i:03d}", template=template),
                metadata=api.metadata)
        created = time.perf_counter() - start
        await watch
        rel = common.Progress({k: t - start for k, t in prog.placed_at.items()},
                              {k: t - start for k, t in prog.running_at.items()})
        return created, max(rel.placed_at.values()), max(rel.running_at.values()), rel
    finally:
        await api.channel.close()


def sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], common.rss_mib(pid))
        except (OSError, RuntimeError):
            return
        stop.wait(0.5)


def summarise_profile(raw: Path, top: int = 15) -> list[str]:
    """Top frames by self and inclusive samples from py-spy's collapsed-stack (raw) output."""
    self_count: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        total += count
        self_count[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        return ["  (no samples)"]
    out = [f"  {total} samples; top self:"]
    out += [f"    {c / total:6.1%}  {f}" for f, c in self_count.most_common(top)]
    out.append("  top inclusive (ccs code only):")
    ours = [(f, c) for f, c in incl.most_common() if "controlplane/" in f or "ccs/" in f]
    out += [f"    {c / total:6.1%}  {f}" for f, c in ours[:top]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--apps", type=int, default=40, help="applications of one service each")
    parser.add_argument("--replicas", type=int, default=500, help="replicas per service")
    parser.add_argument("--procs", type=int, default=2, help="processes the hollow nodes are split over")
    parser.add_argument("--heartbeat", type=float, default=30.0, help="server --heartbeat-period")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", action="store_true", help=f"py-spy the server ({PY_SPY})")
    parser.add_argument("--keep", action="store_true", help="keep logs, etcd data and the profile")
    args = parser.parse_args()
    for name in ("nodes", "apps", "replicas", "procs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be >= 1")
    if args.profile and not PY_SPY.exists():
        parser.error(f"--profile: {PY_SPY} not found (python -m venv /tmp/benchvenv && "
                     "/tmp/benchvenv/bin/pip install py-spy)")

    # --insecure: hollow nodes share channels (AGENTS_PER_CHANNEL) with bearer credentials; a
    # node certificate is per channel, and this benchmark measures the reconciler, not TLS.
    server_args = ["--heartbeat-period", str(args.heartbeat), "--down-grace", "600", "--log-level", "warning",
                   "--insecure"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, common.stack(server_args, keep=args.keep or args.profile) as stack, \
            concurrent.futures.ProcessPoolExecutor(args.procs, mp_context=ctx) as pool:
        stop_hollow = manager.Event()
        token = asyncio.run(_cluster(stack))
        share = [args.nodes // args.procs + (1 if k < args.nodes % args.procs else 0) for k in range(args.procs)]
        futures = [pool.submit(hollow_nodes, stack.address, token, sum(share[:k]), n, stop_hollow)
                   for k, n in enumerate(share)]
        try:
            joined = asyncio.run(wait_nodes_ready(stack, "hollow", args.nodes, 300))
            pid = stack.server.proc.pid
            print(f"{args.nodes} hollow nodes READY in {joined:.1f} s ({args.procs} processes); "
                  f"server RSS {common.rss_mib(pid):.0f} MiB")
            peak = [0.0]
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(pid, stop, peak), daemon=True)
            sampler.start()
            spy = None
            raw = stack.base / "server-profile.txt"
            if args.profile:
                spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--rate", "50",
                                        "--format", "raw", "--output", str(raw), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            created, placed, running, prog = asyncio.run(
                deploy(stack, "hollow", args.apps, args.replicas, args.timeout))
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                spy.wait(60)
            stop.set()
            sampler.join()
            total = args.apps * args.replicas
            rate = len(prog.placed_at) / placed
            print(f"{args.apps} apps x {args.replicas} replicas = {total} containers on {args.nodes} nodes")
            print(f"  create calls done:      {created:6.2f} s")
            print(f"  last placement:         {placed:6.2f} s  -> {rate:,.0f} placements/s")
            print(f"  all {total} RUNNING: {running:6.2f} s (goal < {GOAL_SECONDS:g} s: "
                  f"{'MET' if running < GOAL_SECONDS else 'NOT MET'}); placements/s goal > "
                  f"{GOAL_RATE:,.0f}: {'MET' if rate > GOAL_RATE else 'NOT MET'}")
            for what, times in (("placed", prog.placed_at), ("running", prog.running_at)):
                t = sorted(times.values())
                print(f"  {what:<8} quartiles (s after the first create): " + ", ".join(
                    f"{q}% {common.percentile(t, q):.2f}" for q in (25, 50, 75, 100)))
            print(f"  server peak RSS {peak[0]:.0f} MiB, now {common.rss_mib(pid):.0f} MiB")
            db = stack.etcd.data_dir / "member" / "snap" / "db"
            print(f"  etcd db file {db.stat().st_size / (1 << 20):.1f} MiB "
                  f"(data dir {common.dir_size_mib(stack.etcd.data_dir):.1f} MiB)")
            if args.profile:
                print(f"server profile ({raw}):")
                print("\n".join(summarise_profile(raw)))
        finally:
            stop_hollow.set()
            for f in futures:
                f.result(timeout=120)


async def _cluster(stack: common.Stack) -> str:
    api = stack.stubs()
    try:
        return str(await common.create_cluster(api, "hollow"))
    finally:
        await api.channel.close()


if __name__ == "__main__":
    main()
