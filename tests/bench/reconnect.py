"""Agent reconnect after a control-plane restart: server listens again -> agent session up.

Run: ``.venv/bin/python tests/bench/reconnect.py [--agents 5] [--outage 20] [--rounds 3] [--legacy]``

Starts etcd and one ``ccs-server`` process, and ``--agents`` real ``Agent`` objects on
``FakeRuntime`` in this process (each with its own channel, built the way ``ccs-agent`` builds it).
Each round: wait until every agent has a session; SIGTERM the server; keep it down ``--outage``
seconds (long enough for every backoff to reach its cap); start it again on the same port and
etcd. The clock starts when the port accepts a connection (polled every 5 ms in a thread) and
stops, per agent, when its new session has delivered the COMPLETE set (``Agent.connected``).

``--legacy`` also runs the same rounds with the settings before issue 9 (reconnect backoff capped
at 10 s, grpc-core's default channel reconnect backoff of 1 s growing to 120 s), for the ratio.
Prints per-round figures, then the median and the worst over all agents and rounds.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc.aio
import structlog

from nodeagent.agent import Agent, default_reconnect
from nodeagent.backoff import Backoff
from nodeagent.dispatcher_client import CHANNEL_OPTIONS
from nodeagent.runtime import FakeRuntime
from tests.bench import _common as common
from tests.conftest import ServerProc, free_port, start_etcd, start_server

GOAL_SECONDS = 2.0


def listening_at(port: int, stop: threading.Event) -> float:
    """Poll until ``port`` accepts a connection; the perf_counter time it first did."""
    while not stop.is_set():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return time.perf_counter()
        time.sleep(0.005)
    raise RuntimeError("stopped before the port listened")


async def session_up(agent: Agent, done: dict[str, float]) -> None:
    await agent.connected.wait()
    done[agent.name] = time.perf_counter()


async def run_variant(name: str, legacy: bool, args: argparse.Namespace) -> list[float]:
    base = Path(tempfile.mkdtemp(prefix=f"ccs-bench-reconnect-{name}-"))
    etcd = start_etcd(base)
    port = free_port()
    # --insecure: the agents get their channels handed in (the reconnect options under test),
    # which carry bearer credentials; TLS reconnects are not what this compares.
    flags = ["--heartbeat-period", "1", "--shutdown-grace", "1", "--insecure"]
    server: ServerProc = start_server(base / "state", etcd.url, base / "config.yaml", port=port,
                                      extra=flags)
    address = f"127.0.0.1:{port}"
    figures: list[float] = []
    agents: list[Agent] = []
    channels: list[grpc.aio.Channel] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        s = common.Stack(base, etcd, server).stubs()
        token = await common.create_cluster(s, "reconnect")
        await s.channel.close()
        for i in range(args.agents):
            ch = (grpc.aio.insecure_channel(address) if legacy
                  else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS))
            channels.append(ch)
            backoff = Backoff(base=0.5, cap=10.0) if legacy else default_reconnect()
            agents.append(Agent(address, runtime=FakeRuntime(), name=f"r{i}", join_token=token,
                                channel=ch, reconnect=backoff))
        tasks = [asyncio.create_task(a.run()) for a in agents]
        for rnd in range(1, args.rounds + 1):
            await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 60)
            await asyncio.to_thread(server.stop, signal.SIGTERM)
            await asyncio.sleep(args.outage)
            if any(a.connected.is_set() for a in agents):
                raise RuntimeError("an agent still claims a session while the server is down")
            stop = threading.Event()
            listen = asyncio.create_task(asyncio.to_thread(listening_at, port, stop))
            server = await asyncio.to_thread(start_server, base / "state", etcd.url, base / "config.yaml",
                                             port, flags, False)
            t_listen = await listen
            done: dict[str, float] = {}
            await asyncio.wait_for(asyncio.gather(*(session_up(a, done) for a in agents)), 120)
            took = sorted(t - t_listen for t in done.values())
            figures += took
            print(f"{name} round {rnd}: outage {args.outage:.0f} s; listen -> session up: "
                  f"first {took[0]:.2f} s, median {statistics.median(took):.2f} s, "
                  f"last {took[-1]:.2f} s ({len(took)} agents)", flush=True)
    finally:
        for a in agents:
            await a.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in channels:
            await ch.close()
        server.stop()
        etcd.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"(kept logs and data in {base})")
    return figures


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=5)
    p.add_argument("--outage", type=float, default=20.0, help="seconds the server stays down")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--legacy", action="store_true", help="also measure the settings before issue 9")
    p.add_argument("--keep", action="store_true", help="keep logs and data")
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(f"{args.agents} agents (Agent + FakeRuntime), server SIGTERM, {args.outage:.0f} s down, "
          f"{args.rounds} rounds; 2 cores", flush=True)
    results = {"current": await run_variant("current", False, args)}
    if args.legacy:
        results["legacy"] = await run_variant("legacy", True, args)
    for name, figs in results.items():
        figs.sort()
        print(f"{name}: listen -> session up over {len(figs)} reconnects: median "
              f"{statistics.median(figs):.2f} s, p90 {common.percentile(figs, 90):.2f} s, "
              f"worst {figs[-1]:.2f} s")
    worst = max(results["current"])
    verdict = "MET" if worst <= GOAL_SECONDS + 0.5 else "NOT MET"
    print(f"goal: every agent back within about {GOAL_SECONDS:.0f} s -> worst {worst:.2f} s: {verdict}")
    if "legacy" in results:
        ratio = statistics.median(results["current"]) / statistics.median(results["legacy"])
        print(f"current / legacy (medians) = {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
