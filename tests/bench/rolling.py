"""Rolling update of 30 replicas on one real Docker host: Docker Swarm vs ccs, in one run (issue 4).

Run (root, local dockerd on /var/run/docker.sock not in a swarm, images from
``deploy/images/build.sh``): ``.venv/bin/python tests/bench/rolling.py [--runs 2] [--keep]``

Both sides roll ``local/webapp:v1`` -> ``local/webapp:v2`` (busybox httpd behind a sh trap, so a
stop takes no grace period), 30 replicas, parallelism 5, start-first, no delay between batches,
a 1 s monitor, and the same health check (GET /health through nc, every 1 s, 2 retries).

(a) Swarm: ``docker service create --replicas 30`` (v1), wait 30/30, then the clock runs from
    ``docker service update --detach --image local/webapp:v2 --update-parallelism 5
    --update-order start-first --update-delay 0s --update-monitor 1s`` until
    ``UpdateStatus.State`` is ``completed`` and 30 running task containers run v2. Unloaded by
    default; with ``--swarm-load`` the same load generator as (b) (``--load-threads``) sends
    its requests to the running tasks' addresses on the default bridge (refreshed every second
    from ``docker ps``), so both sides start their containers beside a comparable request load.
    Not through Swarm's ingress routing mesh: it needs the kernel's IPVS, which this project's
    development machine lacks (no ``/proc/net/ip_vs``: a published port never answers). With no
    router in front, Swarm's failed requests (tasks stopped while asked) are printed but are not
    comparable with ccs's.
    The swarm is always left (``docker swarm leave --force``) in a ``finally``.
(b) ccs: etcd + ccs-server + one ``ccs-agent`` (``--address 127.0.0.1 --router-port <free>``)
    on the same dockerd. Deploy v1, wait until the router serves it, then the clock runs from
    the UpdateApplication call (``--env TAG=v2``, strategy rolling) until the release is
    SUCCEEDED (``client.releases.wait``). A bounded load generator (4 threads, Host:
    bench.local, 127.0.0.1 only) runs through the ccs router for the whole update and counts
    failed requests (non-200 or no answer).
(c) ccs blue-green shift: ``app update --strategy blue-green`` back to v1 (the *new* side is
    v1), wait AWAITING_SHIFT, then ``ShiftTraffic(weight=50)`` (what ``ccs release shift``
    calls) under load. Reported from the moment the call returns: the first answer from the
    new side, and when the share of the new side over the last ``SHARE_WINDOW`` seconds of
    answers is first within 10 points of 50% (0.40..0.60).

(a') with ``--swarm-overlay``: (a) again with the service on an overlay network, the way a Swarm
    service must be attached for other services to find it by name (context, not the goal).

Printed per run: the update times, the ratio ccs/Swarm, failed requests (with their UTC time, to
find them in the agent's log), the shift figures, the release history, and for each update the
engine's own timeline (``_engine_timeline``: create->start, start->first passing health check
(the engine's or the ccs agent's), start->healthy (the engine's) and ready->next create medians,
from ``docker events`` recorded live). ``--load-threads`` sets the load on the
ccs router (default 4). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import math
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.client import AsyncClient
from ccs.models import TERMINAL_PHASES, phase_name
from ccs.v1 import resources_pb2 as pb
from tests.bench import _agent_timeline as agent_timeline
from tests.bench import _common as common
from tests.bench import _engine_timeline as timeline
from tests.bench.deploy import (
    CpuMeter,
    _create_cluster,
    agent_log_summary,
    docker,
    engine_pids,
    remove_all,
    wait_for,
    wait_node_ready,
    wait_removed_by_agent,
)
from tests.integration.e2e.load import Answer, Load

V1, V2 = "local/webapp:v1", "local/webapp:v2"
REPLICAS = 30
PARALLELISM = 5
DOMAIN = "bench.local"
SWARM_SERVICE = "benchweb"
GOAL_VS_SWARM = 0.6
SHARE_WINDOW = 0.5  # seconds of answers a share is measured over (at ~300 answers/s: ~150)
SHARE_TOLERANCE = 0.10
HEALTH_CMD = "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080 | grep -q ' 200 '"

TEMPLATE = f"""\
services:
  web:
    image: local/webapp:${{TAG:-v1}}
    healthcheck:
      test: ["CMD-SHELL", "printf 'GET /health HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc 127.0.0.1 8080 | grep -q ' 200 '"]
      interval: 1s
      timeout: 1s
      retries: 2
    labels:
      aliyun.routing.port_8080: {DOMAIN}
    deploy:
      replicas: {REPLICAS}
      update_config:
        parallelism: {PARALLELISM}
        order: start-first
        monitor: 1s
        failure_action: rollback
