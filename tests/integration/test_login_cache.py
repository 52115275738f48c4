"""The dispatcher's registry logins come from a cache, not from etcd per message
(controlplane.registry.login_cache), and the cache never answers with a login that changed.

Against a real etcd: the reads are counted at the store (every range under the secrets prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.dispatcher.outgoing import attach
from controlplane.registry.login_cache import LoginCache
from controlplane.registry.logins import Logins
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store import keys
from controlplane.store.etcd import Etcd, RangeResult
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc, start_etcd

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]

REGISTRY, OTHER = "127.0.0.1:5000", "registry.example.com"


class CountingEtcd(Etcd):
    """Counts the reads of registry logins (ranges under the secrets prefix)."""

    secret_reads = 0

    async def range(self, prefix: str, **kw: Any) -> RangeResult:
        if prefix.startswith(keys.SECRETS):
            self.secret_reads += 1
        return await super().range(prefix, **kw)


@pytest.fixture
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path_factory.mktemp("login-cache-etcd"))
    yield proc
    proc.stop()


@pytest.fixture
async def setup(own_etcd: EtcdProc, tmp_path: Path) -> AsyncIterator[tuple[CountingEtcd, Logins, LoginCache]]:
    etcd = CountingEtcd([own_etcd.url])
    await Txn().put(keys.cluster("c"), b"").commit(etcd)
    logins = Logins(SecretStore(etcd, await Keyring.load_or_create(etcd, tmp_path / "secrets.key")))
    await logins.put("c", REGISTRY, "ci", "pw-1", "")
    await logins.put("c", OTHER, "ci", "pw-other", "")
    cache = LoginCache(logins)
    task = asyncio.create_task(cache.follow(retry=0.05))
    await cache.following.wait()
    try:
        yield etcd, logins, cache
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await etcd.close()


def message(n: int) -> agent_pb2.SessionMessage:
    """``n`` assignments of images of two registries with logins and one without."""
    msg = agent_pb2.SessionMessage()
    for i in range(n):
        image = (f"{REGISTRY}/web:{i}", f"{OTHER}/api:1", "local/busybox:1")[i % 3]
        c = pb.Container(spec=pb.ServiceSpec(image=image))
        c.meta.id = f"c{i}"
        msg.assignments.add(action=agent_pb2.Assignment.ACTION_UPDATE, container=c)
    return msg


def passwords(msg: agent_pb2.SessionMessage) -> set[str]:
    return {a.pull_auth.password for a in msg.assignments if a.HasField("pull_auth")}


async def until_seen(etcd: Etcd, cache: LoginCache) -> None:
    """Wait until the cache's watch has reported every change made so far (no clock involved:
    the watch delivers them in order). This etcd's last write is always under the secrets prefix."""
    _, revision = await etcd.get_with_revision(keys.SECRETS)
    await cache.caught_up(revision)


async def test_many_dispatched_messages_read_each_login_once(
        setup: tuple[CountingEtcd, Logins, LoginCache]) -> None:
    """200 messages of 6 assignments each (two registries) cost two login reads in all, not two per message."""
    etcd, _, cache = setup
    before = etcd.secret_reads
    for _ in range(200):
        out = await attach(None, cache, "c", message(6))
        assert passwords(out) == {"pw-1", "pw-other"}
    assert etcd.secret_reads - before == 2


async def test_a_changed_or_removed_login_is_read_again(setup: tuple[CountingEtcd, Logins, LoginCache]) -> None:
    etcd, logins, cache = setup
    assert passwords(await attach(None, cache, "c", message(1))) == {"pw-1"}
    await logins.put("c", REGISTRY, "ci", "pw-2", "")  # `ccs registry login` again: a new version
    await until_seen(etcd, cache)
    before = etcd.secret_reads
    assert passwords(await attach(None, cache, "c", message(1))) == {"pw-2"}
    assert passwords(await attach(None, cache, "c", message(1))) == {"pw-2"}
    assert etcd.secret_reads - before == 1  # read once after the change, then cached again
    await logins.delete("c", REGISTRY)  # `ccs registry rm`
    await until_seen(etcd, cache)
    assert passwords(await attach(None, cache, "c", message(2))) == {"pw-other"}


async def test_while_the_watch_is_down_every_message_reads_etcd(
        setup: tuple[CountingEtcd, Logins, LoginCache]) -> None:
    """A cache whose watch has stopped may have missed a change: it answers nothing from memory."""
    etcd, logins, _ = setup
    stopped = LoginCache(logins)  # never followed: as between a break and the next start
    before = etcd.secret_reads
    for _ in range(3):
        assert passwords(await attach(None, stopped, "c", message(1))) == {"pw-1"}
    assert etcd.secret_reads - before == 3


async def test_a_change_reported_while_a_read_is_under_way_is_not_hidden_by_that_read(
        setup: tuple[CountingEtcd, Logins, LoginCache]) -> None:
    """The read began before a change the watch has already reported: what it read is answered
    once but not kept, so the next message reads the changed login."""
    etcd, logins, cache = setup
    read = logins.read
    changed = asyncio.Event()

    async def read_then_change(cluster: str, host: str) -> Any:
        got = await read(cluster, host)  # the old login, at the revision before the change
        await logins.put("c", REGISTRY, "ci", "pw-3", "")
        await until_seen(etcd, cache)  # the watch reports the change before this read returns
        changed.set()
        return got

    logins.read = read_then_change  # type: ignore[method-assign]
    assert passwords(await attach(None, cache, "c", message(1))) == {"pw-1"}
    assert changed.is_set()
    logins.read = read  # type: ignore[method-assign]
    assert passwords(await attach(None, cache, "c", message(1))) == {"pw-3"}
