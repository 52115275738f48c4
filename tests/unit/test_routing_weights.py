"""``weights``: percentages to HAProxy integer weights, table-tested on the resulting shares."""

from __future__ import annotations

import pytest

from controlplane.routing import FULL, MAX_WEIGHT, share, weights


@pytest.mark.parametrize(
    ("pct", "n_new", "n_old"),
    [
        (10, 1, 3),
        (10, 1, 1),
        (50, 1, 3),
        (30, 3, 3),
        (1, 1, 1),
        (99, 1, 1),
        (5, 2, 20),
        (90, 10, 1),
        (33, 3, 7),
        (70, 4, 4),
    ],
)
def test_shares_are_within_one_percent(pct: int, n_new: int, n_old: int) -> None:
    w_new, w_old = weights(pct, n_new, n_old)
    assert 1 <= w_new <= MAX_WEIGHT and 1 <= w_old <= MAX_WEIGHT
    assert abs(share(w_new, w_old, n_new, n_old) - pct / 100) <= 0.01


@pytest.mark.parametrize(
    ("pct", "n_new", "n_old", "expected"),
    [
        (0, 1, 3, (0, FULL)),
        (100, 1, 3, (FULL, 0)),
        (40, 0, 3, (0, FULL)),  # no new server can take its share
        (40, 2, 0, (FULL, 0)),  # nothing left on the old side
        (0, 0, 0, (0, FULL)),
    ],
)
def test_edges(pct: int, n_new: int, n_old: int, expected: tuple[int, int]) -> None:
    assert weights(pct, n_new, n_old) == expected


def test_an_unreachable_ratio_gets_the_closest_the_range_allows() -> None:
    w_new, w_old = weights(99, 1, 100)
    assert (w_new, w_old) == (MAX_WEIGHT, 1)
    assert share(w_new, w_old, 1, 100) == pytest.approx(256 / 356)


@pytest.mark.parametrize(
    ("args", "needle"), [((101, 1, 1), "pct_new"), ((-1, 1, 1), "pct_new"), ((10, -1, 1), "n_new/n_old")]
)
def test_bad_arguments_name_themselves(args: tuple[int, int, int], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        weights(*args)
