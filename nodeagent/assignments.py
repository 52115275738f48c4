"""The agent's copy of its node's assignments, chained by version (swarmkit's model). Pure.

The server sends a COMPLETE set, then INCREMENTAL messages whose `base_version` must equal
the version the agent holds. Anything else means a message was lost or reordered: the agent
must not guess, it drops the stream and reconnects, which yields a COMPLETE set again.
`decide()` is that rule alone; `AssignmentBook.apply()` applies a message and returns the
container ids whose desired state changed, so the executor re-plans only those.

A container assigned with action REMOVE (or desired_state REMOVED), or missing from a new
COMPLETE set although the book knew it, moves to `removing`: the agent still needs its
identity to report REMOVED once it is gone, after which `forget()` drops it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2, resources_pb2

COMPLETE = agent_pb2.SessionMessage.TYPE_COMPLETE
INCREMENTAL = agent_pb2.SessionMessage.TYPE_INCREMENTAL
REMOVE = agent_pb2.Assignment.ACTION_REMOVE
UPDATE = agent_pb2.Assignment.ACTION_UPDATE


class Decision(enum.Enum):
    APPLY_COMPLETE = "apply-complete"
    APPLY_INCREMENTAL = "apply-incremental"
    RESYNC = "resync"  # drop the stream and reconnect


def decide(held_version: int | None, msg: agent_pb2.SessionMessage) -> Decision:
    """What to do with `msg` given the version the agent holds (None: no COMPLETE yet)."""
    if msg.type == COMPLETE:
        return Decision.APPLY_COMPLETE
    if msg.type == INCREMENTAL and held_version is not None and msg.base_version == held_version:
        return Decision.APPLY_INCREMENTAL
    return Decision.RESYNC


class ChainBroken(Exception):
    """An INCREMENTAL message does not apply on top of the held version."""

    def __init__(self, held: int | None, msg: agent_pb2.SessionMessage) -> None:
        super().__init__(
            f"session message type={msg.type} base_version={msg.base_version} does not apply on "
            f"held version {held}; resyncing"
        )


@dataclass(slots=True)
class AssignmentBook:
    """Desired containers by ccs container id, plus those being removed."""

    version: int | None = None
    desired: dict[str, resources_pb2.Container] = field(default_factory=dict)
    removing: dict[str, resources_pb2.Container] = field(default_factory=dict)
    # The values of the secrets and configs each desired container mounts (Assignment.files).
    files: dict[str, list[agent_pb2.MountedFile]] = field(default_factory=dict)
    # The registry login each desired container's image pull needs (Assignment.pull_auth), in
    # memory only: handed to the Engine's pull, never logged or written anywhere.
    auth: dict[str, agent_pb2.PullAuth] = field(default_factory=dict)

    @property
    def synced(self) -> bool:
        """True once a COMPLETE set arrived: only then may local orphans be removed."""
        return self.version is not None

    def apply(self, msg: agent_pb2.SessionMessage) -> set[str]:
        """Apply one message; return the ids to re-plan. Raises ChainBroken when it does not chain."""
        decision = decide(self.version, msg)
        if decision is Decision.RESYNC:
            raise ChainBroken(self.version, msg)
        changed: set[str] = set()
        if decision is Decision.APPLY_COMPLETE:
            incoming = {a.container.meta.id for a in msg.assignments}
            for cid in list(self.desired):
                if cid not in incoming:
                    self.removing[cid] = self.desired.pop(cid)
                    self.files.pop(cid, None)
                    self.auth.pop(cid, None)
                    changed.add(cid)
        changed |= self._apply_assignments(msg.assignments)
        self.version = msg.version
        return changed

    def _apply_assignments(self, assignments: Iterable[agent_pb2.Assignment]) -> set[str]:
        changed: set[str] = set()
        for a in assignments:
            c = a.container
            cid = c.meta.id
            if not cid:
                continue  # malformed: nothing can be done without an identity
            changed.add(cid)
            if a.action == REMOVE or c.desired_state == resources_pb2.DESIRED_STATE_REMOVED:
                self.desired.pop(cid, None)
                self.files.pop(cid, None)
                self.auth.pop(cid, None)
                self.removing[cid] = c
            else:
                self.removing.pop(cid, None)
                self.desired[cid] = c
                self.files[cid] = list(a.files)
                if a.HasField("pull_auth"):
                    self.auth[cid] = a.pull_auth
                else:
                    self.auth.pop(cid, None)
        return changed

    def get(self, cid: str) -> tuple[resources_pb2.Container | None, bool]:
        """(container, being removed) for `cid`; (None, False) when unknown."""
        if cid in self.desired:
            return self.desired[cid], False
        if cid in self.removing:
            return self.removing[cid], True
        return None, False

    def forget(self, cid: str) -> None:
        """Drop a container whose removal was done and reported."""
        self.removing.pop(cid, None)
        self.files.pop(cid, None)
        self.auth.pop(cid, None)

    def ids(self) -> set[str]:
        return set(self.desired) | set(self.removing)

    def subnets(self) -> set[str]:
        """The blocks the node's assigned containers hold (`Container.subnets`): their bridges
        are wanted even before the network map lists them."""
        return {s for c in self.desired.values() for s in c.subnets.values() if s}
