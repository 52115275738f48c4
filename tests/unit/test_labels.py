"""``ccs.labels``: the reserved label names and the label-update rule, one definition shared by the
server's API and planners, the agent, and the SDK's fake server and deploy verdict."""

from __future__ import annotations

import pytest

from ccs.labels import KEEP_VOLUMES, apply_label_changes, keeps_volumes


def test_a_value_sets_a_label_and_an_empty_value_removes_it() -> None:
    labels = {"team": "payments", "tier": "web"}
    apply_label_changes(labels, {"team": "", "tier": "api", "new": "1", "absent": ""})
    assert labels == {"tier": "api", "new": "1"}


@pytest.mark.parametrize(("value", "keep"), [("true", True), ("TRUE", True), ("false", False), ("", False)])
def test_keep_volumes_reads_the_same_for_the_control_plane_and_the_agent(value: str, keep: bool) -> None:
    from nodeagent.converge import remove_volumes

    labels = {KEEP_VOLUMES: value} if value else {}
    assert keeps_volumes(labels) is keep
    assert remove_volumes(labels) is not keep
