"""The secrets data keys in etcd, wrapped by the key of ``--secrets-key-file``; their rotation.

See the package docstring for the design. A generation's data key never changes once stored,
so servers cache unwrapped keys by generation; "the current generation" is read from etcd at
every write, so a rotation made through another replica is followed at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from controlplane.pki.keywrap import KEY_BYTES, MasterKeyError, create_master_key, key_id, read_master_key, unwrap, wrap
from controlplane.store import AlreadyExists, Conflict, keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.secrets")

KEYS_PREFIX = keys.SECRET_KEYS
WHAT = "secrets key"
#: Seconds the rotation's hold outlives a server that died holding it.
ROTATION_TTL = 30


def generation_key(generation: int) -> str:
    return f"{KEYS_PREFIX}{generation:06d}"


class SecretsKeyError(MasterKeyError):
    """The secrets key file is missing, malformed, or not the one etcd's data keys are wrapped by."""


def _read_or_create(path: Path) -> bytes:
    return read_master_key(path, WHAT) if path.exists() else create_master_key(path, WHAT)


class Keyring:
    def __init__(self, etcd: Etcd, kek: bytes, path: Path) -> None:
        self.etcd, self._kek, self.path = etcd, kek, path
        self._keys: dict[int, bytes] = {}
        self._digest_key: bytes | None = None

    @classmethod
    async def load_or_create(cls, etcd: Etcd, path: Path) -> Keyring:
        """Read (or, on the first start of a control plane, generate) the file key; make sure a
        data key exists; refuse to start when etcd's data keys are wrapped by another file key."""
        res = await etcd.range(KEYS_PREFIX)
        if res.kvs and not await asyncio.to_thread(path.exists):
            want = json.loads(res.kvs[-1].value).get("kek_id", "?")
            raise SecretsKeyError(
                f"etcd holds secrets wrapped by secrets key {want}, and {path} does not exist: copy the "
                "secrets key file of the first server here (--secrets-key-file)")
        kek = await asyncio.to_thread(_read_or_create, path)
        ring = cls(etcd, kek, path)
        if res.kvs:
            await ring.key(ring._generation(res.kvs[-1].key))  # checks the file key now, not at first use
        else:
            try:
                await ring._store_new(1)
            except AlreadyExists:
                # Another server made it a moment ago, maybe with a file key of its own (two
                # first starts with separate state directories): check ours opens it.
                await ring.key(1)
        return ring

    @staticmethod
    def _generation(key: str) -> int:
        return int(key.rsplit("/", 1)[1])

    async def _store_new(self, generation: int) -> bytes:
        data_key = secrets.token_bytes(KEY_BYTES)
        where = generation_key(generation)
        doc = {"key": base64.b64encode(wrap(self._kek, data_key, where)).decode(), "kek_id": key_id(self._kek),
               "created_at": dt.datetime.now(dt.UTC).isoformat()}
        await Txn().require_absent(where, "secrets data key", str(generation)).put(
            where, json.dumps(doc).encode()).commit(self.etcd)
        self._keys[generation] = data_key
        return data_key

    def digest_key(self) -> bytes:
        """The key of the values' digests (:func:`controlplane.secrets.envelope.digest`), derived
        from the file key with HKDF (``cryptography``'s, the standard KDF for one key per
        purpose): the same on every server given the file, and not a data key, so a rotation
        leaves digests as they were."""
        if self._digest_key is None:
            self._digest_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                    info=b"ccs secrets value digests").derive(self._kek)
        return self._digest_key

    async def current(self) -> tuple[int, bytes]:
        """The newest data key generation and its key."""
        res = await self.etcd.range(KEYS_PREFIX, keys_only=True)
        if not res.kvs:
            raise SecretsKeyError("etcd holds no secrets data key (was /ccs/secretkeys/ deleted?); "
                                  "restart a server to create one")
        generation = self._generation(res.kvs[-1].key)
        return generation, await self.key(generation)

    async def key(self, generation: int) -> bytes:
        cached = self._keys.get(generation)
        if cached is not None:
            return cached
        where = generation_key(generation)
        kv = await self.etcd.get(where)
        if kv is None:
            raise SecretsKeyError(f"{where}: the data key of generation {generation} is gone")
        try:
            doc = json.loads(kv.value)
            wrapped = base64.b64decode(doc["key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SecretsKeyError(f"{where}: the stored record is damaged ({exc})") from None
        if doc.get("kek_id") != key_id(self._kek):
            raise SecretsKeyError(
                f"{where} is wrapped by secrets key {doc.get('kek_id', '?')}, but {self.path} holds key "
                f"{key_id(self._kek)}: give this server the secrets key file of the first server")
        try:
            data_key = unwrap(self._kek, wrapped, where, WHAT)
        except MasterKeyError as exc:
            raise SecretsKeyError(str(exc)) from None
        self._keys[generation] = data_key
        return data_key

    async def rotate(self, reencrypt: Callable[[int, bytes], Awaitable[tuple[int, int]]]) -> tuple[int, int]:
        """Store a new generation, have ``reencrypt(generation, key)`` move every value under it
        (it returns (count, the revision of its final scan, which found nothing left)), then delete
        the older generations, guarded on no value written since that scan and on the new
        generation still being stored. Returns (generation, count).

        One rotation at a time, in the whole control plane: two running together would each
        delete the generation the other moves values to (every value lost). The one running
        holds :data:`keys.SECRET_ROTATION` on a lease it keeps alive (a crashed server's hold
        ends with its lease); another is refused (AlreadyExists naming it) and stores nothing."""
        lease = await self.etcd.grant_lease(ROTATION_TTL)
        try:
            await Txn().require_absent(keys.SECRET_ROTATION, "secrets key rotation",
                                       "in progress (another rotate-key is running; run it again once it is done)"
                                       ).put(keys.SECRET_ROTATION, b"rotating", lease=lease).commit(self.etcd)
            keepalive = asyncio.create_task(self._keep_alive(lease), name="secrets-rotation-lease")
            try:
                return await self._rotate(reencrypt)
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
        finally:
            with contextlib.suppress(Exception):  # ends the hold at once (else: when the lease expires)
                await self.etcd.client.revoke_lease(lease)

    async def _keep_alive(self, lease: int) -> None:
        while True:
            await asyncio.sleep(ROTATION_TTL / 3)
            try:
                await self.etcd.client.refresh_lease(lease)
            except Exception as exc:  # the guards on the new generation keep the values safe
                log.warning("cannot renew the secrets rotation lease", error=str(exc)[:200])

    async def _rotate(self, reencrypt: Callable[[int, bytes], Awaitable[tuple[int, int]]]) -> tuple[int, int]:
        res = await self.etcd.range(KEYS_PREFIX, keys_only=True)
        old = [self._generation(kv.key) for kv in res.kvs]
        generation = (max(old) if old else 0) + 1
        data_key = await self._store_new(generation)
        total = 0
        for _ in range(20):
            count, revision = await reencrypt(generation, data_key)
            total += count
            txn = Txn().require_unchanged(keys.SECRETS, revision, "secrets", "every cluster")
            txn.require_present(generation_key(generation), "secrets data key", f"generation {generation}")
            for g in old:
                txn.delete(generation_key(g))
            try:
                await txn.commit(self.etcd)
            except Conflict:
                continue  # a value was written meanwhile (maybe under an old key): scan again
            for g in old:
                self._keys.pop(g, None)
            log.info("secrets data key rotated", generation=generation, reencrypted=total)
            return generation, total
        raise Conflict("secrets", "every cluster", 0, 0)
