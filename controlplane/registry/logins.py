"""The cluster's registry logins, sealed in the secrets store (kind ``registry``, named by host).

A login's value is JSON ``{username, password, ca_pem}``; only this module and the two places
that need the password (the digest lookup and the dispatcher's pull auth) ever open it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from controlplane.secrets.store import SecretStore, Version, write_version
from controlplane.store import AlreadyExists, Conflict, Corrupt, NotFound, keys
from controlplane.store.txn import Txn

KIND = "registry"


@dataclass(frozen=True)
class Login:
    host: str
    username: str
    password: str
    ca_pem: str
    created_at: dt.datetime
    insecure: bool = False

    def __repr__(self) -> str:  # never the password, whatever prints it
        return f"Login(host={self.host!r}, username={self.username!r})"


def _open(v: Version, plain: bytes) -> Login:
    try:
        doc = json.loads(plain)
        return Login(v.name, str(doc["username"]), str(doc["password"]), str(doc.get("ca_pem", "")), v.created_at,
                     bool(doc.get("insecure", False)))
    except (ValueError, KeyError, TypeError):
        raise Corrupt({v.key: "not a registry login record"}, f"registry login {v.name}") from None


class Logins:
    def __init__(self, store: SecretStore) -> None:
        self.store = store

    async def put(self, cluster: str, host: str, username: str, password: str, ca_pem: str,
                  insecure: bool = False) -> Login:
        """Store the login for ``host``, replacing any older one in the same transaction."""
        value = json.dumps({"username": username, "password": password, "ca_pem": ca_pem,
                            "insecure": insecure}).encode()
        for _ in range(8):
            v, new = await self.store.prepare(cluster, KIND, host, value, "")
            if not new:
                return _open(v, value)
            older = await self.store.versions(cluster, KIND, host)
            txn = Txn().require_present(keys.cluster(cluster), "cluster", cluster)
            for old in older:
                txn.require_revision(old.key, KIND, host, old.mod_revision).delete(old.key)
            write_version(txn, v)
            try:
                await txn.commit(self.store.etcd)
            except NotFound as exc:
                if exc.kind == "cluster":
                    raise
                continue  # a rotation deleted the data key it was sealed under: seal again
            except (AlreadyExists, Conflict):
                continue  # a concurrent login of the same host: read again
            return _open(v, value)
        raise Conflict(KIND, host, 0, 0)

    async def get(self, cluster: str, host: str) -> Login | None:
        return (await self.read(cluster, host))[0]

    async def read(self, cluster: str, host: str) -> tuple[Login | None, int]:
        """The login of ``host`` (None: the cluster has none) and the etcd revision it was read at."""
        versions, revision = await self.store.versions_read(cluster, KIND, host)
        if not versions:
            return None, revision
        return _open(versions[-1], await self.store.value(versions[-1])), revision

    async def list(self, cluster: str) -> list[Login]:
        out = []
        for versions in await self.store.list(cluster, KIND):
            out.append(_open(versions[-1], await self.store.value(versions[-1])))
        return out

    async def delete(self, cluster: str, host: str) -> None:
        await self.store.delete(cluster, KIND, host)
