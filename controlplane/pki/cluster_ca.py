"""The cluster CA: created once per control plane, loaded by every server.

First start (no CA in etcd): generate the master key file unless one is there and a CA, and
store its key wrapped in one transaction guarded on the CA's absence, so two servers starting
at once on an empty etcd end with one CA (the loser reads the winner's). Every later start, on
any server: read it, unwrap it with the master key file, and refuse to start when the file is
missing or is another key, saying which key etcd needs.

The secrets of applications are not under this key: their data keys are wrapped by the key of
``--secrets-key-file`` (controlplane.secrets, which says why). A control plane from before that
holds an unused ``/ccs/pki/secrets-key``; nothing reads it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from controlplane.pki import certs
from controlplane.pki.keywrap import (
    MasterKeyError,
    create_master_key,
    key_id,
    read_master_key,
    unwrap,
    wrap,
)
from controlplane.store import AlreadyExists, keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn


@dataclass(frozen=True)
class ClusterKeys:
    ca_key: certs.PrivateKey
    ca_cert: x509.Certificate
    created: bool  # this start created them

    @property
    def ca_pem(self) -> bytes:
        return certs.cert_pem(self.ca_cert)

    @property
    def fingerprint(self) -> str:
        return certs.fingerprint(self.ca_cert)


def _record(master: bytes, value: bytes, where: str, extra: dict[str, str] | None = None) -> bytes:
    doc = {"key": base64.b64encode(wrap(master, value, where)).decode(), "master_key_id": key_id(master),
           **(extra or {})}
    return json.dumps(doc).encode()


def _open(master: bytes, raw: bytes, where: str, path: Path) -> tuple[dict[str, str], bytes]:
    try:
        doc = json.loads(raw)
        wrapped = base64.b64decode(doc["key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterKeyError(f"{where}: the stored record is damaged ({exc})") from None
    want = doc.get("master_key_id", "?")
    if want != key_id(master):
        raise MasterKeyError(
            f"{where} is wrapped by master key {want}, but {path} holds key {key_id(master)}: give "
            "this server the master key file of the first server of this control plane")
    return doc, unwrap(master, wrapped, where)


async def load_or_create(etcd: Etcd, master_key_file: Path, now: dt.datetime) -> ClusterKeys:
    for _ in range(3):
        ca_kv = await etcd.get(keys.PKI_CA)
        if ca_kv is not None:
            return await _load(etcd, master_key_file, ca_kv.value)
        master = await asyncio.to_thread(_read_or_create, master_key_file)
        ca_key, ca_cert = certs.new_ca(now)
        txn = Txn().require_absent(keys.PKI_CA, "cluster CA", "ca")
        txn.put(keys.PKI_CA, _record(master, certs.key_pem(ca_key), keys.PKI_CA,
                                     {"cert_pem": certs.cert_pem(ca_cert).decode(),
                                      "created_at": now.isoformat()}))
        try:
            await txn.commit(etcd)
        except AlreadyExists:
            continue  # another server created them a moment ago: load those
        return ClusterKeys(ca_key, ca_cert, created=True)
    raise RuntimeError("the cluster CA kept appearing and vanishing in etcd")


def _read_or_create(path: Path) -> bytes:
    return read_master_key(path) if path.exists() else create_master_key(path)


async def _load(etcd: Etcd, master_key_file: Path, ca_raw: bytes) -> ClusterKeys:
    if not await asyncio.to_thread(master_key_file.exists):
        try:
            want = json.loads(ca_raw).get("master_key_id", "?")
        except ValueError:
            want = "?"
        raise MasterKeyError(
            f"etcd holds this control plane's CA, wrapped by master key {want}, and {master_key_file} "
            "does not exist: copy the master key file of the first server here (--master-key-file)")
    master = await asyncio.to_thread(read_master_key, master_key_file)
    doc, key_bytes = _open(master, ca_raw, keys.PKI_CA, master_key_file)
    ca_cert = certs.load_cert(doc["cert_pem"].encode())
    ca_key = certs.load_key(key_bytes)
    return ClusterKeys(ca_key, ca_cert, created=False)
