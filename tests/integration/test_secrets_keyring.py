"""The secrets store on a real etcd of its own (nothing else writes to it, so revisions count
transactions): rotation in bounded transactions, a write racing a rotation, and the key file
a server must be given."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import agent_pb2, resources_pb2
from controlplane.dispatcher.outgoing import attach
from controlplane.pki.keywrap import create_master_key
from controlplane.secrets.keyring import Keyring, SecretsKeyError
from controlplane.secrets.store import SecretStore, write_version
from controlplane.store import AlreadyExists, Corrupt, NotFound, keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import ROOT, EtcdProc, free_port, start_etcd, start_server

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]


@pytest.fixture
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path_factory.mktemp("secrets-etcd"))
    yield proc
    proc.stop()


async def store_on(etcd: Etcd, key_file: Path, cluster: str = "c") -> SecretStore:
    await Txn().put(keys.cluster(cluster), b"").commit(etcd)
    return SecretStore(etcd, await Keyring.load_or_create(etcd, key_file))


async def test_rotation_reencrypts_in_transactions_of_at_most_batch_values(own_etcd: EtcdProc, tmp_path: Path) -> None:
    etcd = Etcd([own_etcd.url])
    key_file = tmp_path / "secrets.key"
    store = await store_on(etcd, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for i in range(25):
        await store.add("c", "secret", f"s{i}", f"value-{i}".encode(), new=True)
    _, before = await etcd.get_with_revision("/ccs/")
    generation, count = await store.keyring.rotate(lambda g, k: store.reencrypt(g, k, 10))
    _, after = await etcd.get_with_revision("/ccs/")
    # The rotation's hold, one revision for the new data key, three re-encryption transactions
    # (10 + 10 + 5), one delete, the hold's release.
    assert (generation, count, after - before) == (2, 25, 7)
    for i in range(25):
        v = await store.get("c", "secret", f"s{i}", None)
        assert v.key_generation == 2 and await store.value(v) == f"value-{i}".encode()
    assert [kv.key for kv in (await etcd.range(keys.SECRET_KEYS)).kvs] == [f"{keys.SECRET_KEYS}000002"]
    # Another server given the same file reads them; a fresh keyring (no cache) included.
    other = SecretStore(etcd, await Keyring.load_or_create(etcd, key_file))
    assert await other.value(await other.get("c", "secret", "s3", None)) == b"value-3"


async def test_a_value_written_under_the_old_key_during_a_rotation_is_moved_too(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    """A writer that read the old generation before the rotation stored the new key writes
    its value under the old key after the re-encryption's scan: the old key must not be
    deleted under it. Made to happen deterministically by writing from inside the re-encryption."""
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    await store.add("c", "secret", "a", b"first", new=True)
    old_key = await store.keyring.key(1)
    late = store.reencrypt
    calls = 0

    async def reencrypt(generation: int, data_key: bytes) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        result = await late(generation, data_key, 10)
        if calls == 1:  # after the scan: a slow writer lands its value sealed with generation 1
            stale = SecretStore(etcd, store.keyring)
            stale.keyring._keys[1] = old_key

            async def old_current() -> tuple[int, bytes]:
                return 1, old_key

            stale.keyring.current = old_current  # type: ignore[method-assign]
            await stale.add("c", "secret", "b", b"late", new=True)
            del stale.keyring.current
        return result

    generation, count = await store.keyring.rotate(reencrypt)
    assert calls == 2 and count == 2, "the late value must have made the rotation scan again"
    v = await store.get("c", "secret", "b", None)
    assert v.key_generation == generation and await store.value(v) == b"late"


async def test_a_server_without_the_secrets_key_file_or_with_another_refuses_to_start(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    await store.add("c", "secret", "a", b"x", new=True)
    with pytest.raises(SecretsKeyError, match=r"does not exist: copy the secrets key file of the first server"):
        await Keyring.load_or_create(etcd, tmp_path / "missing.key")
    other = tmp_path / "other.key"
    create_master_key(other)
    with pytest.raises(SecretsKeyError, match=r"is wrapped by secrets key [0-9a-f]{16}, but .*other.key holds key"):
        await Keyring.load_or_create(etcd, other)
    # The data key in etcd holds neither the file's key nor the data key in clear.
    stored = json.loads((await etcd.range(keys.SECRET_KEYS)).kvs[0].value)
    assert (tmp_path / "secrets.key").read_text().strip() not in json.dumps(stored)
    assert dt.datetime.fromisoformat(stored["created_at"])


def test_every_server_given_the_file_decrypts_and_one_with_another_key_refuses_to_start(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
    b = start_server(tmp_path / "b", own_etcd.url, tmp_path / "b.yaml", expect_token=False,
                     extra=["--secrets-key-file", str(tmp_path / "a" / "secrets.key")])
    b.token = a.token
    try:
        async def scenario() -> None:
            async with a.client() as client:
                await client.clusters.create("pair")
                await client.configs.create("pair", "conf", b"made-on-a")
            async with b.client() as client:
                assert (await client.configs.get("pair", "conf")).data == b"made-on-a"
                await client.configs.update("pair", "conf", b"made-on-b")
                rotated = await client.secrets.rotate_key()
            async with a.client() as client:
                got = await client.configs.get("pair", "conf")
                assert (got.version, got.data, rotated.key_generation) == (2, b"made-on-b", 2)

        asyncio.run(scenario())
    finally:
        b.stop()
        a.stop()
    other = tmp_path / "other.key"
    create_master_key(other)
    state = tmp_path / "c"
    state.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{free_port()}",
         "--node-listen", f"127.0.0.1:{free_port()}", "--http-listen", "127.0.0.1:0", "--state-dir", str(state),
         "--etcd", own_etcd.url,
         "--client-config", str(tmp_path / "c.yaml"), "--master-key-file", str(tmp_path / "a" / "master.key"),
         "--secrets-key-file", str(other), "--log-format", "json", "--metrics-listen", "127.0.0.1:0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    said = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "is wrapped by secrets key" in said and str(other) in said, said


async def test_a_write_sealed_under_a_generation_rotated_away_meanwhile_is_never_stored(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    """A deploy prepares its value under generation 1, a whole rotation completes (generation 1
    is deleted), then the deploy's transaction commits: it must fail, naming the key, rather
    than store a value nobody can decrypt. ``add`` in the same position seals again and stores
    a readable value."""
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    prepared, is_new = await store.prepare("c", "secret", "app_db", b"pw-from-deploy", "app")
    assert is_new and prepared.key_generation == 1
    old = await store.keyring.current()
    await store.keyring.rotate(lambda g, k: store.reencrypt(g, k, 50))
    with pytest.raises(NotFound, match="generation 1"):
        await write_version(Txn(), prepared).commit(etcd)
    assert await store.versions("c", "secret", "app_db") == []

    # add: its first attempt reads the generation rotated away (as a writer that read it just
    # before the rotation's delete), the second the current one.
    calls = 0
    current = store.keyring.current

    async def stale_once() -> tuple[int, bytes]:
        nonlocal calls
        calls += 1
        return old if calls == 1 else await current()

    store.keyring.current = stale_once  # type: ignore[method-assign]
    v = await store.add("c", "secret", "b", b"late", new=True)
    del store.keyring.current
    assert calls == 2 and v.key_generation == 2
    fresh = SecretStore(etcd, await Keyring.load_or_create(etcd, tmp_path / "secrets.key"))
    assert await fresh.value(await fresh.get("c", "secret", "b", None)) == b"late"


async def test_rotations_run_one_at_a_time_and_never_move_a_value_to_a_deleted_key(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    """Two rotations through two replicas: the second, started while the first waits inside its
    re-encryption, is refused and stores nothing; the first completes and every value decrypts.
    A re-encryption whose generation was deleted under it stops and moves nothing, and values
    under a newer generation are left alone."""
    etcd = Etcd([own_etcd.url])
    key_file = tmp_path / "secrets.key"
    store = await store_on(etcd, key_file)
    for i in range(5):
        await store.add("c", "secret", f"s{i}", f"v{i}".encode(), new=True)
    other = SecretStore(etcd, await Keyring.load_or_create(etcd, key_file))  # a second replica
    inside, gate = asyncio.Event(), asyncio.Event()

    async def slow(generation: int, data_key: bytes) -> tuple[int, int]:
        inside.set()
        await gate.wait()
        return await store.reencrypt(generation, data_key, 50)

    first = asyncio.create_task(store.keyring.rotate(slow))
    await inside.wait()  # the first holds the rotation and has stored generation 2
    with pytest.raises(AlreadyExists, match="another rotate-key is running"):
        await other.keyring.rotate(lambda g, k: other.reencrypt(g, k, 50))
    gen_keys = [kv.key for kv in (await etcd.range(keys.SECRET_KEYS)).kvs]
    assert gen_keys == [f"{keys.SECRET_KEYS}000001", f"{keys.SECRET_KEYS}000002"]
    gate.set()
    assert await first == (2, 5)
    assert await etcd.get(keys.SECRET_ROTATION) is None  # released: the next one may run
    assert (await other.keyring.rotate(lambda g, k: other.reencrypt(g, k, 50)))[0] == 3
    check = SecretStore(etcd, await Keyring.load_or_create(etcd, key_file))
    for i in range(5):
        v = await check.get("c", "secret", f"s{i}", None)
        assert v.key_generation == 3 and await check.value(v) == f"v{i}".encode()

    # A re-encryption to a generation not stored (a rotation whose key another deleted) moves nothing.
    with pytest.raises(NotFound, match="generation 4"):
        await check.reencrypt(4, os.urandom(32), 50)
    # One to generation 2 (a slower, older rotation) leaves the values under generation 3 alone.
    assert (await check.reencrypt(2, os.urandom(32), 50))[0] == 0
    for i in range(5):
        v = await check.get("c", "secret", f"s{i}", None)
        assert v.key_generation == 3 and await check.value(v) == f"v{i}".encode()


async def test_a_value_whose_data_key_is_gone_is_corrupt_and_the_rest_of_the_message_goes_through(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    """A stored value naming a generation that is not stored reads as Corrupt naming its key
    (not a key error that would end the node's session on every complete set), and the
    dispatcher sends the message without that value but with the others."""
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    await store.add("c", "secret", "good", b"good-value", new=True)
    broken = await store.add("c", "secret", "lost", b"lost-value", new=True)
    kv = await etcd.get(broken.key)
    assert kv is not None
    doc = json.loads(kv.value)
    doc["key_generation"] = 7  # as if sealed under a generation since deleted
    await Txn().put(broken.key, json.dumps(doc).encode()).commit(etcd)
    lost = await store.get("c", "secret", "lost", None)
    with pytest.raises(Corrupt) as err:
        await store.value(lost)
    assert broken.key in str(err.value) and "generation 7" in str(err.value) and "lost-value" not in str(err.value)

    def assignment(name: str) -> agent_pb2.Assignment:
        a = agent_pb2.Assignment(action=agent_pb2.Assignment.ACTION_UPDATE)
        a.container.spec.secrets.add(name=name, version=1)
        return a

    msg = agent_pb2.SessionMessage(assignments=[assignment("lost"), assignment("good")])
    out = await attach(store, None, "c", msg)
    assert [[(f.name, f.data) for f in a.files] for a in out.assignments] == [[], [("good", b"good-value")]]


async def test_route_certificates_go_beside_the_routing_table(own_etcd: EtcdProc, tmp_path: Path) -> None:
    """A message carrying the routing table gets the value of every secret version its routes
    name for HTTPS (once each, whichever routes share it; of one secret for one domain, the
    newest, which the routers use), a value that is gone is left out, and the table itself
    holds only the references."""
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    await store.add("c", "secret", "crt", b"pem-v1", new=True)
    await store.add("c", "secret", "crt", b"pem-v2", new=False)
    msg = agent_pb2.SessionMessage()
    for domain, name, version in (("a.test", "crt", 2), ("b.test", "crt", 2), ("a.test", "crt", 1),
                                  ("d.test", "gone", 1)):
        msg.routing.routes.add(domain=domain, tls=resources_pb2.RouteTLS(secret=name, version=version))
    msg.routing.routes.add(domain="plain.test")
    out = await attach(store, None, "c", msg)
    assert [(f.kind, f.name, f.version, f.data) for f in out.route_certificates] == [
        ("secret", "crt", 2, b"pem-v2")]  # a.test's crt@1 is not what its routers use
    msg.routing.routes.add(domain="c.test", tls=resources_pb2.RouteTLS(secret="crt", version=1))
    out = await attach(store, None, "c", msg)
    assert [(f.name, f.version) for f in out.route_certificates] == [("crt", 1), ("crt", 2)]
    assert not msg.route_certificates  # the hub's message (shared by sessions) is left alone
    assert b"pem-v" not in out.routing.SerializeToString()


async def test_rotation_splits_large_values_into_transactions_etcd_accepts(own_etcd: EtcdProc, tmp_path: Path) -> None:
    """Three values of 500 KiB (the limit) exceed etcd's 1.5 MiB request limit together: the
    rotation splits them by size too (2 + 1 transactions), and leaves one generation."""
    etcd = Etcd([own_etcd.url])
    store = await store_on(etcd, tmp_path / "secrets.key")
    for i in range(3):
        await store.add("c", "secret", f"big{i}", bytes([65 + i]) * (500 * 1024), new=True)
    _, before = await etcd.get_with_revision("/ccs/")
    assert await store.keyring.rotate(lambda g, k: store.reencrypt(g, k, 50)) == (2, 3)
    _, after = await etcd.get_with_revision("/ccs/")
    # The hold, the new key, two re-encryption transactions (2 values, then 1), the delete, the release.
    assert after - before == 6
    assert [kv.key for kv in (await etcd.range(keys.SECRET_KEYS)).kvs] == [f"{keys.SECRET_KEYS}000002"]
    for i in range(3):
        v = await store.get("c", "secret", f"big{i}", None)
        assert v.key_generation == 2 and await store.value(v) == bytes([65 + i]) * (500 * 1024)


async def test_two_first_starts_with_different_key_files_the_loser_refuses(own_etcd: EtcdProc, tmp_path: Path) -> None:
    """Two servers start on an empty etcd with separate state directories: both see no data key,
    one stores generation 1; the other must refuse (naming the key files), not keep a file key
    that opens nothing. Made deterministic by the loser's first read answering empty."""
    winner_etcd, loser_etcd = Etcd([own_etcd.url]), Etcd([own_etcd.url])
    await Keyring.load_or_create(winner_etcd, tmp_path / "a.key")
    real_range = loser_etcd.range
    calls = 0

    async def first_read_before_the_winner(prefix: str, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real_range("/nothing-here/" if calls == 1 else prefix, **kw)

    loser_etcd.range = first_read_before_the_winner  # type: ignore[method-assign]
    with pytest.raises(SecretsKeyError, match="secrets key"):
        await Keyring.load_or_create(loser_etcd, tmp_path / "b.key")
    assert calls == 1


async def test_a_damaged_data_key_is_reported_as_the_secrets_keys_not_the_master_keys(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    etcd = Etcd([own_etcd.url])
    await Keyring.load_or_create(etcd, tmp_path / "secrets.key")
    where = f"{keys.SECRET_KEYS}000001"
    kv = await etcd.get(where)
    assert kv is not None
    doc = json.loads(kv.value)
    doc["key"] = base64.b64encode(bytes(60)).decode()  # the right key id, an altered wrapped key
    await Txn().put(where, json.dumps(doc).encode()).commit(etcd)
    with pytest.raises(SecretsKeyError) as err:
        await Keyring.load_or_create(etcd, tmp_path / "secrets.key")
    assert "secrets key" in str(err.value) and "master key" not in str(err.value)
