"""The embedded etcd supervisor's restart backoff (``RestartDelay``), as a table of runs."""

from __future__ import annotations

import pytest

from controlplane.embedded_etcd import RestartDelay

CASES = {
    # how long each run lasted before etcd exited -> the delay before each restart
    "quick failures double up to the cap": ([0.1] * 7, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]),
    "a healthy run resets the backoff": ([0.1, 0.1, 0.1, 0.1, 3600.0], [0.5, 1.0, 2.0, 4.0, 0.5]),
    "and quick failures after it grow from the base again": ([0.1] * 6 + [30.0, 0.1],
                                                             [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 0.5, 1.0]),
    "a run just short of healthy does not reset": ([0.1, 0.1, 29.9], [0.5, 1.0, 2.0]),
    "the first exit after a long run waits only the base": ([86400.0], [0.5]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_restart_delay(case: str) -> None:
    runs, delays = CASES[case]
    d = RestartDelay(base=0.5, cap=10.0, healthy_after=30.0)
    assert [d.after_exit(r) for r in runs] == delays


@pytest.mark.parametrize(("base", "cap"), [(0.0, 10.0), (-1.0, 10.0), (20.0, 10.0)])
def test_bad_settings_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base"):
        RestartDelay(base=base, cap=cap)
