"""`ContainerTasks`: at most one background task per ccs container id, for what it works on now.

The agent's per-container watchers (the first health check, `first_check`; the agent-side
probes, `probe_monitor`) share one lifecycle, kept here once: a task is tied to a key (what it
watches: a docker id, or a docker id and its start time), so asking again for the same key
while its task runs changes nothing, while a new key (the container was replaced or restarted)
cancels the old task before the new one starts; `stop` cancels a container's task (it stopped
or was removed); `close` cancels every task and waits for them to end (the agent stops).

Why cancel without waiting in `stop`: the caller is the executor's worker, which goes on to
stop the container in the engine; the task's next await raises CancelledError and it ends
there. Only `close` waits, so no task outlives the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ContainerTasks(Generic[K]):
    """Tasks by ccs container id, each with the key it was started for."""

    def __init__(self, name: str) -> None:
        self._name = name  # the tasks' name prefix, as asyncio shows them
        self._tasks: dict[str, tuple[K, asyncio.Task[None]]] = {}

    def running(self, cid: str, key: K) -> bool:
        """A task for ``cid`` and this very ``key`` has not ended yet."""
        entry = self._tasks.get(cid)
        return entry is not None and entry[0] == key and not entry[1].done()

    def start(self, cid: str, key: K, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as ``cid``'s task for ``key``, cancelling the task it had."""
        self.stop(cid)
        task = asyncio.create_task(work, name=f"{self._name}-{cid}")
        self._tasks[cid] = (key, task)
        return task

    def stop(self, cid: str) -> bool:
        """Cancel ``cid``'s task (it ends at its next await); False when it had none."""
        entry = self._tasks.pop(cid, None)
        if entry is None:
            return False
        entry[1].cancel()
        return True

    def task(self, cid: str) -> asyncio.Task[None] | None:
        entry = self._tasks.get(cid)
        return entry[1] if entry is not None else None

    def tasks(self) -> list[asyncio.Task[None]]:
        return [task for _, task in self._tasks.values()]

    async def close(self) -> None:
        """Cancel every task and wait until all have ended."""
        tasks = self.tasks()
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
