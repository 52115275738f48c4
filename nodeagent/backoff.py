"""Exponential backoff with full jitter, as a pure value object.

Used for reconnecting to the control plane (0.5 s -> 2 s) and for per-container retries of
temporary runtime errors. The random source is injectable so that the bounds are unit-tested
without sleeping; the caller does the sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """`next()` returns the next delay: uniform in [base/2, cap_n] where cap_n doubles per attempt.

    Half-jitter rather than full jitter keeps a floor, so a thundering herd of agents
    reconnecting after a control-plane restart spreads out but never spins at zero delay.
    """

    base: float = 0.5
    cap: float = 10.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"base: must be > 0 seconds, got {self.base}")
        if self.cap < self.base:
            raise ValueError(f"cap: must be >= base ({self.base}), got {self.cap}")
        if self.factor < 1:
            raise ValueError(f"factor: must be >= 1, got {self.factor}")

    def ceiling(self) -> float:
        """The largest delay the next call may return."""
        return min(self.cap, self.base * self.factor ** min(self.attempts, 64))

    def next(self) -> float:
        high = self.ceiling()
        low = min(self.base, high) / 2
        self.attempts += 1
        return self.rng.uniform(low, high)

    def reset(self) -> None:
        """Call after a success, so the next failure starts from `base` again."""
        self.attempts = 0
