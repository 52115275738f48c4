"""The event loop's lag: a loop held by synchronous work shows as a late sample."""

from __future__ import annotations

import asyncio
import time

from controlplane.metrics.loop_lag import measure_loop_lag


class Samples:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.changed = asyncio.Event()

    def observe(self, amount: float) -> None:
        self.lags.append(amount)
        self.changed.set()

    async def next(self) -> float:
        self.changed.clear()
        await self.changed.wait()
        return self.lags[-1]


async def test_a_loop_held_by_synchronous_work_is_one_late_sample() -> None:
    samples = Samples()
    task = asyncio.create_task(measure_loop_lag(samples, period=0.01))
    try:
        await samples.next()  # the sampler runs
        assert all(lag >= 0 for lag in samples.lags)
        time.sleep(0.4)  # hold the loop: the sampler cannot wake until this returns
        # The sample spanning the hold woke at least 0.4 - 0.01 s after it was due.
        assert await samples.next() >= 0.38  # 0.39, less float rounding
    finally:
        task.cancel()
