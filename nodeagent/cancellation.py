"""`raise_if_cancelled`: what every retrying loop of the agent checks before it retries."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError if cancelling the current task was requested, even if it was eaten.

    Why: grpc.aio can swallow the CancelledError thrown into a task that awaits a stream call
    whose RPC has just failed (the read then ends with the RPC's error, e.g. UNAVAILABLE "Stream
    removed", instead of CancelledError). A session task that loops on such errors (the logs
    relay reconnects) then never ends, and the session's TaskGroup waits for it forever: the
    agent stays connected to nothing and never reconnects. `Task.cancelling()` keeps the count
    of cancel requests, so a loop checks it before it retries anything.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
