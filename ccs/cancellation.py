"""`raise_if_cancelled`: what a loop that retries or reconnects checks before it does (the SDK's
watches and the agent's session loops alike)."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError if cancelling the current task was requested, even if it was eaten.

    Why: grpc.aio can swallow the CancelledError thrown into a task that awaits a stream call
    (the read then ends, or fails with the RPC's error, e.g. UNAVAILABLE "Stream removed",
    instead of CancelledError). A loop that reconnects on such an end (``Events.watch``, the
    agent's logs relay) would then never stop: a Ctrl-C of ``ccs events -f`` would hang, and
    an agent's session TaskGroup would wait for it forever. ``Task.cancelling()`` keeps the
    count of cancel requests, so a loop checks it before it retries anything.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
