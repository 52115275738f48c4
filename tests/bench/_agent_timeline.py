"""Where a new container's create -> start goes on the agent's side (issue 15), beside the engine's events.

The engine's ``create`` event comes when its create call is done and its ``start`` event when the
start call is; between them lie the agent's own work (what it does after the create returns and
before it asks for the start), the wait for a worker of its Docker thread pool, and the engine's
start itself. An agent run with ``--log-level debug`` logs every Docker call it makes
(``docker call``: when it was submitted to the pool, when a worker began and ended it, and when
the waiting coroutine resumed, all wall-clock seconds), which splits that span:

- created -> start submitted: the agent between its create and its start (the create call's
  return to the loop, and whatever it runs before the start);
- start queued: submitted -> a pool worker began the call;
- start call: began -> ended (the HTTP round trip and the engine's start);
- the create call itself (began -> ended), for scale.

Medians over the containers the engine created while recording (engine event lines from
``_engine_timeline.Recorder``, FORMAT with the container name). Not collected by pytest.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Call:
    doing: str
    submitted: float
    began: float
    ended: float
    resumed: float


def calls(log_path: Path) -> list[Call]:
    """The agent's ``docker call`` debug records (none unless it ran with ``--log-level debug``)."""
    out = []
    for line in log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") != "docker call":
            continue
        out.append(Call(str(rec["doing"]), float(rec["submitted"]), float(rec["began"]), float(rec["ended"]),
                        float(rec["resumed"])))
    return out


def breakdown(event_lines: list[str], log_path: Path) -> str:
    """One line of medians (see the module docstring), or why there is none."""
    created: dict[str, tuple[float, str]] = {}  # docker id -> (create event time, name)
    started: dict[str, float] = {}
    for line in event_lines:
        parts = line.split("|")
        if len(parts) < 5:
            continue
        t, action, cid, name = int(parts[0]) / 1e9, parts[1], parts[2], parts[4].strip()
        if action == "create":
            created.setdefault(cid, (t, name))
        elif action == "start":
            started.setdefault(cid, t)
    by_doing: dict[str, Call] = {}
    for c in calls(log_path):
        by_doing.setdefault(c.doing, c)
    if not by_doing:
        return "agent docker calls: none logged (run the agent with --log-level debug)"
    gap, queued, call, create_call, after = [], [], [], [], []
    for cid, (t_create, name) in created.items():
        start = by_doing.get(f"start {cid[:12]}")
        create = by_doing.get(f"create {name}")
        if start is None or cid not in started:
            continue
        gap.append(start.submitted - (create.ended if create is not None else t_create))
        queued.append(start.began - start.submitted)
        call.append(start.ended - start.began)
        after.append(start.resumed - start.ended)
        if create is not None:
            create_call.append(create.ended - create.began)
    if not call:
        return "agent docker calls: no start call matched an engine create event"

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f}" if xs else "n/a"

    return (f"agent side, medians over {len(call)} new containers: create call {med(create_call)} s; "
            f"created -> start submitted {med(gap)} s; start queued for a pool worker {med(queued)} s "
            f"(max {max(queued):.3f}); start call {med(call)} s; start call end -> loop resumed {med(after)} s")
