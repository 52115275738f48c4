"""Partitions (issue 12, "Control plane availability") on the 3-host testbed: host2's link is cut
past the down grace and restored.

One application, two services, both on host2 at first:

- ``keep`` says ``x-ccs.on_node_loss: wait``: its slot is never rescheduled away from the
  unreachable node. Every host's engine events, from before the cut until after the return,
  show no ``keep`` container created, started or stopped anywhere (at most once), and the one on
  host2 is the same engine container throughout (kept running while cut off).
- ``move`` has the default policy: after the grace it is replaced on host3, while its old copy
  keeps running on host2 (the agent cannot tell a dead control plane from a cut link). Its stop
  takes a while (it ignores SIGTERM; ``stop_grace_period: 4s``).

While host2 is cut off, a second application ``later`` is deployed whose only eligible node is
host2: it waits (the node is DOWN) and is placed on host2 the moment it is READY again, so on
return the agent has both a stale container to stop and a new one to start. What must happen,
read from host2's agent log and its engine's events (no timing is asserted): the complete set
after the return names ``move``'s old container as fenced (fence epoch), the agent logs that it
stops it before starting anything, the engine destroys it before it creates ``later``'s container,
and ``move`` then runs once, on host3.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb

from .conftest import TESTBED_STATE, Cluster3
from .helpers import IDLE

pytestmark = [pytest.mark.slow, pytest.mark.docker]

LABEL, LATE = "fence", "late"
STUBBORN = """["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]"""
TEMPLATE = f"""
services:
  keep:
    image: local/busybox:1
    command: {IDLE}
    x-ccs: {{on_node_loss: wait}}
    deploy:
      placement: {{constraints: ["node.labels.{LABEL}==yes"]}}
  move:
    image: local/busybox:1
    command: {STUBBORN}
    stop_grace_period: 4s
    deploy:
      placement: {{constraints: ["node.labels.{LABEL}==yes"]}}
"""
LATER = f"""
services:
  later:
    image: local/busybox:1
    command: {IDLE}
    deploy:
      placement: {{constraints: ["node.labels.{LATE}==yes"]}}
"""


@pytest.fixture
def labelled(cluster3: Cluster3) -> Iterator[Cluster3]:
    c = cluster3
    c.ccs("node", "label", "-c", c.name, "host2", f"{LABEL}=yes", f"{LATE}=yes")
    yield c
    for host in c.host_names:
        c.ccs("node", "label", "-c", c.name, host, f"{LABEL}=", f"{LATE}=", check=False)


@contextlib.contextmanager
def recording_events(c: Cluster3, app: str) -> Iterator[dict[str, list[tuple[str, str, str]]]]:
    """Each host's engine events for ``app`` as (service, action, id), streamed (``docker
    events`` without ``--until``) from entry to exit: the complete record, which a polled sample
    could miss between polls and the engine's in-memory event buffer (256 events) could lose. A
    stream that died before the end fails the test (an empty record must mean no events)."""
    since = f"{time.time():.3f}"  # replayed from the engine if the subscription starts later
    procs = {
        host: subprocess.Popen(
            ["docker", "events", "--since", since, "--filter", "type=container", "--filter", f"label=ccs.cluster={c.name}",
             "--filter", f"label=ccs.app={app}", "--format", "{{json .}}"],
            env=c.host(int(host.removeprefix("host"))).env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        for host in c.host_names
    }
    seen: dict[str, list[tuple[str, str, str]]] = {}
    alive: dict[str, int | None] = {}
    try:
        yield seen
    finally:
        for host, proc in procs.items():
            alive[host] = proc.poll()
            proc.terminate()
            out, err = proc.communicate(timeout=10)
            seen[host] = [(e["Actor"]["Attributes"].get("ccs.service", ""), e["Action"], e["id"])
                          for e in map(json.loads, out.splitlines())]
            assert alive[host] is None and not err.strip(), (host, alive[host], err)


def live_on(c: Cluster3, app: str, service: str, node: str) -> pb.Container:
    def found() -> pb.Container | None:
        live = [x for x in c.live(app, service) if x.node == node]
        return live[0] if live else None

    got = c.wait_for(f"{app}/{service} running on {node}", found, timeout=120)
    assert got is not None
    return got


def engine_events(c: Cluster3, host: str, since: float) -> list[dict[str, Any]]:
    h = c.host(int(host.removeprefix("host")))
    out = h.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter",
                   "type=container", "--filter", f"label=ccs.cluster={c.name}", "--format", "{{json .}}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def agent_log_since(host: str, offset: int) -> list[dict[str, Any]]:
    path = TESTBED_STATE / "hosts" / host / "agent.log"
    with path.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_a_partitioned_host_returns_fenced_and_a_waiting_slot_never_runs_twice(
    labelled: Cluster3, app_name: str
) -> None:
    c = labelled
    later_app = app_name + "-later"
    try:
        check_partition(c, app_name, later_app)
    finally:
        c.ccs("app", "rm", "-c", c.name, later_app, check=False)


def check_partition(c: Cluster3, app_name: str, later_app: str) -> None:
    c.deploy(app_name, TEMPLATE)
    keep = live_on(c, app_name, "keep", "host2")
    old = live_on(c, app_name, "move", "host2")
    keep_engine = c.docker_containers("host2", app_name, "keep")
    assert [x["Id"] for x in keep_engine] == [keep.status.docker_id]
    started = keep_engine[0]["State"]["StartedAt"]
    c.ccs("node", "label", "-c", c.name, "host3", f"{LABEL}=yes")  # somewhere for `move` to go

    with recording_events(c, app_name) as events:
        new, offset, healed_at = cut_and_heal(c, app_name, later_app, keep, old)

    # `wait`: never twice, and the same engine container on host2 the whole time: no engine
    # created, started or stopped a `keep` container from before the cut until now. The same
    # record does show `move`'s replacement created and started on host3 (it sees what happens).
    lifecycle = {"create", "start", "kill", "die", "stop", "destroy"}
    for host, record in events.items():
        assert [e for e in record if e[0] == "keep" and e[1] in lifecycle] == [], (host, record)
    assert {"create", "start"} <= {a for s, a, _ in events["host3"] if s == "move"}, events["host3"]
    assert [x["Id"] for x in c.docker_containers("host2", app_name, "keep")] == [keep.status.docker_id]
    assert c.docker_containers("host2", app_name, "keep")[0]["State"]["StartedAt"] == started
    check_fencing_order(c, app_name, old, new, offset, healed_at)


def cut_and_heal(c: Cluster3, app_name: str, later_app: str, keep: pb.Container,
                 old: pb.Container) -> tuple[pb.Container, int, float]:
    """Cut host2 off past the down grace, deploy `later` meanwhile, heal; returns `later`'s new
    container on host2 and where host2's agent log and engine events start after the heal."""
    log_path = TESTBED_STATE / "hosts" / "host2" / "agent.log"
    c.host(2).partition()
    try:
        moved = live_on(c, app_name, "move", "host3")  # the down grace has passed
        assert c.nodes()["host2"].status.state == pb.NODE_STATE_DOWN
        # Cut off, host2 keeps both running: the agent cannot tell an outage from a cut.
        assert {x["Id"] for x in c.docker_containers("host2", app_name)} == {
            keep.status.docker_id, old.status.docker_id}
        [record] = [x for x in c.containers(app_name, "move") if x.meta.id == old.meta.id]
        assert record.desired_state == pb.DESIRED_STATE_REMOVED and record.fence_epoch > 0
        assert c.nodes()["host2"].fence_epoch == record.fence_epoch
        c.deploy(later_app, LATER)  # only host2 may take it: it waits for the return
        offset = log_path.stat().st_size
        healed_at = time.time()
    finally:
        c.host(2).heal()
    c.wait_nodes_ready(timeout=90)
    new = live_on(c, later_app, "later", "host2")
    c.wait_for("the fenced container gone from host2",
               lambda: not c.docker_containers("host2", app_name, "move", running_only=False), timeout=60)
    assert [x.meta.id for x in c.live(app_name, "move")] == [moved.meta.id]  # once, on host3

    return new, offset, healed_at


def check_fencing_order(c: Cluster3, app_name: str, old: pb.Container, new: pb.Container,
                        offset: int, healed_at: float) -> None:
    # Default: the stale copy is stopped before anything starts on the returning host.
    events = engine_events(c, "host2", healed_at)
    order = [(e["Action"], e["id"]) for e in events if e["Action"] in ("kill", "die", "destroy", "create", "start")]
    destroyed = order.index(("destroy", old.status.docker_id))
    created = order.index(("create", new.status.docker_id))
    assert destroyed < created, order
    log = agent_log_since("host2", offset)
    events_of = [(entry.get("event", ""), entry) for entry in log]
    fencing = next(i for i, (e, entry) in enumerate(events_of)
                   if e.startswith("fencing:") and old.meta.id in entry.get("containers", []))
    # The first complete set after the return carries the fence epoch; the agent fences on it,
    # before it creates anything.
    complete = next(i for i, (e, _) in enumerate(events_of) if e == "complete set")
    made = next(i for i, (e, entry) in enumerate(events_of) if e == "created" and entry.get("container_id") == new.meta.id)
    assert complete < fencing < made, [e for e, _ in events_of]
