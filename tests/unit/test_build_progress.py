"""``--build`` progress (cli.build_progress): every build step and every pushed layer is shown,
as bars on a terminal and as plain lines otherwise (one per step, one per change of a layer)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cli.build_progress import PlainBuildReporter, RichBuildReporter, build_reporter


def feed(reporter: PlainBuildReporter | RichBuildReporter) -> None:
    with reporter:
        reporter.step("web", "Step 1/2 : FROM local/busybox:1")
        reporter.step("web", "Step 2/2 : LABEL a=b")
        for status, current in (("Preparing", 0), ("Pushing", 10), ("Pushing", 20), ("Pushed", 0)):
            reporter.layer("web", "3f2a9c1b", status, current, 20)
        reporter.layer("web", "aa11bb22", "Layer already exists", 0, 0)


def test_plain_lines_one_per_step_and_per_layer_status(capsys: pytest.CaptureFixture[str]) -> None:
    feed(PlainBuildReporter())
    assert capsys.readouterr().err.splitlines() == [
        "web: Step 1/2 : FROM local/busybox:1",
        "web: Step 2/2 : LABEL a=b",
        "web: layer 3f2a9c1b: Preparing",
        "web: layer 3f2a9c1b: Pushing",
        "web: layer 3f2a9c1b: Pushed",
        "web: layer aa11bb22: Layer already exists",
    ]


def test_a_terminal_gets_the_steps_and_a_bar_per_layer() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = build_reporter(console)
    assert isinstance(reporter, RichBuildReporter)
    feed(reporter)
    text = out.getvalue()
    for expected in ("Step 1/2 : FROM local/busybox:1", "Step 2/2 : LABEL a=b", "web 3f2a9c1b", "Pushed",
                     "web aa11bb22", "Layer already exists"):
        assert expected in text, expected
    assert isinstance(build_reporter(Console(file=io.StringIO())), PlainBuildReporter)
