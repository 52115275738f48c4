"""The console's pages of a long list (controlplane/console/paging.py): which rows, the links,
and the clear refusal of a bad ``offset`` or ``size``."""

from __future__ import annotations

import pytest

from controlplane.console import paging


@pytest.mark.parametrize(
    ("total", "offset", "size", "shown", "previous", "next_"),
    [
        (2000, "", "", (1, 100), None, 100),
        (2000, "100", "", (101, 200), 0, 200),
        (2000, "1900", "", (1901, 2000), 1800, None),
        (2000, "0", "500", (1, 500), None, 500),
        (120, "100", "50", (101, 120), 50, None),
        (30, "", "", (1, 30), None, None),
        (0, "", "", (0, 0), None, None),
        # the list shrank since the link was made: the last page, not an empty one
        (150, "400", "", (101, 150), 0, None),
        (100, "100", "", (1, 100), None, None),
        (0, "200", "", (0, 0), None, None),
    ],
)
def test_a_window_shows_its_rows_with_previous_and_next(
    total: int, offset: str, size: str, shown: tuple[int, int], previous: int | None, next_: int | None
) -> None:
    w = paging.window(total, offset, size)
    assert (w.first, w.last) == shown and (w.previous, w.next) == (previous, next_)
    rows = list(range(total))
    assert list(w.rows(rows)) == rows[shown[0] - 1:shown[1]] if total else list(w.rows(rows)) == []


@pytest.mark.parametrize(("offset", "size", "message"), [
    ("-1", "", "offset: '-1' is not a whole number"),
    ("x", "", "offset: 'x' is not a whole number"),
    ("", "7", "size: 7 is not one of 50, 100, 500 rows per page"),
    ("", "2000", "size: 2000 is not one of 50, 100, 500 rows per page"),
    ("", "1e3", "size: '1e3' is not a whole number"),
])
def test_a_bad_offset_or_size_is_refused_naming_it(offset: str, size: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        paging.window(100, offset, size)
    assert str(e.value) == message