"""


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now (the router binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- (a) swarm


def swarm_v2_running() -> int:
    flt = f"label=com.docker.swarm.service.name={SWARM_SERVICE}"
    out = docker("ps", "--filter", flt, "--filter", "status=running", "--format", "{{.Image}}")
    return sum(1 for image in out.split() if image.startswith(V2))


@dataclass
class SwarmResult:
    rolling: float
    failed: list[Answer] = field(default_factory=list)
    requests: int = 0


class TaskLoad(Load):
    """:class:`Load` aimed at the running Swarm tasks by address (see the module docstring):
    the same threads, requests and record; the targets are refreshed every second by a thread
    of its own and replaced whole, so a request thread always indexes a complete tuple."""

    targets: tuple[str, ...] = ()  # a class default: Load's generated __init__ knows no such field

    def start(self) -> Load:
        self._refresh_once()
        threading.Thread(target=self._refresh, daemon=True).start()
        return super().start()

    def _refresh_once(self) -> None:
        ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={SWARM_SERVICE}",
                     "--filter", "status=running", check=False).split()
        if not ids:
            return
        out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", *ids, check=False)
        found = tuple(f"{ip}:8080" for ip in out.split() if ip)
        if found:
            self.targets = found

    def _refresh(self) -> None:
        while not self._stop.wait(1.0):
            self._refresh_once()

    def _run(self, offset: int) -> None:
        end = time.monotonic() + self.max_seconds
        i = offset
        while not self._stop.is_set() and time.monotonic() < end:
            targets = self.targets
            if not targets:
                time.sleep(0.05)
                continue
            addr, port = targets[i % len(targets)].rsplit(":", 1)
            i += 1
            status, body = 0, ""
            conn = http.client.HTTPConnection(addr, int(port), timeout=5)
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                resp = conn.getresponse()
                status, body = resp.status, resp.read().decode(errors="replace").strip()
            except (OSError, http.client.HTTPException) as e:
                body = f"{type(e).__name__}: {e}"
            finally:
                conn.close()
            with self._lock:
                self.answers.append(Answer(time.monotonic(), status, body))
            time.sleep(0.005)


def bench_swarm(overlay: bool = False, load_threads: int = 0) -> SwarmResult:
    """Seconds from ``docker service update`` until the update completed with 30 v2 tasks running.

    ``load_threads`` > 0: that many load threads on the running tasks' addresses during the
    update (:class:`TaskLoad`; 0: no load).

    ``overlay``: attach the service to an overlay network, as a Swarm service must be for other
    services to find it by name (ccs attaches every container to its application's network with the
    service name as alias; plain Swarm tasks sit on the default bridge, which is cheaper to join).
    """
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() not in ("inactive", ""):
        raise RuntimeError("the local dockerd is already in a swarm; leave it first (not touching it)")
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        network = []
        if overlay:
            docker("network", "create", "--driver", "overlay", f"{SWARM_SERVICE}-net")
            network = ["--network", f"{SWARM_SERVICE}-net"]
        docker("service", "create", "--detach", "--name", SWARM_SERVICE, "--replicas", str(REPLICAS), *network,
               "--health-cmd", HEALTH_CMD, "--health-interval", "1s", "--health-timeout", "1s",
               "--health-retries", "2", V1)
        wait_for(lambda: docker("service", "ls", "--filter", f"name={SWARM_SERVICE}",
                                "--format", "{{.Replicas}}").strip() == f"{REPLICAS}/{REPLICAS}",
                 180, "swarm: 30/30 v1 replicas", poll=0.2)

        def done() -> bool:
            state = docker("service", "inspect", "-f", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                           SWARM_SERVICE).strip()  # no UpdateStatus for a moment after the update call
            if state in ("paused", "rollback_started", "rollback_completed", "rollback_paused"):
                raise RuntimeError(f"swarm update ended {state}")
            return state == "completed" and swarm_v2_running() >= REPLICAS

        load = TaskLoad([], DOMAIN, threads=load_threads, max_seconds=600) if load_threads else None
        with timeline.Recorder(f"com.docker.swarm.service.name={SWARM_SERVICE}", PARALLELISM) as spans:
            if load is not None:
                load.start()
            try:
                start = time.perf_counter()
                docker("service", "update", "--detach", "--image", V2,
                       "--update-parallelism", str(PARALLELISM), "--update-order", "start-first",
                       "--update-delay", "0s", "--update-monitor", "1s", SWARM_SERVICE)
                wait_for(done, 300, "swarm: update completed with 30 v2 tasks", poll=0.1)
                elapsed = time.perf_counter() - start
            finally:
                if load is not None:
                    load.stop()
        print(f"  swarm{' (overlay)' if overlay else ''} {spans}", flush=True)
        result = SwarmResult(elapsed)
        if load is not None:
            result.failed, result.requests = load.failures(), len(load.answers)
            print(f"  swarm load: {result.requests} requests ({result.requests / elapsed:.0f} req/s from "
                  f"{load_threads} load threads on the tasks' addresses), failed {len(result.failed)} (no router in front)"
                  + (f": {brief(result.failed)}" if result.failed else ""), flush=True)
        docker("service", "rm", SWARM_SERVICE)
        wait_for(lambda: not docker("ps", "-aq", "--filter",
                                    f"label=com.docker.swarm.service.name={SWARM_SERVICE}").split(),
                 120, "swarm task removal", poll=0.2)
        return result
    finally:
        docker("swarm", "leave", "--force", check=False)


# ---------------------------------------------------------------- (b), (c) ccs


@dataclass
class CcsResult:
    rolling: float
    requests: int
    failed: list[Answer]  # during the rolling update
    notes: list[str] = field(default_factory=list)
    shift_failed: list[Answer] = field(default_factory=list)  # during the blue-green shift
    shift_return: float = math.nan  # the ShiftTraffic call itself
    first_new: float = math.nan  # from the call's return to the first answer of the new side
    share_ok: float = math.nan  # from the call's return to a window share within tolerance of 50%
    share_after: dict[str, float] = field(default_factory=dict)
    shift_error: str = ""
    events: list[str] = field(default_factory=list)  # the rolling update's engine event lines


def first_share_within(answers: list[Answer], t0: float, new: str, target: float) -> float:
    """Seconds after t0 at which the share of `new` over the trailing SHARE_WINDOW of answers is
    first within SHARE_TOLERANCE of `target` (needs >= 20 answers in the window)."""
    ok = sorted((a for a in answers if a.status == 200 and a.at >= t0), key=lambda a: a.at)
    lo = 0
    for hi, a in enumerate(ok):
        while ok[lo].at < a.at - SHARE_WINDOW:
            lo += 1
        window = ok[lo:hi + 1]
        if a.at - t0 >= SHARE_WINDOW and len(window) >= 20:
            share = sum(1 for w in window if w.body == new) / len(window)
            if abs(share - target) <= SHARE_TOLERANCE:
                return a.at - t0
    raise RuntimeError(f"the share of {new} never came within {SHARE_TOLERANCE:.0%} of {target:.0%}")


async def wait_phase(client: AsyncClient, cluster: str, app: str, phase: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        rel = await client.releases.get(cluster, app)
        if rel.status.phase == phase:
            return
        if rel.status.phase in TERMINAL_PHASES:
            raise RuntimeError(f"release {rel.meta.name} ended {phase_name(rel.status.phase)}: "
                               f"{rel.status.message[:300]}")
        if time.monotonic() > end:
            raise TimeoutError(f"release {rel.meta.name} still {phase_name(rel.status.phase)} "
                               f"after {timeout:.0f} s; history: {list(rel.status.history)}")
        await asyncio.sleep(0.1)


def wait_routed(router: str, body: str, timeout: float) -> None:
    """Until every answer through the router over a second is 200 `body`."""
    def routed() -> bool:
        with Load([router], DOMAIN, threads=2, max_seconds=3) as probe:
            answers = probe.window(1.0)
        return bool(answers) and all(a.status == 200 and a.body == body for a in answers)

    wait_for(routed, timeout, f"router {router} to serve {body} for {DOMAIN}", poll=0.5)


async def run_ccs(address: str, token: str, cluster: str, router: str, load_threads: int,
                  ca_pem: str | None, meter: CpuMeter, base: Path) -> CcsResult:
    async with AsyncClient(address, token, ca_pem=ca_pem) as client:
        await client.applications.create(cluster, "web", TEMPLATE)
        await client.applications.wait(cluster, "web", timeout=180)
        await asyncio.to_thread(wait_routed, router, "v1", 60)

        # (b) rolling v1 -> v2 under load
        with Load([router], DOMAIN, threads=load_threads, max_seconds=600) as load:
            await asyncio.sleep(1.0)
            with timeline.Recorder(f"ccs.cluster={cluster}", PARALLELISM) as spans:
                meter.pids.update(haproxy_pids(base))  # the router's master and worker, running by now
                meter.start()
                start = time.perf_counter()
                await client.applications.update(cluster, "web", env={"TAG": "v2"}, strategy="rolling")
                rel = await client.releases.wait(cluster, "web", timeout=300)
                rolling = time.perf_counter() - start
                meter.stop()
            await asyncio.sleep(2.0)  # what the router serves once the release is done
            after = load.since(time.monotonic() - 1.0)
        failed, requests = load.failures(), len(load.answers)
        notes = [f"  ccs {spans}", meter.summary() + " (bench: this process, the load generator's threads)",
                 f"  release {rel.meta.name} history:", *(f"    {h}" for h in rel.status.history)]
        rolled = load.shares(after)
        if rolled != {"v2": 1.0}:
            raise RuntimeError(f"after the rolling update the router serves {rolled}, not only v2")

        result = CcsResult(rolling=rolling, requests=requests, failed=failed, notes=notes, events=spans.lines)
        print(f"(b) ccs rolling update of {REPLICAS}: {rolling:.2f} s; failed requests {len(failed)} of "
              f"{requests} ({requests / (rolling + 3.0):.0f} req/s from {load_threads} load threads)" + (f": {brief(failed)}" if failed else ""), flush=True)
        try:
            await shift_to_half(client, cluster, router, result)
        except (RuntimeError, TimeoutError) as exc:
            result.shift_error = f"{exc} [docker health then: {docker_health(cluster)}]"
        await client.applications.delete(cluster, "web")
        return result


async def shift_to_half(client: AsyncClient, cluster: str, router: str, result: CcsResult) -> None:
    """(c): blue-green back to v1 (the new side), wait AWAITING_SHIFT, shift 50 % under load."""
    await client.applications.update(cluster, "web", env={"TAG": "v1"}, strategy="blue-green")
    await wait_phase(client, cluster, "web", pb.RELEASE_PHASE_AWAITING_SHIFT, 180)
    with Load([router], DOMAIN, threads=4, max_seconds=120) as load:
        await asyncio.sleep(1.0)
        before = load.shares(load.since(time.monotonic() - 0.8))
        if before != {"v2": 1.0}:
            raise RuntimeError(f"before the shift the router serves {before}, not only v2")
        t_call = time.monotonic()
        await client.releases.shift(cluster, "web", 50)
        t_ret = time.monotonic()
        await asyncio.sleep(6.0)
        result.share_after = load.shares(load.since(time.monotonic() - 3.0))
        answers = load.since(t_ret)
    result.shift_failed = load.failures()
    result.shift_return = t_ret - t_call
    firsts = [a.at for a in answers if a.status == 200 and a.body == "v1"]
    if not firsts:
        raise RuntimeError("no answer from the new side within 6 s of the shift")
    result.first_new = min(firsts) - t_ret
    result.share_ok = first_share_within(answers, t_ret, "v1", 0.5)


def docker_health(cluster: str) -> str:
    """Counts of ``docker ps`` health states of the cluster's containers (for a failed phase)."""
    out = docker("ps", "--filter", f"label=ccs.cluster={cluster}", "--format", "{{.Image}} {{.Status}}")
    counts: dict[str, int] = {}
    for line in out.splitlines():
        image, _, status = line.partition(" ")
        health = status[status.find("(") + 1:status.find(")")] if "(" in status else "running"
        counts[f"{image} {health}"] = counts.get(f"{image} {health}", 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def bench_ccs(keep: bool, load_threads: int, agent_log_level: str) -> tuple[CcsResult, int]:
    cluster = f"bench{uuid.uuid4().hex[:6]}"
    port = free_port()
    router = f"127.0.0.1:{port}"
    with common.stack(keep=keep) as stack:
        token = asyncio.run(_create_cluster(stack, cluster))
        log_path = stack.base / "agent.log"
        with open(log_path, "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "nodeagent.main", "--server", stack.address, "--join-token", token,
                 "--name", "bench-node", "--address", "127.0.0.1", "--router-port", str(port),
                 "--state-dir", str(stack.base / "agent"), "--docker-host", "unix:///var/run/docker.sock",
                 "--log-format", "json", "--log-level", agent_log_level,
                 "--metrics-listen", "127.0.0.1:0", "--router-metrics-port", "0"],
                stdout=log, stderr=log, cwd=common.ROOT)
        try:
            asyncio.run(wait_node_ready(stack, cluster, 60))
            start_wall = time.time()
            meter = CpuMeter({"agent": agent.pid, "server": stack.server.proc.pid, "etcd": stack.etcd.proc.pid,
                              **engine_pids(), "bench": os.getpid()})
            result = asyncio.run(run_ccs(stack.address, stack.token, cluster, router, load_threads,
                                         stack.server.ca_pem, meter, stack.base))
            result.notes += agent_log_summary(log_path, start_wall)
            result.notes.append(f"  {agent_timeline.breakdown(result.events, log_path)}")
            result.notes.append(f"  server log: {stack.server.log_path}, agent log: {log_path}")
            wait_removed_by_agent(cluster)
        finally:
            agent.terminate()
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(10)
            remove_all(f"ccs.cluster={cluster}")
            for net in docker("network", "ls", "-q", "--filter", f"name=ccs-{cluster}").split():
                docker("network", "rm", net, check=False)
            common.clear_fabric(cluster)
    return result, port


