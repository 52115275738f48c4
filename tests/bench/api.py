"""API throughput and latency: get, list and create with 1 and with 64 concurrent clients.

Run: ``.venv/bin/python tests/bench/api.py [--seconds 5] [--procs 2] [--concurrency 1,64] [--tls [--rounds 3]]``

It starts etcd and a ccs-server (separate processes), seeds one cluster with an application of
20 services, then for each (op, concurrency) runs that many clients for a fixed time and prints
requests/s and p50/p99 latency. Ops:

- ``get``: GetService of one of the 20 services (from the server's watch cache);
- ``list``: ListServices of the application (20 services in one page, from the watch cache);
- ``create``: CreateCluster with a fresh name (one guarded etcd transaction per call).

Each client is one coroutine with its own grpc.aio channel, issuing one call at a time. Clients
are spread over ``--procs`` spawned processes, because one Python process issuing grpc.aio calls
saturates a core before the server does; the script prints the client processes' CPU use so it
is visible whether the clients or the server were the limit. On a 2-core box the clients,
the server and etcd share the cores, so the figures are a lower bound for the server.
The server runs TLS (the product's default); clients verify it against its CA.

``--tls`` instead compares TLS with plaintext in one run: a second server on the same etcd runs
``--insecure``, and GetService at 64 clients is measured against each in turn, ``--rounds``
times alternating (so drift on a shared box hits both), printing each row, the medians, the
ratio TLS/plaintext and the issue's goal (TLS >= 2,000/s, p99 < 50 ms, >= 0.8x plaintext).
Handshakes happen while warming each client's channel, outside the measured window: the
figures are the per-call cost of TLS on established connections, which is what a client
with a long-lived channel pays.

``--tokens N`` measures what authentication costs per call when N user tokens are stored
(issue 12: 1,000). Tokens are stored as digests and looked up by key, and a verified one is
cached for ``controlplane.auth.CACHE_TTL`` seconds, so the number stored should not matter and a
call pays an etcd read only on a cache miss. It prints, alternating ``--rounds`` times:
GetService x64 with the admin token while only it is stored, then (after creating N viewer
tokens) the same with N+1 stored, and with every call using the next of the N tokens (each
client cycles through all of them, so the cache holds N entries); then one client's latency for
the first call with each of 200 never-used tokens (a cache miss: digest, etcd read, scope check)
against 200 calls with one warm token.
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

from ccs.v1 import api_pb2, api_pb2_grpc
from tests.bench import _common as common
from tests.conftest import TRUST, ServerProc, start_server
from tests.integration.grpc_helpers import stubs

CLUSTER = "bench"
APP = "app"
SERVICES = 20
OPS = ("get", "list", "create")
GOAL_GETS = 2000.0
GOAL_P99_MS = 50.0
GOAL_TLS_RATIO = 0.8


@dataclass
class WorkerResult:
    latencies: list[float]
    errors: int
    cpu_seconds: float


async def _client(address: str, token: str | list[str], op: str, start: float, stop: float, out: list[float],
                  errors: list[int], seed: int) -> None:
    """`token`: one bearer token, or a list whose next entry each call uses (--tokens)."""
    tokens = token if isinstance(token, list) else [token]
    api = stubs(address, tokens[0])
    mds = [(("authorization", f"Bearer {t}"),) for t in tokens]
    tag = f"{uuid.uuid4().hex[:6]}{seed}"
    i = 0

    async def call() -> None:
        nonlocal i
        i += 1
        md = mds[(seed + i) % len(mds)]
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


def worker(address: str, token: str | list[str], op: str, clients: int, start: float, stop: float,
           first_seed: int, ca_pem: str | None = None) -> WorkerResult:
    """One client process: `clients` coroutines from wall-clock `start` to `stop`; over TLS
    verified against `ca_pem` when given, else plaintext (a --insecure server)."""
    if ca_pem is not None:
        TRUST[address] = ca_pem  # a spawned process: the parent's TRUST is not here
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
            concurrency: int, seconds: float, server: ServerProc | None = None,
            tokens: list[str] | None = None) -> tuple[float, float, float, int, float, float]:
    """One row against ``server`` (default: the stack's, TLS), as the admin or cycling ``tokens``."""
    srv = server or stack.server
    nprocs = min(procs, concurrency)
    share = [concurrency // nprocs + (1 if k < concurrency % nprocs else 0) for k in range(nprocs)]
    start = time.time() + 1.0
    stop = start + seconds
    cpu0 = server_cpu(srv.proc.pid)
    futures = [
        pool.submit(worker, srv.address, tokens or stack.token, op, n, start, stop, sum(share[:k]), srv.ca_pem)
        for k, n in enumerate(share)
    ]
    results = [f.result() for f in futures]
    server_cpu_s = server_cpu(srv.proc.pid) - cpu0
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
    parser.add_argument("--tls", action="store_true",
                        help="compare GetService x64 over TLS with plaintext (a second, --insecure server)")
    parser.add_argument("--rounds", type=int, default=3, help="--tls/--tokens: alternating rounds of each")
    parser.add_argument("--tokens", type=int, default=0,
                        help="measure the token check per call with this many user tokens stored (e.g. 1000)")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            parser.error(f"--ops: unknown op {o!r}; choose from {', '.join(OPS)}")
    if args.procs < 1:
        parser.error("--procs: must be >= 1")

    if args.tls:
        compare_tls(args)
        return
    if args.tokens:
        compare_tokens(args)
        return
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


def compare_tls(args: argparse.Namespace) -> None:
    """GetService x64 against a TLS server and a plaintext one on the same etcd, alternating."""
    ctx = multiprocessing.get_context("spawn")
    with common.stack() as stack, concurrent.futures.ProcessPoolExecutor(args.procs, mp_context=ctx) as pool:
        asyncio.run(seed(stack))
        # Plaintext on purpose: the baseline the issue compares TLS with.
        plain = start_server(stack.base / "plain", stack.etcd.url, stack.base / "plain.yaml",
                             extra=["--insecure", "--no-reconcilers"], expect_token=False)
        try:
            list(pool.map(noop, range(args.procs * 2)))
            print(f"TLS server {stack.address} (pid {stack.server.proc.pid}), plaintext server {plain.address} "
                  f"(pid {plain.proc.pid}), same etcd; {args.procs} client processes, {args.seconds:g} s per row, "
                  f"{os.cpu_count()} cores")
            print(f"{'round':<7}{'mode':<11}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
                  f"{'client cpu':>12}{'server cpu':>12}")
            rates: dict[str, list[float]] = {"plaintext": [], "tls": []}
            p99s: dict[str, list[float]] = {"plaintext": [], "tls": []}
            for rnd in range(1, args.rounds + 1):
                order = [("plaintext", plain), ("tls", stack.server)]
                if rnd % 2 == 0:
                    order.reverse()
                for mode, srv in order:
                    rate, p50, p99, errors, ccpu, scpu = run_one(pool, args.procs, stack, "get", 64,
                                                                 args.seconds, srv)
                    rates[mode].append(rate)
                    p99s[mode].append(p99)
                    print(f"{rnd:<7}{mode:<11}{rate:>10,.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}"
                          f"{ccpu:>11.0%} {scpu:>11.0%}")
            med = {m: common.percentile(sorted(v), 50) for m, v in rates.items()}
            med_p99 = {m: common.percentile(sorted(v), 50) for m, v in p99s.items()}
            ratio = med["tls"] / med["plaintext"]
            print(f"median get x64: plaintext {med['plaintext']:,.0f}/s (p99 {med_p99['plaintext']:.1f} ms), "
                  f"TLS {med['tls']:,.0f}/s (p99 {med_p99['tls']:.1f} ms) -> TLS/plaintext {ratio:.2f}")
            ok = med["tls"] >= GOAL_GETS and med_p99["tls"] < GOAL_P99_MS and ratio >= GOAL_TLS_RATIO
            print(f"goal: TLS >= {GOAL_GETS:,.0f}/s, p99 < {GOAL_P99_MS:g} ms and >= {GOAL_TLS_RATIO:g}x plaintext: "
                  f"{'MET' if ok else 'NOT MET'}")
        finally:
            plain.stop()


async def create_tokens(stack: common.Stack, n: int) -> list[str]:
    """``n`` viewer tokens scoped to the benchmark's cluster, created 16 at a time."""
    api = stack.stubs()
    tokens = api_pb2_grpc.TokenServiceStub(api.channel)
    tag = uuid.uuid4().hex[:6]
    out: list[str] = []
    try:
        for first in range(0, n, 16):
            made = await asyncio.gather(*(
                tokens.CreateToken(api_pb2.CreateTokenRequest(name=f"b{tag}-{k}", role="viewer", clusters=[CLUSTER]),
                                   metadata=api.metadata)
                for k in range(first, min(n, first + 16))))
            out += [m.secret for m in made]
    finally:
        await api.channel.close()
    return out


async def first_use(stack: common.Stack, cold: list[str], warm: str) -> tuple[list[float], list[float]]:
    """One client, one call at a time: each of ``cold`` once (never used: a cache miss each),
    then as many calls with ``warm`` (cached): the latencies of both, sorted."""
    api = stubs(stack.address, warm)
    req = api_pb2.GetServiceRequest(cluster=CLUSTER, application=APP, name="s000")
    out: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        await api.services.GetService(req, metadata=api.metadata)
        for kind, sequence in (("cold", cold), ("warm", [warm] * len(cold))):
            for t in sequence:
                t0 = time.perf_counter()
                await api.services.GetService(req, metadata=(("authorization", f"Bearer {t}"),))
                out[kind].append(time.perf_counter() - t0)
    finally:
        await api.channel.close()
    return sorted(out["cold"]), sorted(out["warm"])


def compare_tokens(args: argparse.Namespace) -> None:
    """GetService x64: the admin token alone stored; then N more stored; then calls spread over them."""
    ctx = multiprocessing.get_context("spawn")
    with common.stack() as stack, concurrent.futures.ProcessPoolExecutor(args.procs, mp_context=ctx) as pool:
        asyncio.run(seed(stack))
        list(pool.map(noop, range(args.procs * 2)))
        print(f"server {stack.address} (pid {stack.server.proc.pid}), {args.procs} client processes, "
              f"{args.seconds:g} s per row, {os.cpu_count()} cores")
        print(f"{'round':<7}{'mode':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
              f"{'client cpu':>12}{'server cpu':>12}")
        rates: dict[str, list[float]] = {}

        def row(rnd: int, mode: str, tokens: list[str] | None) -> None:
            rate, p50, p99, errors, ccpu, scpu = run_one(pool, args.procs, stack, "get", 64, args.seconds,
                                                         tokens=tokens)
            rates.setdefault(mode, []).append(rate)
            print(f"{rnd:<7}{mode:<22}{rate:>10,.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}{ccpu:>11.0%} {scpu:>11.0%}")

        for rnd in range(1, args.rounds + 1):
            row(rnd, "admin, 1 stored", None)
        t0 = time.perf_counter()
        made = asyncio.run(create_tokens(stack, args.tokens + 200))
        print(f"created {len(made)} viewer tokens in {time.perf_counter() - t0:.1f} s")
        tokens, cold = made[:args.tokens], made[args.tokens:]
        stored = f"{args.tokens + 201} stored"
        for rnd in range(1, args.rounds + 1):
            order: list[tuple[str, list[str] | None]] = [(f"admin, {stored}", None), (f"{args.tokens} tokens cycled", tokens)]
            for mode, which in order if rnd % 2 else order[::-1]:
                row(rnd, mode, which)
        med = {m: common.percentile(sorted(v), 50) for m, v in rates.items()}
        base = med["admin, 1 stored"]
        for mode, rate in med.items():
            print(f"median {mode}: {rate:,.0f}/s ({rate / base:.2f}x the admin token alone stored)")
        cold_lat, warm_lat = asyncio.run(first_use(stack, cold, stack.token))
        c50, w50 = common.percentile(cold_lat, 50) * 1000, common.percentile(warm_lat, 50) * 1000
        print(f"one client, {len(cold)} first uses of a token (cache miss) p50 {c50:.2f} ms "
              f"p99 {common.percentile(cold_lat, 99) * 1000:.2f} ms; a cached token p50 {w50:.2f} ms "
              f"p99 {common.percentile(warm_lat, 99) * 1000:.2f} ms -> a token check on a miss costs "
              f"{c50 - w50:.2f} ms")


if __name__ == "__main__":
    main()
