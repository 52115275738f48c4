"""Table tests of the agent's pure convergence planning (nodeagent.converge)."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.converge import Kind, orphans, plan, plan_one
from nodeagent.runtime.types import State

from .test_agent_helpers import CLUSTER, container, observed

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


def test_orphans_only_of_this_cluster() -> None:
    local = [observed("a"), observed("b"), observed("x", cluster="other"),
             observed("y", labels={"ccs.managed": "false"})]
    assert [o.container_id for o in orphans(local, cluster=CLUSTER, assigned={"a"})] == ["b"]


def test_plan_complete_set() -> None:
    desired = {"a": container("a"), "b": container("b"), "s": container("s", STOP)}
    removing = {"r": container("r")}
    local = [observed("a"), observed("r"), observed("s"), observed("o"), observed("z", cluster="other")]
    actions = plan(desired, removing, local, cluster=CLUSTER, tracked={"a"})
    got = {(a.container_id, a.kind) for a in actions}
    assert got == {
        ("a", Kind.REPORT), ("b", Kind.CREATE), ("s", Kind.STOP), ("r", Kind.REMOVE),
        ("o", Kind.REMOVE_ORPHAN),
    }
    orphan = next(a for a in actions if a.kind is Kind.REMOVE_ORPHAN)
    assert orphan.container is None and orphan.observed is not None
