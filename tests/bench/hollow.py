"""Hollow-node scale: 500 agents on FakeRuntime against a real server + etcd, 20,000 containers.

Run: ``.venv/bin/python tests/bench/hollow.py [--nodes 500] [--apps 40] [--replicas 500]
[--procs 2] [--insecure [--agents-per-channel N]] [--heartbeat S] [--down-grace S] [--curve [--curve-max N]]
[--timeout S] [--idle S] [--profile]``

The real agent code (register, session, executor, status batching, heartbeats) runs against
``FakeRuntime`` (kubemark style), ``--nodes / --procs`` agents per spawned process, each on a
grpc.aio channel (one connection) of its own, as real nodes are (``--agents-per-channel N``
shares one among N: until 2026-12-01 50 shared one, and a heartbeat's answer then waited on
that connection behind 50 agents' network maps: HTTP/2 streams share one TCP connection and its
flow-control window, so the benchmark made head-of-line blocking no real node has). Once every node is READY, it creates ``--apps`` applications of
one service with ``--replicas`` replicas each, back to back, and follows the Watch stream until
every container is reported RUNNING.

TLS and node certificates are on, as in a default deployment (issue 15 asks for the figures
with them): each hollow agent joins as a real one does - fetches the server's CA named by the
join token's digest, makes a key and a CSR, gets a node certificate - and holds a mutual-TLS
connection of its own to the node port. ``--insecure`` runs the server plaintext with bearer
node credentials instead (how every hollow figure before 2026-12-01 15:00 UTC was taken), and
only then may ``--agents-per-channel`` share a connection (a certificate is per connection).

It prints:

- a progress line every 15 s, and every invariant violation as it is seen (``_invariants.py``:
  never more live containers than replicas in a service, never one container id on two nodes;
  containers beyond the replicas are reported with their events' reasons). Any violation, or a
  timeout, makes the exit status 1;
- total time from the first CreateApplication call to the last RUNNING report;
- placements/s: containers placed (first seen with a node) per second, from the first create call
  to the last placement;
- the CPU used over the deploy by the server, the hollow-node processes and the watcher (1.0 =
  one core), to show which side was the limit (raise ``--procs`` when it is the hollow nodes);
- the control plane's peak VmRSS (sampled every 0.5 s) and the etcd db file size;
- session churn (also on a timeout): agent sessions opened and closed (server log), heartbeats by
  outcome (server ``/metrics``), sweeps that found nodes unheard, and why the hollow agents'
  sessions ended (their "disconnected" reasons, tallied per process);
- with ``--profile``: a py-spy profile of the server for the whole deploy, summarised as the
  functions with the most samples (self and inclusive), with the raw file kept for flamegraphs.

``--curve`` runs 10,000 containers on 200 nodes, 20,000 on 500, 50,000 on 1,000 and 100,000 on
2,000 (``--curve-max`` stops earlier), each on a fresh etcd and server, with at least one
hollow-node process per 500 nodes, and prints one table row per size, with the load average.

The server runs with its own default heartbeat period and down grace (the figures are those of
a default deployment); ``--heartbeat`` / ``--down-grace`` override them. On a 2-core box the
agents, the watcher, the server and etcd share the cores. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store.etcd import Etcd
from tests.bench import _common as common
from tests.bench._invariants import Invariants

GOAL_SECONDS = 60.0
GOAL_RATE = 1000.0
PY_SPY = Path("/tmp/benchvenv/bin/py-spy")
PROGRESS_EVERY = 15.0  # seconds between progress lines
CURVE = ((10_000, 200), (20_000, 500), (50_000, 1_000), (100_000, 2_000))  # containers, nodes


# ---------------------------------------------------------------- hollow node processes


class LoopLagTally:
    """A hollow process's event-loop lag (``measure_loop_lag``'s samples), kept as counts."""

    def __init__(self) -> None:
        self.samples, self.total, self.over_1s, self.over_5s, self.max = 0, 0.0, 0, 0, 0.0

    def observe(self, amount: float) -> None:
        self.samples += 1
        self.total += amount
        self.over_1s += amount > 1.0
        self.over_5s += amount > 5.0
        self.max = max(self.max, amount)


def lag_file(tally_file: Path) -> Path:
    return tally_file.with_name(tally_file.name.replace("disconnects", "loop-lag"))


def hollow_lag(tallies: list[Path]) -> dict[str, float]:
    """The hollow processes' loop lag so far, summed (max: the largest of them)."""
    out = {"samples": 0.0, "total": 0.0, "over_1s": 0.0, "over_5s": 0.0, "max": 0.0}
    for path in tallies:
        with contextlib.suppress(OSError, ValueError):
            one = json.loads(lag_file(path).read_text())
            for k in out:
                out[k] = max(out[k], one[k]) if k == "max" else out[k] + one[k]
    return out


