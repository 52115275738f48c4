"""``client.releases.wait`` rides out a restart of the server it waits on, as
``client.applications.wait`` does (a real etcd and a real ``ccs-server`` process, no agents).

Before: the release wait opened its own watch stream, so the restart ended the wait with
``Unavailable``. Now it watches through ``client.events.watch`` (which reconnects from the last
revision seen) and retries a re-read the restart interrupts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from tests.conftest import start_etcd, start_server

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

V1 = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    deploy: {replicas: 2}
"""


async def test_a_release_wait_survives_a_server_restart(tmp_path: Path, unique: str) -> None:
    etcd = start_etcd(tmp_path)
    fast = ["--shutdown-grace", "0.5"]  # the open watch would hold a stop for the default 10 s
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml", extra=fast)
    try:
        async with srv.client() as client:
            await client.clusters.create(unique)
            await client.applications.create(unique, "shop", V1)
            # No nodes: the blue-green release cannot progress by itself, so it is still going
            # when the server restarts, and ends only when a newer release supersedes it (the API
            # does that in the update's transaction: no planner, no timing involved).
            await client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
            first_read = asyncio.Event()
            phases: list[int] = []

            def progress(rel: pb.Release) -> None:
                phases.append(rel.status.phase)
                first_read.set()

            wait = asyncio.create_task(client.releases.wait(unique, "shop", timeout=90, on_progress=progress))
            await first_read.wait()
            # Stop the server while the waiter's loop runs (the process calls block: a thread),
            # and go on only once the waiter's own connection is seen gone: its watch stream has
            # failed by then. The old wait ended there with Unavailable (or, had the stream ended
            # cleanly, at its first poll of a stopped server).
            assert await asyncio.to_thread(srv.stop) == 0
            channel = client._channel
            state = channel.get_state()
            while state == grpc.ChannelConnectivity.READY:
                await channel.wait_for_state_change(state)
                state = channel.get_state()
            assert not wait.done() or wait.exception() is None, wait.exception()
            port = int(srv.address.rsplit(":", 1)[1])
            srv = await asyncio.to_thread(start_server, tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                                          port=port, extra=fast)
            async with srv.client() as other:  # not the waiter's channel
                await other._channel.channel_ready()  # grpc shares the waiter's backing-off connection
                await other.applications.update(unique, "shop", env={"TAG": "v3"})
            with pytest.raises(ccs.ReleaseFailed) as info:
                await wait
            assert (info.value.phase, info.value.message) == ("superseded", "superseded by r000002")
            assert phases[0] not in (pb.RELEASE_PHASE_ROLLED_BACK, pb.RELEASE_PHASE_SUCCEEDED)
    finally:
        srv.stop()
        etcd.stop()
