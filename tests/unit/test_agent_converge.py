"""Table tests of the agent's pure convergence planning (nodeagent.converge)."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.converge import Kind, plan_one
from nodeagent.runtime.types import State

from .test_agent_helpers import container, observed

RUN, STOP, RM = pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_STOPPED, pb.DESIRED_STATE_REMOVED
S = State


@pytest.mark.parametrize(
    ("desired", "removing", "obs", "tracked", "failed", "kind", "state"),
    [
        # RUNNING
        (RUN, False, None, False, False, Kind.CREATE, S.CONTAINER_STATE_UNSPECIFIED),
        (RUN, False, observed("a", S.CONTAINER_STATE_RUNNING), False, False, Kind.ADOPT,
         S.CONTAINER_STATE_RUNNING),
        (RUN, False, observed("a", S.CONTAINER_STATE_HEALTHY), True, False, Kind.REPORT,
         S.CONTAINER_STATE_HEALTHY),
        (RUN, False, observed("a", S.CONTAINER_STATE_STARTING, started=None), True, False, Kind.START,
         S.CONTAINER_STATE_UNSPECIFIED),
        # exited is reported, never restarted (the control plane owns restarts)
        (RUN, False, observed("a", S.CONTAINER_STATE_EXITED, exit_code=3), True, False, Kind.REPORT,
         S.CONTAINER_STATE_EXITED),
        (RUN, False, observed("a", S.CONTAINER_STATE_EXITED, exit_code=3), False, False, Kind.ADOPT,
         S.CONTAINER_STATE_EXITED),
        # vanished behind our back: FAILED, not recreated
        (RUN, False, None, True, False, Kind.REPORT, S.CONTAINER_STATE_FAILED),
        # permanent failure already reported: never retried
        (RUN, False, None, False, True, Kind.REPORT, S.CONTAINER_STATE_FAILED),
        # STOPPED
        (STOP, False, observed("a", S.CONTAINER_STATE_RUNNING), True, False, Kind.STOP,
         S.CONTAINER_STATE_UNSPECIFIED),
        (STOP, False, observed("a", S.CONTAINER_STATE_EXITED), True, False, Kind.REPORT,
         S.CONTAINER_STATE_STOPPED),
        (STOP, False, None, False, False, Kind.REPORT, S.CONTAINER_STATE_STOPPED),
        # REMOVED, by desired state or by action REMOVE
        (RM, False, observed("a"), True, False, Kind.REMOVE, S.CONTAINER_STATE_UNSPECIFIED),
        (RUN, True, observed("a"), True, False, Kind.REMOVE, S.CONTAINER_STATE_UNSPECIFIED),
        (RUN, True, None, False, False, Kind.REMOVE, S.CONTAINER_STATE_UNSPECIFIED),
    ],
)
def test_plan_one(
    desired: int, removing: bool, obs: object, tracked: bool, failed: bool, kind: Kind, state: int
) -> None:
    actions = plan_one("a", container("a", desired), removing, obs, tracked=tracked, failed=failed)  # type: ignore[arg-type]
    assert [a.kind for a in actions] == [kind]
    assert actions[0].state == state


def test_remove_uses_grace_and_keep_volumes_label() -> None:
    c = container("a", RM, grace_ms=2500, meta_labels={"ccs.keep-volumes": "true"})
    (a,) = plan_one("a", c, False, observed("a"), tracked=True, failed=False)
    assert (a.kind, a.grace_seconds, a.volumes) == (Kind.REMOVE, 2.5, False)
    (b,) = plan_one("a", container("a", RM), False, observed("a"), tracked=True, failed=False)
    assert (b.grace_seconds, b.volumes) == (10.0, True)



def test_an_unassigned_local_container_is_removed_as_an_orphan() -> None:
    (a,) = plan_one("o", None, False, observed("o"), tracked=False, failed=False)
    assert (a.kind, a.container, a.volumes) == (Kind.REMOVE_ORPHAN, None, True)
    (b,) = plan_one("o", None, False, observed("o", labels={"ccs.keep-volumes": "true"}),
                    tracked=True, failed=False)
    assert (b.kind, b.volumes) == (Kind.REMOVE_ORPHAN, False)
    assert plan_one("o", None, False, None, tracked=True, failed=False) == []
