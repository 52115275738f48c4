"""A container's secret and config files leave the node's tmpfs on every path, also when the
container never got a Docker id (its create failed, or it is removed before one was made).
The executor runs on the in-memory runtime; the files go to a plain directory (no tmpfs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.assignments import AssignmentBook
from nodeagent.converge import Kind, LocalAction
from nodeagent.executor import Executor
from nodeagent.mounted_files import MountedFiles
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER, container

WAIT = 20.0  # a guard against hanging, not a performance assertion
MISSING = "local/missing:1"


def with_secret(c: pb.Container) -> pb.Container:
    c.spec.secrets.add(name="db", version=1, target="/run/secrets/db", uid="0", gid="0", mode=0o400)
    return c


def files_of(c: pb.Container) -> list[agent_pb2.MountedFile]:
    return [agent_pb2.MountedFile(kind="secret", name="db", version=1, data=b"pw")]


def plain_dir(root: Path) -> MountedFiles:
    files = MountedFiles(root)
    root.mkdir()
    files._ready = True  # a plain directory stands for the tmpfs
    return files


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_the_files_of_a_container_whose_create_failed_are_removed(tmp_path: Path) -> None:
    book = AssignmentBook()
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    executor = Executor(FakeRuntime(missing_images=[MISSING]), book, reports.append, cluster=CLUSTER, node="n1",
                        address="127.0.0.1", files=plain_dir(tmp_path / "files"))
    c = with_secret(container("a", image=MISSING))
    book.apply(agent_pb2.SessionMessage(
        type=agent_pb2.SessionMessage.TYPE_COMPLETE, version=1,
        assignments=[agent_pb2.Assignment(action=agent_pb2.Assignment.ACTION_UPDATE, container=c,
                                          files=files_of(c))]))
    executor.enqueue("a")
    await until(lambda: any(r.status.state == pb.CONTAINER_STATE_FAILED for r in reports))
    await until(executor.idle)
    assert "a" not in executor.docker_ids
    assert not (tmp_path / "files" / "a").exists()
    await executor.close()


async def test_the_files_of_a_container_removed_without_a_docker_id_are_removed(tmp_path: Path) -> None:
    files = plain_dir(tmp_path / "files")
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    executor = Executor(FakeRuntime(), AssignmentBook(), reports.append, cluster=CLUSTER, node="n1",
                        address="127.0.0.1", files=files)
    c = with_secret(container("a", pb.DESIRED_STATE_REMOVED))
    await files.mount("a", c, files_of(c))  # written, then the create never made a container
    assert (tmp_path / "files" / "a").exists()
    await executor._apply(LocalAction(Kind.REMOVE, "a", c, None))
    assert not (tmp_path / "files" / "a").exists()
    await executor.close()
