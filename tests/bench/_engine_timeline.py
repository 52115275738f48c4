"""Where a rolling update's time goes, read from the engine's own event log (``docker events``).

For the containers created during an update it reports four medians:

- create -> start: the engine's ``start`` event comes when the start call returns, so this is the
  start itself (network attach, port publishing, runc) plus whatever the orchestrator did between
  its create and start calls;
- start -> first pass: the first run of the health check that passed (an ``exec_die`` with exit
  code 0), whoever ran it: the engine's own check (one ``interval`` after the start) or the ccs
  agent's first check right after the start (nodeagent.first_check). That is when the container is
  known ready;
- start -> healthy: the engine's own ``health_status: healthy`` (its first check, one interval
  after the start);
- ready -> next create: how long the orchestrator takes to replace the next slot once a new
  container is ready (the earlier of its first pass and the engine's healthy; its reaction time),
  counted for every create after the first window.

The same numbers for Swarm and ccs, from the same daemon, show whether a gap is the
orchestrator's or the engine's.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass

FORMAT = '{{.TimeNano}}|{{.Action}}|{{.Actor.ID}}|{{index .Actor.Attributes "exitCode"}}|{{.Actor.Attributes.name}}'


@dataclass(frozen=True)
class Timeline:
    created: int
    create_to_start: float
    start_to_first_pass: float
    start_to_healthy: float
    ready_to_next_create: float

    def __str__(self) -> str:
        return (f"engine events, medians over {self.created} new containers: create->start "
                f"{self.create_to_start:.2f} s, start->first passing check {self.start_to_first_pass:.2f} s, "
                f"start->healthy (engine) {self.start_to_healthy:.2f} s, "
                f"ready->next create {self.ready_to_next_create:.2f} s")


def parse(lines: list[str], window: int) -> Timeline | None:
    """``lines``: ``<timeNano>|<action>|<id>|<exitCode>`` (FORMAT) in time order; ``window``: the
    parallelism."""
    created: dict[str, float] = {}
    started: dict[str, float] = {}
    healthy: dict[str, float] = {}
    passed: dict[str, float] = {}
    for line in lines:
        parts = line.split("|")
        if len(parts) < 4:
            continue
        t, action, cid, exit_code = int(parts[0]) / 1e9, parts[1], parts[2], parts[3].strip()
        if action == "create":
            created.setdefault(cid, t)
        elif action == "start":
            started.setdefault(cid, t)
        elif action == "health_status: healthy":
            healthy.setdefault(cid, t)
        elif action == "exec_die" and exit_code == "0" and cid in started:
            passed.setdefault(cid, t)
    ids = sorted(created, key=created.__getitem__)
    starts = [started[c] - created[c] for c in ids if c in started]
    passes = [passed[c] - started[c] for c in ids if c in passed and c in started]
    checks = [healthy[c] - started[c] for c in ids if c in healthy and c in started]
    ready_times = sorted(min(t for t in (passed.get(c), healthy.get(c)) if t is not None)
                         for c in ids if c in passed or c in healthy)
    reactions = []
    for c in ids[window:]:
        before = [r for r in ready_times if r < created[c]]
        if before:
            reactions.append(created[c] - before[-1])
    if not starts or not checks or not reactions:
        return None
    return Timeline(len(ids), statistics.median(starts), statistics.median(passes) if passes else float("nan"),
                    statistics.median(checks), statistics.median(reactions))


class Recorder:
    """Records the engine events of containers labelled ``label`` while the ``with`` block runs.

    It follows ``docker events`` live: the engine keeps only its last ~1,000 events for
    ``--since`` queries, and health checks alone produce three exec events per container and
    second, so a query after the fact would have lost the beginning of the update.
    """

    def __init__(self, label: str, window: int) -> None:
        self.label, self.window = label, window
        self.timeline: Timeline | None = None
        self.lines: list[str] = []  # the raw FORMAT lines (``_agent_timeline`` reads them too)
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Recorder:
        self._proc = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", f"label={self.label}",
             "--filter", "event=create", "--filter", "event=start", "--filter", "event=health_status",
             "--filter", "event=exec_die", "--format", FORMAT],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        time.sleep(0.2)  # let the last events of the phase arrive
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        self.lines = out.splitlines()
        self.timeline = parse(self.lines, self.window)

    def __str__(self) -> str:
        return str(self.timeline) if self.timeline is not None else "engine events: none recorded"
