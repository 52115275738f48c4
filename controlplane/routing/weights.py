"""Turn "W% of the traffic to the new group" into HAProxy server weights (integers 0..256).

HAProxy balances by server weight, so a group's share is ``n * w`` over the sum across groups: the
per-server weight of each group must be chosen so that ``n_new * w_new / (n_new * w_new + n_old *
w_old)`` is as close to ``pct / 100`` as integers allow. A group with a share above 0 always gets
weight >= 1 (0 takes a server out of rotation); a group with 0% gets 0 but stays configured, so a
shift is a runtime-API weight change, not a reload. Shares that need a ratio beyond 256:1 (say 99%
on 1 server against 100 others) get the closest the range allows.
"""

from __future__ import annotations

from typing import Final

FULL: Final = 128
"""The weight of every server when one group takes all traffic (headroom both ways in 0..256)."""
MAX_WEIGHT: Final = 256


def weights(pct_new: int, n_new: int, n_old: int) -> tuple[int, int]:
    """Per-server weights ``(w_new, w_old)`` giving the new group ``pct_new``% of the traffic.

    A group with no servers cannot take traffic, so its share goes to the other: serving from the
    remaining group beats answering 503. Raises ``ValueError`` naming the bad argument.
    """
    if not 0 <= pct_new <= 100:
        raise ValueError(f"pct_new: {pct_new} is not a percentage from 0 to 100")
    if n_new < 0 or n_old < 0:
        raise ValueError(f"n_new/n_old: server counts must not be negative (got {n_new}, {n_old})")
    if n_new == 0:
        return (0, FULL)
    if n_old == 0:
        return (FULL, 0)
    if pct_new == 0:
        return (0, FULL)
    if pct_new == 100:
        return (FULL, 0)
    target = pct_new / 100
    best: tuple[float, int, int] | None = None
    for w_old in range(1, MAX_WEIGHT + 1):
        ideal = pct_new * n_old * w_old / ((100 - pct_new) * n_new)
        w_new = min(max(round(ideal), 1), MAX_WEIGHT)
        error = abs(share(w_new, w_old, n_new, n_old) - target)
        if best is None or error < best[0] - 1e-12:
            best = (error, w_new, w_old)
    assert best is not None
    return best[1], best[2]


def share(w_new: int, w_old: int, n_new: int, n_old: int) -> float:
    """The new group's fraction of the traffic under these weights (0.0 when nothing can serve)."""
    total = n_new * w_new + n_old * w_old
    return n_new * w_new / total if total else 0.0
