"""ContainerTasks: one task per container id and key (nodeagent.container_tasks)."""

from __future__ import annotations

import asyncio

from nodeagent.container_tasks import ContainerTasks


class Work:
    """Coroutines that record their start and their cancellation, and end when released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.release = asyncio.Event()

    async def run(self, label: str) -> None:
        self.started.append(label)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(label)
            raise


async def test_the_same_key_keeps_its_task_and_a_new_key_replaces_it() -> None:
    tasks: ContainerTasks[str] = ContainerTasks("t")
    work = Work()
    first = tasks.start("c1", "docker-a", work.run("a"))
    await asyncio.sleep(0)
    assert tasks.running("c1", "docker-a")
    assert not tasks.running("c1", "docker-b")  # the container was replaced: a new docker id
    second = tasks.start("c1", "docker-b", work.run("b"))
    await asyncio.sleep(0)
    assert first.cancelled() and work.cancelled == ["a"]
    assert tasks.task("c1") is second and tasks.running("c1", "docker-b")
    assert second.get_name() == "t-c1"
    await tasks.close()


async def test_an_ended_task_is_not_running_so_the_key_may_start_again() -> None:
    tasks: ContainerTasks[tuple[str, float]] = ContainerTasks("t")
    work = Work()
    work.release.set()
    done = tasks.start("c1", ("a", 1.0), work.run("a"))
    await done
    assert not tasks.running("c1", ("a", 1.0))
    tasks.start("c1", ("a", 1.0), work.run("again"))
    await asyncio.sleep(0)
    assert work.started == ["a", "again"] and work.cancelled == []
    await tasks.close()


async def test_stop_cancels_only_that_container() -> None:
    tasks: ContainerTasks[str] = ContainerTasks("t")
    work = Work()
    one = tasks.start("c1", "a", work.run("one"))
    two = tasks.start("c2", "b", work.run("two"))
    await asyncio.sleep(0)
    assert tasks.stop("c1") is True
    assert tasks.stop("c1") is False  # nothing left to stop
    assert tasks.stop("unknown") is False
    await asyncio.gather(one, return_exceptions=True)
    assert one.cancelled() and not two.done()
    assert tasks.task("c1") is None and tasks.tasks() == [two]
    await tasks.close()


async def test_close_cancels_every_task_and_waits_for_them() -> None:
    tasks: ContainerTasks[str] = ContainerTasks("t")
    work = Work()
    started = [tasks.start(f"c{i}", "k", work.run(f"w{i}")) for i in range(3)]
    await asyncio.sleep(0)
    await tasks.close()
    assert all(t.done() and t.cancelled() for t in started)  # ended, not merely asked to
    assert sorted(work.cancelled) == ["w0", "w1", "w2"]
    assert tasks.tasks() == []
