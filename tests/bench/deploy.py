"""Deploy 30 containers on one real Docker host: docker run, Docker Swarm, and ccs, in one run.

Run (root, local dockerd on /var/run/docker.sock, image local/busybox:1 present):
``.venv/bin/python tests/bench/deploy.py [--replicas 30] [--runs 1] [--keep]``

(a) ``docker run -d`` of ``local/busybox:1 sleep 3600``, all at once: time until every CLI call
    has returned (``run -d`` returns once the container started) and ``docker ps`` lists them all;
(a') the same on one user-defined bridge network (``docker network create``, ``--network``): what
    the engine charges for the per-application network that ccs gives every container (isolation
    and names need it); the floor for ccs, printed beside the goal's peer (a);
(b) Swarm: ``docker swarm init``, ``docker service create --replicas N``, time until
    ``docker ps`` lists N running task containers; then ``docker swarm leave --force``;
(c) ccs: etcd + ccs-server + one ``ccs-agent`` process on the local dockerd; time from the
    CreateApplication call (one service, N replicas) until the Watch stream has delivered N
    containers reported RUNNING. Also printed: when the containers were placed, the first and
    last running report, and the agent's own log timestamps, to show where the time goes.

Each phase cleans up after itself (containers removed, swarm left, app deleted, agent and
server stopped). Prints seconds and the ratios ccs/(a) and ccs/(b). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.bench import _common as common

IMAGE = "local/busybox:1"
LABEL = "ccs-bench"
GOAL_VS_RUN = 1.1  # issue 15
GOAL_VS_SWARM = 0.6


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def running_ids(label_filter: str) -> list[str]:
    return docker("ps", "-q", "--filter", f"label={label_filter}", "--filter", "status=running").split()


def remove_all(label_filter: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"label={label_filter}").split()
    if ids:
        docker("rm", "-f", *ids)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(poll)


def wait_removed_by_agent(cluster: str, timeout: float = 120, network_grace: float = 15) -> None:
    """Until the agent has removed every container of ``cluster`` itself, and then (for at most
    ``network_grace`` seconds more) its application network.

    Why not only "none running": the agent is then still removing them, and a ``docker rm -f``
    of the same containers at that moment (the clean-up in ``finally``) races it inside the
    engine. Once here (2026-11-30, Docker 20.10.24) a run left its application's network with
    a stale endpoint count (``docker network rm``: "has active endpoints", with no container
    on it; endpoint_count 1 and no endpoint in the engine's store); that race is the likely
    cause, not a proven one. Such a network keeps its subnet taken on the shared dockerd until
    the daemon restarts (libnetwork recounts at start), and every later cluster whose first
    block overlaps it fails with "Pool overlaps".

    A network the agent has not removed once its containers are gone is reported, not waited
    for: after ``rolling.py``'s blue-green phase the agent was seen to keep it (its "removing
    app resources" never came); the clean-up in ``finally`` removes it, with no container left
    to race.
    """
    def containers() -> str:
        states = docker("ps", "-a", "--filter", f"label=ccs.cluster={cluster}", "--format", "{{.State}}").split()
        return str(dict(Counter(states))) if states else ""

    def networks() -> list[str]:
        return docker("network", "ls", "--filter", f"name=ccs-{cluster}_", "--format", "{{.Name}}").split()

    try:
        wait_for(lambda: not containers(), timeout, "the agent's removal of the ccs app's containers", poll=0.2)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; left: {containers()}") from None
    try:
        wait_for(lambda: not networks(), network_grace, "the agent's removal of the app network", poll=0.2)
    except TimeoutError:
        print(f"  note: the agent kept {networks()} {network_grace:.0f} s after its last container was "
              "removed; removed by the benchmark", flush=True)


# ---------------------------------------------------------------- (a) docker run


def bench_docker_run(n: int, user_network: bool = False) -> float:
    """(a), or (a') with ``user_network``: the network is made before the clock starts, as ccs's
    agent makes it once per application before its first container."""
    tag = f"{LABEL}=run-{uuid.uuid4().hex[:6]}"
    remove_all(LABEL)
    net = f"bench-net-{uuid.uuid4().hex[:6]}"
    extra = ["--network", net] if user_network else []
    if user_network:
        docker("network", "create", net)
    try:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(["docker", "run", "-d", "--label", tag, *extra, IMAGE, "sleep", "3600"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(n)
        ]
        failed = [p.stderr.read().decode() if p.stderr else "" for p in procs if p.wait() != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} docker run calls failed: {failed[0]}")
        wait_for(lambda: len(running_ids(tag)) >= n, 60, "docker run")
        elapsed = time.perf_counter() - start
    finally:
        remove_all(LABEL)
        if user_network:
            docker("network", "rm", net, check=False)
    return elapsed


# ---------------------------------------------------------------- (b) swarm


def bench_swarm(n: int) -> float:
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() not in ("inactive", ""):
        raise RuntimeError("the local dockerd is already in a swarm; leave it first (not touching it)")
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        flt = f"com.docker.swarm.service.name={name}"
        start = time.perf_counter()
        docker("service", "create", "--detach", "--name", name, "--replicas", str(n), IMAGE, "sleep", "3600")
        wait_for(lambda: len(running_ids(flt)) >= n, 120, "swarm service", poll=0.1)
        elapsed = time.perf_counter() - start
        docker("service", "rm", name)
        wait_for(lambda: not docker("ps", "-aq", "--filter", f"label={flt}").split(), 120,
                 "swarm task removal", poll=0.2)
        return elapsed
    finally:
        docker("swarm", "leave", "--force", check=False)


# ---------------------------------------------------------------- (c) ccs


async def wait_node_ready(stack: common.Stack, cluster: str, timeout: float) -> None:
    api = stack.stubs()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            resp = await api.nodes.ListNodes(api_pb2.ListNodesRequest(cluster=cluster), metadata=api.metadata)
            if any(n.status.state == pb.NODE_STATE_READY for n in resp.nodes):
                return
            await asyncio.sleep(0.1)
    finally:
        await api.channel.close()
    raise TimeoutError(f"no node of {cluster} became READY within {timeout:.0f} s")


async def deploy_and_wait(stack: common.Stack, cluster: str, n: int) -> tuple[float, common.Progress]:
    api = stack.stubs()
    try:
        rev = await common.current_revision(api, cluster)
        prog = common.Progress({}, {})
        watch = asyncio.create_task(
            common.watch_until_running(api, cluster, n, rev + 1, timeout=180, progress=prog))
        await asyncio.sleep(0.2)  # let the watch stream open (it replays from rev+1 anyway)
        start = time.perf_counter()
        await api.apps.CreateApplication(
            api_pb2.CreateApplicationRequest(cluster=cluster, name="web",
                                             template=common.service_template(1, n, IMAGE)),
            metadata=api.metadata)
        await watch
        elapsed = max(prog.running_at.values()) - start
        rel = common.Progress({k: t - start for k, t in prog.placed_at.items()},
                              {k: t - start for k, t in prog.running_at.items()})
        await api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=cluster, name="web"),
                                         metadata=api.metadata)
        return elapsed, rel
    finally:
        await api.channel.close()


def engine_starts(label_filter: str, start_wall: float) -> str:
    """When the engine itself emitted 'start' for these containers (from ``docker events``)."""
    out = docker("events", "--since", f"{start_wall - 1:.3f}", "--until", f"{time.time():.3f}",
                 "--filter", f"label={label_filter}", "--filter", "event=start", "--format", "{{.TimeNano}}")
    times = sorted(int(x) / 1e9 - start_wall for x in out.split())
    return f"  engine 'start' events: {len(times)}x at {common.span(times)} s"


def agent_log_summary(log_path: Path, start_wall: float) -> list[str]:
    """Per-event counts and first/last times (seconds after the deploy call) from the agent's JSON log."""
    firsts: dict[str, list[float]] = {}
    for line in log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        ts = rec.get("timestamp")
        if not ts:
            continue
        from datetime import datetime

        t = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() - start_wall
        if t >= -0.5:
            firsts.setdefault(str(rec.get("event")), []).append(t)
    return [f"  agent log {ev!r}: {len(ts)}x at {min(ts):.2f}..{max(ts):.2f} s"
            for ev, ts in sorted(firsts.items(), key=lambda kv: min(kv[1]))]


def bench_ccs(n: int, keep: bool, concurrency: int | None) -> tuple[float, list[str]]:
    cluster = f"bench{uuid.uuid4().hex[:6]}"
    with common.stack(keep=keep) as stack:
        token = asyncio.run(_create_cluster(stack, cluster))
        log_path = stack.base / "agent.log"
        with open(log_path, "wb") as log:
            state = str(stack.base / "agent")
            argv = (
                [sys.executable, "-m", "nodeagent.main", "--server", stack.address, "--join-token", token,
                 "--name", "bench-node", "--address", "127.0.0.1", "--state-dir", state,
                 "--docker-host", "unix:///var/run/docker.sock", "--log-format", "json",
                 "--metrics-listen", "127.0.0.1:0", "--router-metrics-port", "0"]
                if concurrency is None
                else [sys.executable, __file__, "tuned-agent", stack.address, token, state, str(concurrency)]
            )
            agent = subprocess.Popen(argv, stdout=log, stderr=log, cwd=common.ROOT)
        try:
            asyncio.run(wait_node_ready(stack, cluster, 60))
            start_wall = time.time()
            elapsed, prog = asyncio.run(deploy_and_wait(stack, cluster, n))
            placed = sorted(prog.placed_at.values())
            running = sorted(prog.running_at.values())
            notes = [
                f"  placed (watch): {common.span(placed)} s after the deploy call",
                f"  running reports (watch): {common.span(running)} s; median {statistics.median(running):.2f}",
                *agent_log_summary(log_path, start_wall),
                engine_starts(f"ccs.cluster={cluster}", start_wall),
            ]
            wait_removed_by_agent(cluster)
        finally:
            agent.terminate()
            agent.wait(30)
            remove_all(f"ccs.cluster={cluster}")
            for net in docker("network", "ls", "-q", "--filter", f"name=ccs-{cluster}").split():
                docker("network", "rm", net, check=False)
            common.clear_fabric(cluster)
    return elapsed, notes


def run_tuned_agent(argv: list[str]) -> None:
    """``deploy.py tuned-agent SERVER TOKEN STATE_DIR N``: a ccs agent whose executor and Docker
    thread pool both allow N concurrent operations (ccs-agent has no flag for it; default 8).

    Used by ``--agent-concurrency`` to test whether agent parallelism bounds the deploy time.
    """
    import docker as docker_sdk

    from ccs import log_setup
    from nodeagent.agent import Agent
    from nodeagent.main import _serve
    from nodeagent.runtime.docker_engine import DockerRuntime

    server, token, state_dir, n = argv[0], argv[1], Path(argv[2]), int(argv[3])
    log_setup.setup("info", "json")
    runtime = DockerRuntime(docker_sdk.DockerClient(base_url="unix:///var/run/docker.sock"), max_workers=n)
    agent = Agent(server, runtime=runtime, name="bench-node", join_token=token, address="127.0.0.1",
                  state_dir=state_dir, concurrency=n)
    try:
        asyncio.run(_serve(agent))
    finally:
        asyncio.run(runtime.aclose())


async def _create_cluster(stack: common.Stack, cluster: str) -> str:
    api = stack.stubs()
    try:
        return str(await common.create_cluster(api, cluster, common.free_pod_cidr()))
    finally:
        await api.channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=30)
    parser.add_argument("--runs", type=int, default=1, help="repeat each phase; the median is compared")
    parser.add_argument("--keep", action="store_true", help="keep the ccs server/agent logs")
    parser.add_argument("--only", choices=["run", "run-net", "swarm", "ccs"], help="run a single phase")
    parser.add_argument("--agent-concurrency", type=int, default=None,
                        help="run the agent with this executor/Docker-thread concurrency (default: "
                        "the stock ccs-agent, 8)")
    args = parser.parse_args()
    if args.agent_concurrency is not None and args.agent_concurrency < 1:
        parser.error("--agent-concurrency: must be >= 1")
    if args.replicas < 1 or args.runs < 1:
        parser.error("--replicas and --runs must be >= 1")
    if IMAGE not in docker("images", "--format", "{{.Repository}}:{{.Tag}}").split():
        sys.exit(f"image {IMAGE} is missing: build it as ENGINEERING.md section 3 says")

    results: dict[str, list[float]] = {"run": [], "run-net": [], "swarm": [], "ccs": []}
    for i in range(args.runs):
        if args.only in (None, "run"):
            results["run"].append(bench_docker_run(args.replicas))
            print(f"run {i + 1}: (a) {args.replicas} x docker run -d at once: {results['run'][-1]:.2f} s")
        if args.only in (None, "run-net"):
            results["run-net"].append(bench_docker_run(args.replicas, user_network=True))
            print(f"run {i + 1}: (a') {args.replicas} x docker run -d --network at once: "
                  f"{results['run-net'][-1]:.2f} s")
        if args.only in (None, "swarm"):
            results["swarm"].append(bench_swarm(args.replicas))
            print(f"run {i + 1}: (b) swarm service --replicas {args.replicas}: {results['swarm'][-1]:.2f} s")
        if args.only in (None, "ccs"):
            elapsed, notes = bench_ccs(args.replicas, args.keep, args.agent_concurrency)
            results["ccs"].append(elapsed)
            print(f"run {i + 1}: (c) ccs deploy of {args.replicas} replicas: {elapsed:.2f} s")
            print("\n".join(notes))

    med = {k: statistics.median(v) for k, v in results.items() if v}
    print("medians: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
    if "ccs" in med and "run" in med:
        r = med["ccs"] / med["run"]
        print(f"ccs / docker run = {r:.2f} (goal <= {GOAL_VS_RUN}): {'MET' if r <= GOAL_VS_RUN else 'NOT MET'}")
    if "ccs" in med and "run-net" in med:
        print(f"ccs / docker run on a user network = {med['ccs'] / med['run-net']:.2f} (the floor: "
              f"docker run --network / docker run = {med['run-net'] / med['run']:.2f})"
              if "run" in med else f"ccs / docker run on a user network = {med['ccs'] / med['run-net']:.2f}")
    if "ccs" in med and "swarm" in med:
        r = med["ccs"] / med["swarm"]
        print(f"ccs / swarm      = {r:.2f} (goal <= {GOAL_VS_SWARM}): {'MET' if r <= GOAL_VS_SWARM else 'NOT MET'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["tuned-agent"]:
        run_tuned_agent(sys.argv[2:])
    else:
        main()
