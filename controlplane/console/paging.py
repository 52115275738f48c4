"""The console's pages of a long list: which rows of the whole a page shows. Pure: no I/O.

Why offsets and not the API's page tokens: a page token continues a read pinned to the first
page's etcd revision, which is what a client walking a list wants, but a console page is re-read
every time the cluster changes (the live stream) and must then show what is there *now*, at the
same place in the list. An offset into the current list does that, and gives an exact count and
a "previous" link. The containers page asks the API for its page alone (``ListContainers`` with
``offset`` and ``with_total``: the server reads the keys before it and the page's records, not
the list's); the other lists are read whole and paged here (they grow with nodes, applications
and services, or are small), so the browser gets one page however large the cluster (the
benchmark's figures are in the README, "Web console").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Rows per page the console offers; the first is the default.
SIZES = (100, 50, 500)
DEFAULT_SIZE = SIZES[0]


@dataclass(frozen=True)
class Window:
    """Rows ``offset`` .. ``offset + size`` of ``total``."""

    total: int
    offset: int
    size: int

    @property
    def first(self) -> int:
        """The first row shown, counted from 1 (0 when there is none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def previous(self) -> int | None:
        """The offset of the page before, or None on the first."""
        return max(self.offset - self.size, 0) if self.offset else None

    @property
    def next(self) -> int | None:
        return self.offset + self.size if self.offset + self.size < self.total else None

    @property
    def paged(self) -> bool:
        """Whether the list needs more than one page (the pager is shown)."""
        return self.total > self.size or self.offset > 0

    def rows(self, items: Sequence[T]) -> Sequence[T]:
        return items[self.offset:self.offset + self.size]


def _whole(field: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{field}: {text!r} is not a whole number")
    return int(text)


def asked(offset: str = "", size: str = "") -> tuple[int, int]:
    """(offset, size) from ``?offset=&size=``; ValueError naming the field for what is not a
    number or not an offered size."""
    rows = _whole("size", size) if size else DEFAULT_SIZE
    if rows not in SIZES:
        raise ValueError(f"size: {rows} is not one of {', '.join(map(str, sorted(SIZES)))} rows per page")
    return (_whole("offset", offset) if offset else 0), rows


def window(total: int, offset: str = "", size: str = "") -> Window:
    """The page of a list of ``total`` rows that ``?offset=&size=`` asks for (see :func:`asked`).
    An offset past the end (the list shrank since the link was made) shows the last page, so a
    live page never goes blank."""
    start, rows = asked(offset, size)
    if start >= total:
        start = (max(total - 1, 0) // rows) * rows
    return Window(total, start, rows)