def print_hollow_lag(before: dict[str, float], after: dict[str, float]) -> None:
    n = after["samples"] - before["samples"]
    if not n:
        print("  hollow processes' event-loop lag: no samples")
        return
    print(f"  hollow processes' event-loop lag over the deploy: {int(n)} samples, mean "
          f"{(after['total'] - before['total']) / n:.3f} s, later than 1 s {int(after['over_1s'] - before['over_1s'])}, "
          f"5 s {int(after['over_5s'] - before['over_5s'])}; largest since they started {after['max']:.1f} s")


def hollow_nodes(address: str, token: str, first: int, count: int, stop: Any, pids: Any,
                 tally_file: Path | None = None, per_channel: int = 1, tls: bool = True) -> dict[str, int]:
    """Run `count` hollow agents in this process until `stop` (a Manager Event) is set; tell
    `pids` (a Manager list) this process's id, for its CPU figure. Returns why its agents'
    sessions ended ({reason: times}), also written to ``tally_file`` every 2 s. ``tls``: each
    agent joins with a node certificate on a connection of its own (``per_channel`` is then 1);
    else plaintext channels shared by ``per_channel`` agents."""
    import logging

    pids.append(os.getpid())

    import grpc.aio
    import structlog

    from controlplane.metrics.loop_lag import measure_loop_lag
    from nodeagent.agent import Agent
    from nodeagent.dispatcher_client import CHANNEL_OPTIONS
    from nodeagent.runtime import FakeRuntime

    lag = LoopLagTally()  # this process's loop: do the agents' answers wait here?

    # Warnings are dropped (500 agents), but why sessions ended is tallied: the parent prints it.
    reasons: collections.Counter[str] = collections.Counter()

    def tally(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if event.get("event") == "disconnected":
            # gRPC's account without its timestamps and addresses: where the status came from
            debug = re.sub(r'created_time:"[^"]*"|ipv4:[0-9.:]+|\d{4}-\d\d-\d\dT[^ ,}]*', "", str(event.get("debug", "")))
            reasons[f'{str(event.get("reason", ""))[:80]} (in the {event.get("part", "?")}) {debug[:160]}'.rstrip()] += 1
        if method not in ("error", "critical", "exception"):
            raise structlog.DropEvent
        return event

    structlog.configure(processors=[tally, structlog.processors.KeyValueRenderer()],
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def main() -> None:
        # The agent's own channel options: without its message size limits a node's complete
        # set or network map above gRPC's 4 MiB default is refused, and the agent reconnects for
        # ever (what stalled the 20,000-container run at 6,052 RUNNING with 9,022 session opens).
        channels = [] if tls else [grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                                   for _ in range(0, count, per_channel)]
        agents = [
            Agent(address, runtime=FakeRuntime(), name=f"hollow-{first + i:04d}", join_token=token,
                  labels={"zone": f"z{(first + i) % 5}"}, address=f"10.1.{(first + i) // 250}.{(first + i) % 250}",
                  channel=None if tls else channels[i // per_channel])
            for i in range(count)
        ]
        tasks = [asyncio.create_task(a.run()) for a in agents]
        lag_task = asyncio.create_task(measure_loop_lag(lag))
        while not await asyncio.to_thread(stop.wait, 2.0):
            if tally_file is not None:  # read by the parent, even if a stop hangs
                await asyncio.to_thread(tally_file.write_text, json.dumps(reasons))
                await asyncio.to_thread(lag_file(tally_file).write_text, json.dumps(lag.__dict__))
        lag_task.cancel()
        if tally_file is not None:
            await asyncio.to_thread(tally_file.write_text, json.dumps(reasons))
        with contextlib.suppress(TimeoutError):  # bounded: a hung agent must not hang the benchmark
            await asyncio.wait_for(asyncio.gather(*(a.stop() for a in agents), return_exceptions=True), 30)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        for ch in channels:
            await ch.close()

    asyncio.run(main())
    return dict(reasons)


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
                 timeout: float, check: Invariants) -> tuple[float, float, float, common.Progress]:
    api = stack.stubs()
    try:
        rev = await common.current_revision(api, cluster)
        prog = common.Progress({}, {})
        total = apps * replicas
        watch = asyncio.create_task(
            common.watch_until_running(api, cluster, total, rev + 1, timeout=timeout, progress=prog,
                                       on_response=check.feed))
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        template = common.service_template(1, replicas)
        for i in range(apps):
            await api.apps.CreateApplication(
                api_pb2.CreateApplicationRequest(cluster=cluster, name=f"app{i:03d}", template=template),
                metadata=api.metadata)
        created = time.perf_counter() - start
        t0 = time.perf_counter()
        while not watch.done():
            await asyncio.wait([watch], timeout=PROGRESS_EVERY)
            if not watch.done():
                passes = pass_tally(await asyncio.to_thread(server_metrics, stack.server.log_path))
                print(f"  {time.perf_counter() - t0:5.0f} s: {len(prog.placed_at)} placed, "
                      f"{len(prog.running_at)} running, {len(check.violations)} violations; {passes}; "
                      f"load average {load_average()}", flush=True)
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


@dataclass
class Figures:
    """One size's results (a row of ``--curve``)."""

    nodes: int
    containers: int
    procs: int
    placed_s: float
    running_s: float
    rate: float
    peak_rss: float
    db_mib: float
    server_cpu: float  # cores (1.0 = one core busy) over the deploy
    hollow_cpu: float
    watcher_cpu: float
    load: str
    violations: int

    @property
    def per_container_ms(self) -> float:
        return self.running_s / self.containers * 1000.0


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def etcd_revision(etcd_url: str) -> int:
    """etcd's current revision: one more for every committed write transaction."""
    async def revision() -> int:
        etcd = Etcd([etcd_url])
        try:
            return int((await etcd.range("/ccs/", limit=1)).revision)
        finally:
            await etcd.close()
    return asyncio.run(revision())


ETCD_LATENCIES = (("WAL fsyncs", "etcd_disk_wal_fsync_duration_seconds"),
                  ("backend commits", "etcd_disk_backend_commit_duration_seconds"))


def etcd_metrics(etcd_url: str) -> dict[str, float]:
    """etcd's own /metrics (count and sum of its disk latencies), as {series: value}; {} if unreadable."""
    import urllib.request

    try:
        text = urllib.request.urlopen(f"{etcd_url}/metrics", timeout=10).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(tuple(name for _, name in ETCD_LATENCIES)):
            series, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[series] = float(value)
    return out


def print_etcd_latency(before: dict[str, float], after: dict[str, float]) -> None:
    """What etcd itself spent on the deploy's writes: tells a slow etcd from a slow server when
    the server's mean transaction time rises (the twelfth session could not tell them apart)."""
    parts = []
    for what, name in ETCD_LATENCIES:
        n = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
        s = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
        parts.append(f"{int(n)} {what} (mean {1000 * s / n:.2f} ms)" if n else f"no {what} counted")
    print("  etcd's own disk over the deploy: " + ", ".join(parts))


def measure_idle(etcd_url: str, pid: int, seconds: float) -> tuple[float, float]:
    """Server CPU (cores) and etcd revisions per second (each a write) over ``seconds`` of
    quiet: what heartbeats and the steady state cost."""
    rev0, cpu0, t0 = etcd_revision(etcd_url), proc_cpu(pid), time.perf_counter()
    time.sleep(seconds)
    rev1, cpu1, t1 = etcd_revision(etcd_url), proc_cpu(pid), time.perf_counter()
    return (cpu1 - cpu0) / (t1 - t0), (rev1 - rev0) / (t1 - t0)


def write_counts(m: dict[str, float]) -> tuple[int, float, int]:
    """From the server's metrics: committed etcd transactions, the seconds spent in them, and
    status calls taken in."""
    txns = sum(v for k, v in m.items() if k.startswith("ccs_etcd_txn_seconds_count{") and "committed" in k)
    secs = sum(v for k, v in m.items() if k.startswith("ccs_etcd_txn_seconds_sum{") and "committed" in k)
    calls = sum(v for k, v in m.items() if k.startswith("ccs_rpc_handled_total{") and 'method="UpdateStatus"' in k)
    return int(txns), secs, int(calls)


def print_write_counts(rev: tuple[int, int], before: dict[str, float], after: dict[str, float],
                       containers: int) -> None:
    """What the deploy cost etcd, in counts rather than seconds: wall times on this 2-core box
    move by a third from one run to the next, counts do not (the eleventh session's lesson)."""
    (t0, s0, c0), (t1, s1, c1) = write_counts(before), write_counts(after)
    revisions, txns = rev[1] - rev[0], t1 - t0
    print(f"  etcd over the deploy: {revisions} revisions ({revisions / containers:.2f} per container); "
          f"this server's committed txns {txns} (mean {1000 * (s1 - s0) / max(txns, 1):.1f} ms); "
          f"status calls {c1 - c0} ({(c1 - c0) / containers:.2f} per container)")


def print_cpu(cpu0: list[float], cpu1: list[float], procs: int, total: int) -> list[float]:
    """CPU over the deploy: [server, hollow nodes, watcher, wall clock, etcd] seconds at its start
    and end. Printed also for a failed deploy: that is when it tells which side was the limit."""
    wall = cpu1[3] - cpu0[3]
    cpu = [(b - a) / wall for a, b in zip(cpu0[:3], cpu1[:3], strict=True)]
    print(f"  CPU over the deploy (1.0 = one core): server {cpu[0]:.2f}, hollow nodes {cpu[1]:.2f} "
          f"({procs} processes), watcher {cpu[2]:.2f}, etcd {(cpu1[4] - cpu0[4]) / wall:.2f}; "
          f"{os.cpu_count()} cores")
    # CPU seconds per container: what a build costs, steadier than wall time on a shared box.
    print(f"  server CPU per container {1000 * (cpu1[0] - cpu0[0]) / total:.2f} ms, "
          f"hollow nodes {1000 * (cpu1[1] - cpu0[1]) / total:.2f} ms, etcd {1000 * (cpu1[4] - cpu0[4]) / total:.2f} ms")
    return cpu


def print_gc(before: dict[str, float], after: dict[str, float]) -> None:
    """The server's time in CPython's cyclic collector over the deploy (controlplane.gc_tuning):
    each full collection stalls the event loop that serves every agent."""
    def series(m: dict[str, float], name: str, generation: int) -> float:
        return m.get(f'{name}{{generation="{generation}"}}', 0.0)

    if not any(k.startswith("ccs_gc_seconds_total") for k in after):
        print("  server GC: no ccs_gc_* series (a server from before they existed)")
        return
    runs = [int(series(after, "ccs_gc_collections_total", g) - series(before, "ccs_gc_collections_total", g))
            for g in range(3)]
    secs = [series(after, "ccs_gc_seconds_total", g) - series(before, "ccs_gc_seconds_total", g) for g in range(3)]
    print(f"  server GC over the deploy: {sum(secs):.2f} s in {' / '.join(map(str, runs))} collections of "
          f"generations 0 / 1 / 2 ({' + '.join(f'{s:.2f}' for s in secs)} s)")


def print_loop_lag(before: dict[str, float], after: dict[str, float]) -> None:
    """The server's event-loop lag over the deploy (``ccs_event_loop_lag_seconds``, sampled every
    0.25 s): how long its stalls held every heartbeat and RPC."""
    def diff(series: str) -> float:
        return after.get(series, 0.0) - before.get(series, 0.0)

    n = diff("ccs_event_loop_lag_seconds_count")
    if not n:
        print("  server event-loop lag: no samples (a server without ccs_event_loop_lag_seconds)")
        return
    late = {le: n - diff(f'ccs_event_loop_lag_seconds_bucket{{le="{le}"}}') for le in ("0.1", "1.0", "5.0")}
    print(f"  server event-loop lag over the deploy: {int(n)} samples, mean {diff('ccs_event_loop_lag_seconds_sum') / n:.3f} s, "
          f"later than 0.1 s {int(late['0.1'])}, 1 s {int(late['1.0'])}, 5 s {int(late['5.0'])}")


def server_metrics(log_path: Path) -> dict[str, float]:
    """The server's /metrics (the URL its log names), as {series: value}; {} if unreadable."""
    import json
    import re
    import urllib.request

    url = ""
    for line in log_path.read_text(errors="replace").splitlines():
        if "metrics listening" in line:
            m = re.search(r'"url": ?"([^"]+)"', line) or re.search(r"url=(\S+)", line)
            if m:
                url = m.group(1)
            else:
                with contextlib.suppress(ValueError):
                    url = json.loads(line).get("url", "")
    if not url:
        return {}
    if not url.rstrip("/").endswith("metrics"):
        url = url.rstrip("/") + "/metrics"
    try:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[series] = float(value)
    return out


def pass_tally(m: dict[str, float]) -> str:
    """The leader's reconcile passes so far, by outcome, and etcd transaction conflicts: a pass
    "behind" waited for the watch cache to see the leader's own last writes and planned nothing."""
    def count(outcome: str) -> int:
        return int(sum(v for k, v in m.items() if k.startswith("ccs_reconcile_pass_seconds_count{")
                       and f'outcome="{outcome}"' in k))
    conflicts = int(sum(v for k, v in m.items() if k.startswith("ccs_etcd_txn_conflicts_total")))
    return ("passes " + ", ".join(f"{o} {count(o)}" for o in ("done", "conflict", "behind", "error"))
            + f"; txn conflicts {conflicts}")


def session_churn(log_path: Path) -> str:
    """Agent sessions opened, heartbeats by outcome and nodes declared unheard, from the server's
    metrics and log: sessions that reopen under load show up here first (issue 15)."""
    m = server_metrics(log_path)

    def total(method: str, code: str | None = None) -> int:
        return int(sum(v for k, v in m.items() if k.startswith("ccs_rpc_handled_total{")
                       and f'method="{method}"' in k and (code is None or f'code="{code}"' in k)))
    opens = closes = unheard = 0
    for line in log_path.read_text(errors="replace").splitlines():
        opens += "session opened" in line
        closes += "session closed" in line
        unheard += "nodes unheard past the deadline" in line
    streams = int(sum(v for k, v in m.items()
                      if k.startswith("ccs_rpc_streams_open{") and 'method="Heartbeats"' in k))
    hb_bad = {k.split('code="')[1].split('"')[0]: int(v) for k, v in m.items()
              if k.startswith("ccs_rpc_handled_total{") and 'method="Heartbeat"' in k and 'code="OK"' not in k}
    return (f"sessions opened {opens}, closed {closes} (ended: {total('Session')}, by code "
            + ", ".join(f"{c} {total('Session', c)}" for c in ("OK", "CANCELLED", "UNKNOWN", "UNAVAILABLE")
                        if total("Session", c))
            + f"); heartbeat calls OK {total('Heartbeat', 'OK')}, not OK {hb_bad or 0}; heartbeat streams "
            f"ended {total('Heartbeats')}, open {streams}; status calls "
            f"{total('UpdateStatus')}; unheard-node sweeps {unheard}")


def print_disconnects(tallies: list[Path]) -> None:
    """Why the hollow agents' sessions ended (the agents' own "disconnected" reasons)."""
    reasons: collections.Counter[str] = collections.Counter()
    for path in tallies:
        with contextlib.suppress(OSError, ValueError):
            reasons.update(json.loads(path.read_text()))
    print(f"  hollow agents' sessions ended {sum(reasons.values())} times"
          + "".join(f"\n    {n:6d}  {r}" for r, n in reasons.most_common(8)), flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_size(args: argparse.Namespace, nodes: int, apps: int, replicas: int, procs: int) -> Figures:
    """Fresh etcd + server, ``nodes`` hollow agents in ``procs`` processes, then the deploy."""
    # The default log level: wait_serving looks for an info line. TLS unless --insecure.
    server_args = ["--insecure"] if args.insecure else []
    if args.heartbeat is not None:
        server_args += ["--heartbeat-period", str(args.heartbeat)]
    if args.down_grace is not None:
        server_args += ["--down-grace", str(args.down_grace)]
    if args.gc_young_threshold is not None:
        server_args += ["--gc-young-threshold", str(args.gc_young_threshold)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, common.stack(server_args, keep=args.keep or args.profile) as stack, \
            concurrent.futures.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
        stop_hollow = manager.Event()
        pids = manager.list()
        token = asyncio.run(_cluster(stack))
        share = [nodes // procs + (1 if k < nodes % procs else 0) for k in range(procs)]
        tallies = [stack.base / f"hollow-{k}-disconnects.json" for k in range(procs)]
        futures = [pool.submit(hollow_nodes, stack.address, token, sum(share[:k]), n, stop_hollow, pids, tallies[k],
                               args.agents_per_channel, not args.insecure)
                   for k, n in enumerate(share)]
        try:
            joined = asyncio.run(wait_nodes_ready(stack, "hollow", nodes, 300 + nodes / 5))
            pid = stack.server.proc.pid
            print(f"{nodes} hollow nodes READY in {joined:.1f} s ({procs} processes, "
                  f"{'plaintext, bearer credentials' if args.insecure else 'TLS, node certificates'}); "
                  f"server RSS {common.rss_mib(pid):.0f} MiB; load average {load_average()}", flush=True)
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
            check = Invariants(replicas)
            rev0, metrics0 = etcd_revision(stack.etcd.url), server_metrics(stack.server.log_path)
            disk0 = etcd_metrics(stack.etcd.url)
            hollow_lag0 = hollow_lag(tallies)
            etcd_pid = stack.etcd.proc.pid
            cpu0 = [proc_cpu(pid), sum(proc_cpu(p) for p in pids), time.process_time(), time.perf_counter(),
                    proc_cpu(etcd_pid)]
            try:
                created, placed, running, prog = asyncio.run(
                    deploy(stack, "hollow", apps, replicas, args.timeout, check))
            finally:
                cpu1 = [proc_cpu(pid), sum(proc_cpu(p) for p in pids), time.process_time(), time.perf_counter(),
                        proc_cpu(etcd_pid)]
                for line in check.report():
                    print(line)
                metrics1 = server_metrics(stack.server.log_path)
                print_write_counts((rev0, etcd_revision(stack.etcd.url)), metrics0, metrics1, apps * replicas)
                print_gc(metrics0, metrics1)
                print_loop_lag(metrics0, metrics1)
                print_etcd_latency(disk0, etcd_metrics(stack.etcd.url))
                print(f"  {session_churn(stack.server.log_path)}")
                print_disconnects(tallies)
                print_hollow_lag(hollow_lag0, hollow_lag(tallies))
                cpu = print_cpu(cpu0, cpu1, procs, apps * replicas)  # also when the deploy failed
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                spy.wait(60)
            stop.set()
            sampler.join()
            total = apps * replicas
            rate = len(prog.placed_at) / placed
            print(f"{apps} apps x {replicas} replicas = {total} containers on {nodes} nodes "
                  f"(load average {load_average()})")
            print(f"  create calls done:      {created:6.2f} s")
            print(f"  last placement:         {placed:6.2f} s  -> {rate:,.0f} placements/s "
                  f"({len(prog.placed_at)} containers placed)")
            print(f"  all {total} RUNNING: {running:6.2f} s (goal < {GOAL_SECONDS:g} s: "
                  f"{'MET' if running < GOAL_SECONDS else 'NOT MET'}); placements/s goal > "
                  f"{GOAL_RATE:,.0f}: {'MET' if rate > GOAL_RATE else 'NOT MET'}")
            for what, times in (("placed", prog.placed_at), ("running", prog.running_at)):
                t = sorted(times.values())
                print(f"  {what:<8} quartiles (s after the first create): " + ", ".join(
                    f"{q}% {common.percentile(t, q):.2f}" for q in (25, 50, 75, 100)))
            print(f"  server peak RSS {peak[0]:.0f} MiB, now {common.rss_mib(pid):.0f} MiB")
            db = stack.etcd.data_dir / "member" / "snap" / "db"
            db_mib = db.stat().st_size / (1 << 20)
            print(f"  etcd db file {db_mib:.1f} MiB "
                  f"(data dir {common.dir_size_mib(stack.etcd.data_dir):.1f} MiB)")
            if args.idle > 0:
                idle_cpu, writes = measure_idle(stack.etcd.url, pid, args.idle)
                period = f"{args.heartbeat:g} s" if args.heartbeat is not None else "the server's default period"
                print(f"  idle {args.idle:g} s after the deploy ({nodes} nodes heartbeating at {period}): "
                      f"server CPU {idle_cpu:.2f}, etcd {writes:.1f} revisions/s (load average {load_average()})")
            if args.profile:
                print(f"server profile ({raw}):")
                print("\n".join(summarise_profile(raw)))
            return Figures(nodes, total, procs, placed, running, rate, peak[0], db_mib, cpu[0], cpu[1], cpu[2],
                           load_average(), len(check.violations))
        finally:
            stop_hollow.set()
            for f in futures:
                f.result(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--apps", type=int, default=40, help="applications of one service each")
    parser.add_argument("--replicas", type=int, default=500, help="replicas per service")
    parser.add_argument("--insecure", action="store_true",
                        help="plaintext server and bearer node credentials (default: TLS and node certificates)")
    parser.add_argument("--agents-per-channel", type=int, default=1,
                        help="--insecure: hollow agents sharing one gRPC channel (default 1: a connection each, "
                             "as real nodes)")
    parser.add_argument("--procs", type=int, default=2,
                        help="processes the hollow nodes are split over (--curve: at least one per 500 nodes)")
    parser.add_argument("--heartbeat", type=float, default=None,
                        help="server --heartbeat-period (default: the server's own)")
    parser.add_argument("--down-grace", type=float, default=None,
                        help="server --down-grace (default: the server's own)")
    parser.add_argument("--gc-young-threshold", type=int, default=None, metavar="N",
                        help="server --gc-young-threshold (default: the server's own; 0: CPython's 700)")
    parser.add_argument("--curve", action="store_true",
                        help="run " + ", ".join(f"{c:,}/{n:,} nodes" for c, n in CURVE) + " and print a table")
    parser.add_argument("--curve-max", type=int, default=CURVE[-1][0],
                        help="--curve: stop after this many containers")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds of quiet after the deploy in which the server's CPU and etcd's "
                             "writes/s are measured (0: skip)")
    parser.add_argument("--profile", action="store_true", help=f"py-spy the server ({PY_SPY})")
    parser.add_argument("--keep", action="store_true", help="keep logs, etcd data and the profile")
    args = parser.parse_args()
    if args.agents_per_channel < 1:
        parser.error(f"--agents-per-channel: must be >= 1, got {args.agents_per_channel}")
    if args.agents_per_channel > 1 and not args.insecure:
        parser.error("--agents-per-channel: only with --insecure (a node certificate is per connection)")
    for name in ("nodes", "apps", "replicas", "procs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be >= 1")
    if args.profile and not PY_SPY.exists():
        parser.error(f"--profile: {PY_SPY} not found (python -m venv /tmp/benchvenv && "
                     "/tmp/benchvenv/bin/pip install py-spy)")
    if not args.curve:
        try:
            fig = run_size(args, args.nodes, args.apps, args.replicas, args.procs)
        except TimeoutError as e:
            print(f"FAILED: {e}")
            return 1
        return 1 if fig.violations else 0
    rows: list[Figures] = []
    failed = False
    for containers, nodes in CURVE:
        if containers > args.curve_max:
            break
        print(f"--- {containers:,} containers on {nodes:,} nodes", flush=True)
        try:
            rows.append(run_size(args, nodes, containers // args.replicas, args.replicas,
                                 max(args.procs, -(-nodes // 500))))
        except TimeoutError as e:
            print(f"FAILED at {containers:,}: {e}")
            failed = True
            break
    print_curve(rows)
    return 1 if failed or any(r.violations for r in rows) else 0


def print_curve(rows: list[Figures]) -> None:
    print(f"\ncurve ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores):")
    print(f"{'containers':>10} {'nodes':>6} {'placed/s':>9} {'RUNNING s':>10} {'ms/ctr':>7} {'peak RSS':>9} "
          f"{'etcd db':>8} {'srv cpu':>8} {'hollow cpu':>11} {'watch cpu':>10} {'violations':>10}  load")
    for r in rows:
        print(f"{r.containers:>10,} {r.nodes:>6,} {r.rate:>9,.0f} {r.running_s:>10.1f} {r.per_container_ms:>7.2f} "
              f"{r.peak_rss:>6.0f} MiB {r.db_mib:>5.0f} MiB {r.server_cpu:>8.2f} "
              f"{r.hollow_cpu:>7.2f} ({r.procs}) {r.watcher_cpu:>10.2f} {r.violations:>10}  {r.load}")


async def _cluster(stack: common.Stack) -> str:
    api = stack.stubs()
    try:
        return str(await common.create_cluster(api, "hollow"))
    finally:
        await api.channel.close()


if __name__ == "__main__":
    sys.exit(main())
