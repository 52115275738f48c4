"""The one duration syntax (``ccs.durations``) and every place that reads it: the CLI's
``--timeout`` and ``--since``, the SDK's canary pauses and Compose's durations accept the same
texts alike, table-driven."""

from __future__ import annotations

import pytest
import typer

from ccs.durations import DurationError, format_duration, parse_ms, parse_seconds
from ccs.models import StepsError, parse_steps
from cli.commands.container import parse_since
from cli.progress import parse_duration
from controlplane.compose.units import duration_ms

# text, seconds: every one of these is a positive duration everywhere
ACCEPTED = [
    ("1m30s", 90.0),
    ("1d", 86400.0),
    ("500ms", 0.5),
    ("90s", 90.0),
    ("2h", 7200.0),
    ("1.5h", 5400.0),
    ("1h2m3s", 3723.0),
    (".5s", 0.5),
    ("1d12h", 129600.0),
    ("250ms", 0.25),
    ("1500us", 0.0015),
    ("2000000ns", 0.002),
    (" 30s ", 30.0),
]
# rejected everywhere (CLI --timeout also takes plain seconds, which is its own option)
REJECTED = ["", "s", "5x", "5 m", "-1s", "+1s", "1h-5m", "2M", "1w", "10 seconds", "1m30", "ms5", "∞s"]


@pytest.mark.parametrize(("text", "seconds"), ACCEPTED)
def test_parse_seconds_and_ms(text: str, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)
    assert parse_ms(text) == round(seconds * 1000)


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_texts_name_the_syntax(text: str) -> None:
    with pytest.raises(DurationError, match="must be a duration like 1m30s"):
        parse_seconds(text)


@pytest.mark.parametrize(("text", "seconds"), ACCEPTED)
def test_every_layer_accepts_the_same_texts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)  # CLI --timeout
    assert parse_since(text, now=1e6) == pytest.approx(1e6 - seconds)  # CLI --since
    assert duration_ms(text) == round(seconds * 1000)  # Compose
    if seconds >= 0.001:  # canary pauses are whole milliseconds
        steps = parse_steps(f"10%,pause {text.strip()},100%")
        assert steps[0].pause_ms == round(seconds * 1000)


@pytest.mark.parametrize("text", REJECTED)
def test_every_layer_rejects_the_same_texts(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)
    with pytest.raises(ValueError, match="must be a duration like"):
        duration_ms(text)
    if text.strip() and " " not in text.strip():
        with pytest.raises(StepsError, match="must be a duration like"):
            parse_steps(f"10%,pause {text},100%")


def test_zero_is_a_duration_but_callers_may_want_more() -> None:
    assert parse_seconds("0") == 0 and duration_ms("0") == 0 and duration_ms("0s") == 0
    with pytest.raises(typer.BadParameter, match="more than 0"):
        parse_duration("0s")
    with pytest.raises(StepsError, match="more than 0ms"):
        parse_steps("10%,pause 0s,100%")


def test_plain_seconds_only_where_asked() -> None:
    assert parse_seconds("45", bare_seconds=True) == 45 and parse_duration("2.5") == 2.5
    with pytest.raises(DurationError):
        parse_seconds("45")
    with pytest.raises(ValueError, match="must be a duration like"):
        duration_ms("45")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "0.5s"), (45, "45s"), (90, "1m30s"), (3600, "1h"), (3723, "1h2m3s"), (86400, "1d"),
     (90061, "1d1h1m1s")],
)
def test_format_duration_reads_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_seconds(text) == seconds
