"""The engine-event timeline the rolling benchmark prints (pure parsing)."""

from __future__ import annotations

from tests.bench._engine_timeline import parse


def ns(seconds: float) -> str:
    return str(int(seconds * 1e9))


def test_medians_of_start_health_and_reaction() -> None:
    lines = [
        f"{ns(0.0)} create a", f"{ns(0.0)} create b",
        f"{ns(0.5)} start a", f"{ns(0.7)} start b",
        f"{ns(1.6)} health_status: healthy a",
        f"{ns(1.9)} create c",  # 0.3 s after a turned healthy
        f"{ns(2.0)} health_status: healthy b",
        f"{ns(2.2)} start c", f"{ns(2.1)} create d",  # out of order lines are fine per container
        f"{ns(3.3)} health_status: healthy c",
        f"{ns(3.4)} start d", f"{ns(4.5)} health_status: healthy d",
        f"{ns(4.6)} health_status: unhealthy x",
    ]
    tl = parse(lines, window=2)
    assert tl is not None
    assert tl.created == 4
    assert round(tl.create_to_start, 2) == 0.6  # median of 0.5, 0.7, 0.3, 1.3
    assert round(tl.start_to_healthy, 2) == 1.1  # median of 1.1, 1.3, 1.1, 1.1
    assert round(tl.healthy_to_next_create, 2) == 0.2  # c: 0.3 after a; d: 0.1 after b


def test_nothing_to_report_without_events() -> None:
    assert parse([], window=5) is None
    assert parse(["garbage"], window=1) is None