def haproxy_pids(base: Path) -> dict[str, int]:
    """This benchmark's HAProxy processes (the agent's router, master and worker: the ones whose
    command line names a file under ``base``), by name."""
    out = subprocess.run(["pgrep", "-x", "haproxy"], capture_output=True, text=True).stdout.split()
    ours = []
    for pid in out:
        try:
            if str(base) in Path(f"/proc/{pid}/cmdline").read_text():
                ours.append(int(pid))
        except OSError:
            continue
    return {f"haproxy{i}": pid for i, pid in enumerate(ours)}


def brief(answers: list[Answer]) -> str:
    """The first failures, with their wall-clock time (UTC) to find them in the agent's log."""
    offset = time.time() - time.monotonic()
    return "; ".join(
        f"{time.strftime('%H:%M:%S', time.gmtime(a.at + offset))}.{int((a.at + offset) % 1 * 1000):03d} "
        f"{a.status} {' '.join(a.body.split())[:60]}"
        for a in answers[:8]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat both phases; medians are compared")
    parser.add_argument("--keep", action="store_true", help="keep the ccs server/agent logs")
    parser.add_argument("--only", choices=["swarm", "ccs"], help="run a single phase")
    parser.add_argument("--swarm-overlay", action="store_true",
                        help="also time Swarm with the service on an overlay network (context, not the goal)")
    parser.add_argument("--load-threads", type=int, default=4,
                        help="load generator threads during each rolling update (ccs router, Swarm ingress)")
    parser.add_argument("--swarm-load", action="store_true",
                        help="run the load during Swarm's update too, on its tasks' addresses")
    parser.add_argument("--agent-log-level", default="debug", choices=["debug", "info"],
                        help="debug (default): the agent logs each Docker call, which splits a new "
                             "container's create->start on the agent's side (_agent_timeline)")
    args = parser.parse_args()
    if args.load_threads < 1:
        parser.error(f"--load-threads: must be >= 1, got {args.load_threads}")
    if args.runs < 1:
        parser.error(f"--runs: must be >= 1, got {args.runs}")
    have = set(docker("images", "--format", "{{.Repository}}:{{.Tag}}").split())
    if missing := {V1, V2} - have:
        sys.exit(f"images {sorted(missing)} are missing: run deploy/images/build.sh")

    swarm: list[float] = []
    swarm_runs: list[SwarmResult] = []
    overlay: list[float] = []
    swarm_threads = args.load_threads if args.swarm_load else 0
    ccs: list[CcsResult] = []
    for i in range(args.runs):
        remove_all(f"com.docker.swarm.service.name={SWARM_SERVICE}")
        if args.only in (None, "swarm"):
            swarm_runs.append(bench_swarm(load_threads=swarm_threads))
            swarm.append(swarm_runs[-1].rolling)
            print(f"run {i + 1}: (a) swarm rolling update of {REPLICAS}: {swarm[-1]:.2f} s"
                  + (f"; failed requests {len(swarm_runs[-1].failed)} of {swarm_runs[-1].requests}"
                     if swarm_threads else " (no load)"), flush=True)
            if args.swarm_overlay:
                overlay.append(bench_swarm(overlay=True, load_threads=swarm_threads).rolling)
                print(f"run {i + 1}: (a') swarm on an overlay network: {overlay[-1]:.2f} s", flush=True)
        if args.only in (None, "ccs"):
            res, port = bench_ccs(args.keep, args.load_threads, args.agent_log_level)
            ccs.append(res)
            print(f"run {i + 1}: (b) ccs rolling update of {REPLICAS}: {res.rolling:.2f} s; failed requests "
                  f"{len(res.failed)} of {res.requests} (router 127.0.0.1:{port})"
                  + (f": {brief(res.failed)}" if res.failed else ""))
            if res.shift_error:
                print(f"run {i + 1}: (c) ccs blue-green shift NOT MEASURED: {res.shift_error}")
            else:
                print(f"run {i + 1}: (c) ccs shift 50%: call {res.shift_return:.3f} s; after it returned: "
                      f"first new-side answer {res.first_new:.3f} s, share within 10 points of 50% at "
                      f"{res.share_ok:.2f} s (window {SHARE_WINDOW} s); share 3-6 s after: "
                      f"{res.share_after}; failed requests {len(res.shift_failed)}")
            print("\n".join(res.notes), flush=True)
        if swarm and ccs and len(swarm) == len(ccs):
            print(f"run {i + 1}: ccs / swarm = {ccs[-1].rolling / swarm[-1]:.2f}", flush=True)

    if swarm:
        print(f"swarm: {', '.join(f'{x:.2f}' for x in swarm)} s; median {statistics.median(swarm):.2f} s"
              + (f"; failed requests {sum(len(r.failed) for r in swarm_runs)} of "
                 f"{sum(r.requests for r in swarm_runs)}" if swarm_threads else " (unloaded)"))
    if overlay:
        print(f"swarm on an overlay network: {', '.join(f'{x:.2f}' for x in overlay)} s; "
              f"median {statistics.median(overlay):.2f} s")
    if ccs:
        rolls = [r.rolling for r in ccs]
        print(f"ccs:   {', '.join(f'{x:.2f}' for x in rolls)} s; median {statistics.median(rolls):.2f} s; "
              f"failed requests {sum(len(r.failed) for r in ccs)} of {sum(r.requests for r in ccs)}")
        print(f"shift: first new answer {', '.join(f'{r.first_new:.3f}' for r in ccs)} s; "
              f"share within 10 points {', '.join(f'{r.share_ok:.2f}' for r in ccs)} s")
    if swarm and ccs:
        ratio = statistics.median(r.rolling for r in ccs) / statistics.median(swarm)
        zero = all(not r.failed for r in ccs)
        print(f"ccs / swarm = {ratio:.2f} (goal <= {GOAL_VS_SWARM}): "
              f"{'MET' if ratio <= GOAL_VS_SWARM else 'NOT MET'}; zero failed requests: "
              f"{'MET' if zero else 'NOT MET'}")


if __name__ == "__main__":
    main()
