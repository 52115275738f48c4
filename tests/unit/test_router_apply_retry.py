"""A routing table that could not be applied is tried again without waiting for a new one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import Router, RouterError, RouterSettings, supervisor


def fast_retrying_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Router:
    monkeypatch.setattr(supervisor, "RETRY_DELAY", 0.01)
    return Router(RouterSettings(state_dir=tmp_path, bind_address="127.0.0.1", port=19080))


async def test_a_failed_apply_is_retried_until_it_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    router = fast_retrying_router(tmp_path, monkeypatch)
    attempts: list[int] = []

    async def flaky_apply(table: pb.RoutingTable, certificates: object = None) -> supervisor.ApplyResult:
        attempts.append(table.version)
        if len(attempts) < 3:
            raise RouterError("haproxy did not reload within 10s")
        return supervisor.ApplyResult.RELOADED

    monkeypatch.setattr(router, "apply", flaky_apply)
    task = asyncio.create_task(router._applier())
    try:
        router.submit(pb.RoutingTable(cluster="c", version=7))
        for _ in range(500):
            if len(attempts) >= 3:
                break
            await asyncio.sleep(0.01)
        assert attempts == [7, 7, 7]  # retried with no new submit, then applied once
        await asyncio.sleep(0.1)
        assert attempts == [7, 7, 7]  # and not again after it succeeded
    finally:
        task.cancel()


async def test_a_newer_table_replaces_the_one_being_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    router = fast_retrying_router(tmp_path, monkeypatch)
    attempts: list[int] = []

    async def apply(table: pb.RoutingTable, certificates: object = None) -> supervisor.ApplyResult:
        attempts.append(table.version)
        if table.version == 1:
            router.submit(pb.RoutingTable(cluster="c", version=2))  # arrives while 1 fails
            raise RouterError("refused")
        return supervisor.ApplyResult.RELOADED

    monkeypatch.setattr(router, "apply", apply)
    task = asyncio.create_task(router._applier())
    try:
        router.submit(pb.RoutingTable(cluster="c", version=1))
        for _ in range(500):
            if 2 in attempts:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert attempts == [1, 2]
    finally:
        task.cancel()
