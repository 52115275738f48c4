"""The runtime-API commands a weight or server change becomes, and how they are batched into lines."""

from __future__ import annotations

import pytest

from nodeagent.router.config import ServerChanges
from nodeagent.router.runtime_api import batch_lines, server_commands, weight_commands


def test_weight_commands_put_weight_zero_in_maintenance_and_gains_first() -> None:
    cmds = weight_commands([("be_web", "old", 0), ("be_web", "new", 128), ("be_api", "x", 64)])
    assert cmds == [
        "set server be_api/x state ready", "set weight be_api/x 64",
        "set server be_web/new state ready", "set weight be_web/new 128",
        "set weight be_web/old 0", "set server be_web/old state maint",
    ]


def test_batch_lines_join_with_semicolons_within_the_limit() -> None:
    cmds = [f"set weight be/s{i} 100" for i in range(100)]
    lines = batch_lines(cmds, 200)
    assert all(len(line) <= 200 for line in lines)
    assert [c for line in lines for c in line.split("; ")] == cmds  # all, in order
    assert len(lines) < len(cmds)
    assert batch_lines([], 200) == []
    assert batch_lines(["x" * 300], 200) == ["x" * 300]  # a long one alone


@pytest.mark.parametrize("bad", ["a; b", "a\nb"])
def test_batch_lines_refuse_separators_inside_a_command(bad: str) -> None:
    with pytest.raises(ValueError, match="without newline or ';'"):
        batch_lines([bad], 200)


def test_server_commands_add_first_then_weights_then_remove() -> None:
    changes = ServerChanges(
        weights={("be", "kept"): 50},
        added={("be", "new"): ("10.0.0.7:32770", 100), ("be", "idle"): ("10.0.0.8:80", 0)},
        removed=(("be", "old"),),
    )
    assert server_commands(changes, "2s") == [
        # a new server is born in maintenance; weight 0 keeps it there, like `disabled` in the file
        "add server be/idle 10.0.0.8:80 weight 0 check inter 2s", "enable health be/idle",
        "add server be/new 10.0.0.7:32770 weight 100 check inter 2s", "enable health be/new",
        "enable server be/new",
        "set server be/kept state ready", "set weight be/kept 50",
        "set server be/old state maint",  # no more requests; `del server` is retried apart
    ]
    assert server_commands(ServerChanges(), "2s") == []
