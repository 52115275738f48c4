"""API throughput and latency: get, list and create with 1 and with 64 concurrent clients.

Run: ``.venv/bin/python tests/bench/api.py [--seconds 5] [--procs 2] [--concurrency 1,64]``

It starts etcd and a ccs-server (separate processes), seeds one cluster with an application of
20 services, then for each (op, concurrency) runs that many clients for a fixed time and prints
requests/s and p50/p99 latency. Ops:

- ``get``: GetService of one of the 20 services (one etcd range read per call);
- ``list``: ListServices of the application (20 services in one page);
- ``create``: CreateCluster with a fresh name (one guarded etcd transaction per call).

Each client is one coroutine with its own grpc.aio channel, issuing one call at a time. Clients
are spread over ``--procs`` spawned processes, because one Python process issuing grpc.aio calls
saturates a core before the server does; the script prints the client processes' CPU use so it
is visible whether the clients or the server were the limit. On a 2-core box the clients,
the server and etcd share the cores, so the figures are a lower bound for the server.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import api_pb2
from tests.bench import _common as common
from tests.integration.grpc_helpers import stubs

CLUSTER = "bench"
APP = "app"
SERVICES = 20
OPS = ("get", "list", "create")
GOAL_GETS = 2000.0
GOAL_P99_MS = 50.0


@dataclass
class WorkerResult:
    latencies: list[float]
    errors: int
    cpu_seconds: float


async def _client(address: str, token: str, op: str, start: float, stop: float, out: list[float],
                  errors: list[int], seed: int) -> None:
    api = stubs(address, token)
    md = api.metadata
    tag = f"{uuid.uuid4().hex[:6]}{seed}"
    i = 0

    async def call() -> None:
        nonlocal i
        i += 1
        if op == "get":
            await api.services.GetService(
                api_pb2.GetServiceRequest(cluster=CLUSTER, application=APP,
                                          name=f"s{(seed + i) % SERVICES:03d}"), metadata=md)
        elif op == "list":
            await api.services.ListServices(
                api_pb2.ListServicesRequest(cluster=CLUSTER, application=APP), metadata=md)
        else:
            await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=f"c{tag}-{i}"), metadata=md)

    try:
        await call()  # warm the channel (connect, auth cache) outside the measured window
        await asyncio.sleep(max(0.0, start - time.time()))
        while time.time() < stop:
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors[0] += 1
                continue
            out.append(time.perf_counter() - t0)
    finally:
        await api.channel.close()


def worker(address: str, token: str, op: str, clients: int, start: float, stop: float,
           first_seed: int) -> WorkerResult:
    """One client process: `clients` coroutines from wall-clock `start` to `stop`."""
    latencies: list[float] = []
    errors = [0]

    async def main() -> None:
        await asyncio.gather(*(
            _client(address, token, op, start, stop, latencies, errors, first_seed + k)
            for k in range(clients)
        ))

    before = resource.getrusage(resource.RUSAGE_SELF)
    asyncio.run(main())
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WorkerResult(latencies, errors[0], cpu)


def noop(_: int) -> int:
    return os.getpid()


async def seed(stack: common.Stack) -> None:
    api = stack.stubs()
    await common.create_cluster(api, CLUSTER)
    await api.apps.CreateApplication(
        api_pb2.CreateApplicationRequest(
            cluster=CLUSTER, name=APP, template=common.service_template(SERVICES, 0)),
        metadata=api.metadata,
    )
    await api.channel.close()


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(pool: concurrent.futures.ProcessPoolExecutor, procs: int, stack: common.Stack, op: str,
            concurrency: int, seconds: float) -> tuple[float, float, float, int, float, float]:
    nprocs = min(procs, concurrency)
    share = [concurrency // nprocs + (1 if k < concurrency % nprocs else 0) for k in range(nprocs)]
    start = time.time() + 1.0
    stop = start + seconds
    cpu0 = server_cpu(stack.server.proc.pid)
    futures = [
        pool.submit(worker, stack.address, stack.token, op, n, start, stop, sum(share[:k]))
        for k, n in enumerate(share)
    ]
    results = [f.result() for f in futures]
    server_cpu_s = server_cpu(stack.server.proc.pid) - cpu0
    lat = sorted(x for r in results for x in r.latencies)
    errors = sum(r.errors for r in results)
    client_cpu = sum(r.cpu_seconds for r in results)
    if not lat:
        raise RuntimeError(f"{op} x{concurrency}: no call succeeded ({errors} errors)")
    rate = len(lat) / seconds
    return (rate, common.percentile(lat, 50) * 1000, common.percentile(lat, 99) * 1000, errors,
            client_cpu / (seconds + 1.0), server_cpu_s / (seconds + 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per (op, concurrency)")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated client counts")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {OPS}")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            parser.error(f"--ops: unknown op {o!r}; choose from {', '.join(OPS)}")
    if args.procs < 1:
        parser.error("--procs: must be >= 1")

    ctx = multiprocessing.get_context("spawn")  # never fork a process that has grpc state
    with common.stack() as stack, concurrent.futures.ProcessPoolExecutor(args.procs, mp_context=ctx) as pool:
        asyncio.run(seed(stack))
        list(pool.map(noop, range(args.procs * 2)))  # start the workers before measuring
        print(f"server {stack.address} (pid {stack.server.proc.pid}), {args.procs} client processes, "
              f"{args.seconds:g} s per row, {os.cpu_count()} cores")
        print(f"{'op':<7}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
              f"{'client cpu':>12}{'server cpu':>12}")
        rows = {}
        for op in ops:
            for c in levels:
                rate, p50, p99, errors, ccpu, scpu = run_one(pool, args.procs, stack, op, c, args.seconds)
                rows[(op, c)] = (rate, p99)
                print(f"{op:<7}{c:>8}{rate:>10,.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}"
                      f"{ccpu:>11.0%} {scpu:>11.0%}")
        if ("get", 64) in rows:
            rate, p99 = rows[("get", 64)]
            ok = rate >= GOAL_GETS and p99 < GOAL_P99_MS
            print(f"goal get x64: >= {GOAL_GETS:,.0f}/s and p99 < {GOAL_P99_MS:g} ms -> "
                  f"{rate:,.0f}/s, p99 {p99:.1f} ms: {'MET' if ok else 'NOT MET'}")
        print(f"server RSS after the run: {common.rss_mib(stack.server.proc.pid):.0f} MiB")


if __name__ == "__main__":
    main()
