"""The engine-event timeline the rolling benchmark prints (pure parsing)."""

from __future__ import annotations

import math

from tests.bench._engine_timeline import parse


def ev(seconds: float, action: str, cid: str, exit_code: str = "") -> str:
    """One line as the recorder's ``docker events --format`` prints it."""
    return f"{int(seconds * 1e9)}|{action}|{cid}|{exit_code}"


def test_medians_of_start_health_and_reaction() -> None:
    lines = [
        ev(0.0, "create", "a"), ev(0.0, "create", "b"),
        ev(0.5, "start", "a"), ev(0.7, "start", "b"),
        ev(1.59, "exec_die", "a", "0"), ev(1.6, "health_status: healthy", "a"),
        ev(1.9, "create", "c"),  # 0.3 s after a turned healthy
        ev(2.0, "health_status: healthy", "b"),
        ev(2.2, "start", "c"), ev(2.1, "create", "d"),  # out of order lines are fine per container
        ev(3.3, "health_status: healthy", "c"),
        ev(3.4, "start", "d"), ev(4.5, "health_status: healthy", "d"),
        ev(4.6, "health_status: unhealthy", "x"),
    ]
    tl = parse(lines, window=2)
    assert tl is not None
    assert tl.created == 4
    assert round(tl.create_to_start, 2) == 0.6  # median of 0.5, 0.7, 0.3, 1.3
    assert round(tl.start_to_healthy, 2) == 1.1  # median of 1.1, 1.3, 1.1, 1.1
    assert round(tl.start_to_first_pass, 2) == 1.09  # only a's passing run was recorded
    assert round(tl.ready_to_next_create, 2) == 0.2  # c: 0.3 after a; d: 0.1 after b


def test_a_container_is_ready_at_its_first_passing_check_before_the_engine_says_healthy() -> None:
    lines = [
        ev(0.0, "create", "a"), ev(0.5, "start", "a"),
        ev(0.55, "exec_die", "a", "1"),  # a failing run counts for nothing
        ev(0.8, "exec_die", "a", "0"),  # the agent's first check passed: a is ready
        ev(0.9, "create", "b"),  # 0.1 s later the next slot starts
        ev(1.5, "health_status: healthy", "a"), ev(1.5, "exec_die", "a", "0"),
        ev(1.2, "start", "b"), ev(1.4, "exec_die", "b", "0"), ev(2.2, "health_status: healthy", "b"),
    ]
    tl = parse(sorted(lines, key=lambda line: int(line.split("|")[0])), window=1)
    assert tl is not None
    assert round(tl.start_to_first_pass, 2) == 0.25  # median of 0.3 and 0.2
    assert round(tl.start_to_healthy, 2) == 1.0
    assert round(tl.ready_to_next_create, 2) == 0.1


def test_nothing_to_report_without_events() -> None:
    assert parse([], window=5) is None
    assert parse(["garbage"], window=1) is None
    only_engine = parse([ev(0, "create", "a"), ev(0.1, "start", "a"), ev(1, "health_status: healthy", "a"),
                         ev(1.1, "create", "b")], window=1)
    assert only_engine is not None and math.isnan(only_engine.start_to_first_pass)
