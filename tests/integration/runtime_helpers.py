"""Helpers for the tests of DockerRuntime against the real Docker Engine: containers of one
cluster label per session (removed at the end, so other engineers' sessions on the same daemon
are left alone), launching, and bounded waits on what the engine reports.

(Not named ``test_*``: it holds no tests. The fixtures are imported by the test modules.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import Observed, RuntimeEvent, State
from nodeagent.runtime.docker_engine import DockerRuntime

from .docker_fixtures import TestImages, docker_client, remove_cluster_objects, test_image  # noqa: F401

CLUSTER = f"rt{uuid.uuid4().hex[:8]}"
WAIT = 60.0  # generous bound on waiting for the engine: a hang fails, slowness does not


@pytest.fixture(scope="module")
def clean_engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:  # noqa: F811
    yield docker_client
    remove_cluster_objects(docker_client, CLUSTER)


@pytest.fixture
async def rt(
    clean_engine: docker.DockerClient,
    test_image: TestImages,  # noqa: F811
) -> AsyncIterator[DockerRuntime]:
    runtime = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER)
    yield runtime
    await runtime.aclose()


def container(
    app: str,
    service: str,
    image: str,
    *,
    slot: int = 1,
    generation: int = 1,
    **spec: Any,
) -> pb.Container:
    """A ccs container assignment in the test cluster."""
    c = pb.Container(
        meta=pb.Meta(id=uuid.uuid4().hex, name=f"{service}-{slot}"),
        cluster=CLUSTER,
        application=app,
        service=service,
        node="node-1",
        slot=slot,
        spec_generation=generation,
        app_revision=7,
        desired_state=pb.DESIRED_STATE_RUNNING,
    )
    c.spec.CopyFrom(pb.ServiceSpec(image=image, **spec))
    return c


async def launch(rt: DockerRuntime, c: pb.Container) -> str:
    await rt.prepare(c)
    docker_id = await rt.create(c)
    await rt.start(docker_id)
    return docker_id


async def wait_observed(rt: DockerRuntime, docker_id: str, ok: Callable[[Observed], bool], what: str) -> Observed:
    """Poll until `ok(observed)`; the bound only turns a hang into a failure."""
    deadline = time.monotonic() + WAIT
    while True:
        observed = await rt.inspect(docker_id)
        assert observed is not None, f"container {docker_id[:12]} vanished waiting for {what}"
        if ok(observed):
            return observed
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {State.Name(observed.state)} {observed.message!r}")
        await asyncio.sleep(0.1)


async def next_event(
    events: AsyncIterator[RuntimeEvent], match: Callable[[RuntimeEvent], bool]
) -> RuntimeEvent:
    async with asyncio.timeout(WAIT):
        async for event in events:
            if match(event):
                return event
    raise AssertionError("event stream ended")
