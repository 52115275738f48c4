"""Stored versions of secrets and configs: add, read, list, delete, re-encrypt.

One etcd key per version (layout in the package docstring). Versions are numbered from 1 and
never reused while the name exists; a new version is written with ``require_absent`` on its key,
so two writers racing for the same number cannot both win (the loser reads again).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controlplane.pki.keywrap import MasterKeyError
from controlplane.secrets.envelope import EnvelopeError, digest, open_sealed, same_value, seal
from controlplane.secrets.keyring import Keyring, generation_key
from controlplane.store import AlreadyExists, Conflict, Corrupt, NotFound, keys
from controlplane.store.etcd import KV, Etcd
from controlplane.store.txn import Txn

ROOT = keys.SECRETS


def prefix(cluster: str, kind: str, name: str = "") -> str:
    return f"{keys.secrets(cluster)}{kind}/" + (f"{name}/" if name else "")


def version_key(cluster: str, kind: str, name: str, version: int) -> str:
    return f"{prefix(cluster, kind, name)}{version:010d}"


@dataclass(frozen=True)
class Version:
    cluster: str
    kind: str
    name: str
    version: int
    digest: str
    size: int
    created_at: dt.datetime
    key_generation: int
    application: str
    key: str
    mod_revision: int
    sealed: bytes


def parse_version(kv: KV) -> Version:
    """The stored version at ``kv`` (Corrupt naming the key if it is not one)."""
    # /ccs/secrets/{cluster}/{kind}/{name}/{version}
    parts = kv.key[len(ROOT):].split("/")
    try:
        cluster, kind, name, version = parts
        doc = json.loads(kv.value)
        return Version(cluster, kind, name, int(version), str(doc["digest"]), int(doc["size"]),
                       dt.datetime.fromisoformat(doc["created_at"]), int(doc["key_generation"]),
                       str(doc.get("application", "")), kv.key, kv.mod_revision,
                       base64.b64decode(doc["value"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise Corrupt({kv.key: f"not a stored secret version ({type(exc).__name__})"}, "secret") from None


KEY_KIND = "secrets data key"


def _require_key(txn: Txn, generation: int) -> Txn:
    """Guard a write sealed under ``generation`` on that data key still being stored: a rotation
    deletes the old generations once nothing is left under them, and a value committed after
    that would be sealed under a deleted key (lost). The guard fails with NotFound of kind
    :data:`KEY_KIND` naming the generation."""
    return txn.require_present(generation_key(generation), KEY_KIND,
                               f"generation {generation} (rotate-key replaced it meanwhile; try again)")


def write_version(txn: Txn, v: Version) -> Txn:
    """Add a prepared version to ``txn``; it fails (AlreadyExists) if another writer took the
    number, and (NotFound, kind :data:`KEY_KIND`) if its data key was rotated away meanwhile."""
    _require_key(txn, v.key_generation)
    return txn.require_absent(v.key, v.kind, f"{v.name}@{v.version}").put(v.key, _record(v))


def _record(v: Version) -> bytes:
    return json.dumps({"digest": v.digest, "size": v.size, "created_at": v.created_at.isoformat(),
                       "key_generation": v.key_generation, "application": v.application,
                       "value": base64.b64encode(v.sealed).decode()}).encode()


class SecretStore:
    def __init__(self, etcd: Etcd, keyring: Keyring) -> None:
        self.etcd, self.keyring = etcd, keyring

    async def versions(self, cluster: str, kind: str, name: str) -> list[Version]:
        return (await self.versions_read(cluster, kind, name))[0]

    async def versions_read(self, cluster: str, kind: str, name: str) -> tuple[list[Version], int]:
        """The versions of ``name`` and the etcd revision they were read at (for a cache that
        must know whether a change it was told of is newer than its read)."""
        res = await self.etcd.range(prefix(cluster, kind, name))
        return [parse_version(kv) for kv in res.kvs], res.revision

    async def add(self, cluster: str, kind: str, name: str, value: bytes, *, new: bool | None,
                  application: str = "") -> Version:
        """A new version of ``name`` holding ``value``. ``new``: True = the name must not exist
        (AlreadyExists), False = it must (NotFound), None = either. Writes nothing when the
        latest version already holds ``value`` and ``new`` is None (a redeploy of the same file)."""
        for _ in range(8):
            existing = await self.versions(cluster, kind, name)
            if new is True and existing:
                raise AlreadyExists(kind, name)
            if new is False and not existing:
                raise NotFound(kind, name)
            if new is None and existing and same_value(self.keyring.digest_key(), existing[-1].digest, value):
                return existing[-1]
            number = existing[-1].version + 1 if existing else 1
            key = version_key(cluster, kind, name, number)
            generation, data_key = await self.keyring.current()
            v = Version(cluster, kind, name, number, digest(self.keyring.digest_key(), value), len(value),
                        dt.datetime.now(dt.UTC), generation, application, key, 0, seal(data_key, value, key))
            txn = Txn().require_present(keys.cluster(cluster), "cluster", cluster)
            if new is True:
                txn.require_empty(prefix(cluster, kind, name), kind, name)
            _require_key(txn, generation)
            txn.require_absent(key, kind, f"{name}@{number}").put(key, _record(v))
            try:
                revision = await txn.commit(self.etcd)
            except AlreadyExists:
                if new is True:
                    raise
                continue  # another writer took this number: read again
            except NotFound as exc:
                if exc.kind != KEY_KIND:
                    raise
                continue  # a rotation deleted the generation it was sealed under: seal again
            return Version(**{**v.__dict__, "mod_revision": revision})
        raise Conflict(kind, name, 0, 0)

    async def prepare(self, cluster: str, kind: str, name: str, value: bytes, application: str
                      ) -> tuple[Version, bool]:
        """The version of ``name`` that holds ``value``: the latest if it already does (False),
        else the next one, sealed and not written (True) — for the caller's own transaction,
        with :func:`write_version` (a deploy writes its application's values with it)."""
        existing = await self.versions(cluster, kind, name)
        if existing and same_value(self.keyring.digest_key(), existing[-1].digest, value):
            return existing[-1], False
        number = existing[-1].version + 1 if existing else 1
        key = version_key(cluster, kind, name, number)
        generation, data_key = await self.keyring.current()
        return Version(cluster, kind, name, number, digest(self.keyring.digest_key(), value), len(value),
                       dt.datetime.now(dt.UTC), generation, application, key, 0, seal(data_key, value, key)), True

    async def get(self, cluster: str, kind: str, name: str, version: int | None) -> Version:
        """The version asked (None: the latest); NotFound naming ``name@version``. A pinned
        version is one key read (the dispatcher asks for every mounted file and route
        certificate), not a read of every version's ciphertext."""
        if version is not None and (kv := await self.etcd.get(version_key(cluster, kind, name, version))):
            return parse_version(kv)
        existing = await self.versions(cluster, kind, name)
        if not existing:
            raise NotFound(kind, name)
        if version is None:
            return existing[-1]
        for v in existing:
            if v.version == version:
                return v
        raise NotFound(kind, f"{name}@{version}")

    async def value(self, v: Version) -> bytes:
        """The plaintext of ``v``. Raises Corrupt (naming the key, never the value) if it does not
        decrypt, or if its data key cannot be had (its generation gone or damaged, or wrapped by
        another file key): to a caller, one value that cannot be read, like any damaged record."""
        try:
            data_key = await self.keyring.key(v.key_generation)
        except MasterKeyError as exc:  # SecretsKeyError, or the unwrap of a damaged data key
            raise Corrupt({v.key: f"its data key cannot be read: {exc}"}, f"{v.kind} {v.name}@{v.version}") from None
        try:
            return open_sealed(data_key, v.sealed, v.key)
        except EnvelopeError as exc:
            raise Corrupt({v.key: str(exc)}, f"{v.kind} {v.name}@{v.version}") from None

    async def list(self, cluster: str, kind: str) -> list[list[Version]]:
        """Every name's versions, oldest first, names in order."""
        res = await self.etcd.range(prefix(cluster, kind))
        out: dict[str, list[Version]] = {}
        for kv in res.kvs:
            v = parse_version(kv)
            out.setdefault(v.name, []).append(v)
        return list(out.values())

    async def owned(self, cluster: str, app: str) -> Sequence[tuple[str, str, str, int]]:
        """(kind, name, its prefix, the revision read at) of every secret and config application
        ``app`` made from its template (``file:``, ``environment:``, ``content:``)."""
        res = await self.etcd.range(keys.secrets(cluster))
        out: dict[tuple[str, str], tuple[str, str, str, int]] = {}
        for kv in res.kvs:
            v = parse_version(kv)
            if v.application == app:
                out[(v.kind, v.name)] = (v.kind, v.name, prefix(cluster, v.kind, v.name), res.revision)
        return sorted(out.values())

    async def delete(self, cluster: str, kind: str, name: str, guard: Iterable[tuple[str, int]] = ()) -> None:
        """Every version of ``name``, in one transaction; ``guard``: (prefix, revision) ranges
        that must be unchanged since the caller's read (the services that might mount it)."""
        if not await self.etcd.count(prefix(cluster, kind, name)):
            raise NotFound(kind, name)
        txn = Txn()
        for p, revision in guard:
            txn.require_unchanged(p, revision, "services", f"cluster {cluster!r}")
        await txn.delete_prefix(prefix(cluster, kind, name)).commit(self.etcd)

    async def reencrypt(self, generation: int, data_key: bytes, batch: int, passes: int = 20) -> tuple[int, int]:
        """Re-encrypt every stored value under an older generation than ``generation``, at most
        ``batch`` keys and etcd's request size per transaction (:func:`_batches`), each guarded
        on the values' mod_revision (a conflict re-reads) and on ``generation`` still being
        stored (a value is never moved to a deleted key: NotFound of kind :data:`KEY_KIND` stops
        it). A value under a newer generation is left alone.
        Returns (how many were re-encrypted, the revision of the final scan, which found none
        left); at most ``passes`` scans (then Conflict: values kept changing under it)."""
        done = 0
        for _ in range(passes):
            res = await self.etcd.range(ROOT)
            stale = [v for v in (parse_version(kv) for kv in res.kvs) if v.key_generation < generation]
            if not stale:
                return done, res.revision
            for group in _batches(stale, batch, self.etcd.request_budget()):
                txn = _require_key(Txn(), generation)
                for v in group:
                    plain = await self.value(v)
                    moved = Version(**{**v.__dict__, "key_generation": generation,
                                       "sealed": seal(data_key, plain, v.key)})
                    txn.require_revision(v.key, v.kind, f"{v.name}@{v.version}", v.mod_revision)
                    txn.put(v.key, _record(moved))
                try:
                    await txn.commit(self.etcd)
                    done += len(group)
                except NotFound as exc:
                    if exc.kind == KEY_KIND:
                        raise
                except Conflict:
                    pass  # changed or deleted meanwhile: the next scan sees it as it is now
        raise Conflict("secrets", "every cluster", 0, 0)


#: Bytes a value's re-encryption adds to a transaction besides its record: its key in the
#: compare, the put and the failure range, and protobuf framing (generous: the margin is cheap).
_PER_VALUE = 256


def _batches(stale: list[Version], batch: int, budget: int) -> list[list[Version]]:
    """``stale`` in groups of at most ``batch`` values whose re-encrypted records fit one etcd
    request (``budget`` bytes): three 500 KiB values exceed etcd's default 1.5 MiB. A re-sealed
    record has the size of the one read (same plaintext, same nonce and tag sizes)."""
    out: list[list[Version]] = []
    size = 0
    for v in stale:
        cost = len(_record(v)) + 3 * len(v.key) + _PER_VALUE
        if not out or len(out[-1]) >= batch or size + cost > budget:
            out.append([])
            size = 1024  # the transaction's own guard and framing
        out[-1].append(v)
        size += cost
    return out
