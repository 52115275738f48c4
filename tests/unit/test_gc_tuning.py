"""The server's garbage-collector settings and the series that count its cost."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from controlplane import gc_tuning
from controlplane import main as server_main


@pytest.fixture
def restored_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_tune_raises_only_the_young_threshold(restored_thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc_tuning.tune(100_000)
    assert gc.get_threshold() == (100_000, 10, 10)


def test_tune_zero_keeps_cpythons_thresholds(restored_thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc_tuning.tune(0)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_collection_is_counted_by_generation_with_its_time_and_what_it_freed() -> None:
    times = gc_tuning.gc_times()
    assert gc_tuning.gc_times() is times  # one hook per process, not one per call
    assert gc.callbacks.count(times.callback) == 1
    before = times.snapshot()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    del a, b
    gc.collect(2)
    after = times.snapshot()
    assert after[2][0] == before[2][0] + 1
    assert after[2][1] > before[2][1]
    assert after[2][2] >= before[2][2] + 2


def test_the_collector_exports_seconds_and_collections_by_generation() -> None:
    times = gc_tuning.GcTimes()
    times.callback("start", {"generation": 1})
    times.callback("stop", {"generation": 1, "collected": 7})
    registry = CollectorRegistry()
    registry.register(gc_tuning.GcCollector(times))
    text = generate_latest(registry).decode()
    assert 'ccs_gc_collections_total{generation="1"} 1.0' in text
    assert 'ccs_gc_collections_total{generation="0"} 0.0' in text
    assert 'ccs_gc_seconds_total{generation="2"} 0.0' in text
    seconds = next(line for line in text.splitlines() if line.startswith('ccs_gc_seconds_total{generation="1"}'))
    assert float(seconds.split()[-1]) > 0


def test_the_option_defaults_to_the_tuned_threshold_and_reads_the_environment(tmp_path: Path) -> None:
    assert server_main.parse_args(["--state-dir", str(tmp_path)], env={}).gc_young_threshold == 100_000
    opts = server_main.parse_args(["--state-dir", str(tmp_path)], env={"CCS_SERVER_GC_YOUNG_THRESHOLD": "0"})
    assert opts.gc_young_threshold == 0


def test_a_negative_threshold_is_refused_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        server_main.parse_args(["--state-dir", str(tmp_path), "--gc-young-threshold", "-1"], env={})
    assert "--gc-young-threshold: must be 0" in capsys.readouterr().err
