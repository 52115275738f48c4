"""Node loss to replacement running, with the server's DEFAULT settings (issue 15).

Run (root; takes the 3-host testbed's lock, waiting for it if an e2e session holds it):
``.venv/bin/python tests/bench/node_loss.py [--runs 3] [--replicas 4] [--keep]``

On the 3-host testbed with etcd, ccs-server and one agent per host (the e2e suite's processes,
:mod:`_testbed`), but the server started with none of the e2e suite's short timings: the
heartbeat period, the liveness deadline and ``--down-grace`` are the defaults a user gets. One
application of ``--replicas`` idle busybox containers, spread over the hosts. Each run kills the
host with the most of them (``testbed.py kill``: its agent and its dockerd, as a power cut) and
polls the API every 0.1 s:

- declared down: the node's state is DOWN (seconds from the kill);
- replacement running: the service has all its replicas running again, none on the dead host.

Then the host is booted again (the testbed restarts its agent), and the next run deploys afresh. The machine's
load average is printed beside each run (the box is shared). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.integration.e2e.conftest as e2e
from ccs.v1 import resources_pb2 as pb
from tests.bench import _testbed

#: The e2e suite's flags minus its timings (heartbeat period, down grace): those are the defaults.
FLAGS = ("--leader-ttl", "3", "--shutdown-grace", "2")
setattr(e2e, "SERVER_FLAGS", FLAGS)  # noqa: B010 - Cluster3.start_server reads the module's at call time
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""
POLL = 0.1


def template(replicas: int) -> str:
    return (f"services:\n  idle:\n    image: local/busybox:1\n    command: {IDLE}\n"
            f"    deploy: {{replicas: {replicas}}}\n")


def one_run(c: e2e.Cluster3, app: str, replicas: int) -> tuple[float, float, str, float]:
    """Kill the busiest host; (declared down, replacement running, the host, load at the kill)."""
    c.deploy(app, template(replicas))
    live = c.wait_for(f"{replicas} running", lambda: (x if len(x := c.live(app, "idle")) == replicas else None),
                      timeout=180, interval=0.2)
    assert live is not None
    per_host: dict[str, int] = {}
    for x in live:
        per_host[x.node] = per_host.get(x.node, 0) + 1
    victim = max(sorted(per_host), key=lambda h: per_host[h])
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    c.host(int(victim.removeprefix("host"))).kill()
    killed = time.monotonic() - t0
    down_at = replaced_at = 0.0
    while not (down_at and replaced_at):
        now = time.monotonic() - t0
        if now > 300:
            raise SystemExit(f"no replacement after 300 s (down at {down_at:.1f} s)")
        if not down_at and c.nodes()[victim].status.state == pb.NODE_STATE_DOWN:
            down_at = time.monotonic() - t0
        if not replaced_at:
            running = [x for x in c.live(app, "idle") if x.node != victim]
            if len(running) == replicas:
                replaced_at = time.monotonic() - t0
        time.sleep(POLL)
    print(f"  killed {victim} ({per_host[victim]} of {replicas} containers; the kill took {killed:.1f} s, "
          f"load {load:.1f}): declared down at {down_at:.1f} s, replacement running at {replaced_at:.1f} s",
          flush=True)
    return down_at, replaced_at, victim, load


def revive(c: e2e.Cluster3, host: str, app: str) -> None:
    c.ccs("app", "rm", "-c", c.name, app, check=False)
    c.host(int(host.removeprefix("host"))).start()  # the testbed starts its agent again too
    c.wait_nodes_ready(timeout=120)
    c.wait_for(f"{app} gone", lambda: not c.containers(app), timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the server/agent logs")
    args = parser.parse_args()
    if args.runs < 1 or args.replicas < 1:
        parser.error("--runs and --replicas must be >= 1")
    downs, replaced = [], []
    with _testbed.cluster3(images=("local/busybox:1",), keep=args.keep) as c:
        print(f"server flags: {' '.join(FLAGS)} (heartbeat period and down grace: the defaults)",
              flush=True)
        for i in range(args.runs):
            app = f"loss{i}"
            down_at, replaced_at, victim, _ = one_run(c, app, args.replicas)
            downs.append(down_at)
            replaced.append(replaced_at)
            revive(c, victim, app)
    print(f"median of {args.runs}: declared down at {statistics.median(downs):.1f} s, replacement running at "
          f"{statistics.median(replaced):.1f} s (runs: {', '.join(f'{r:.1f}' for r in replaced)})")


if __name__ == "__main__":
    main()
