"""Registry logins as the dispatcher reads them: cached, and dropped the moment one changes.

Why: every session message that assigns an image of a registry needs that registry's login
(:mod:`controlplane.dispatcher.pull_auth`), and a busy cluster sends many such messages per
second to every node; reading (and decrypting) the login from etcd for each one put the store on
the dispatcher's hot path. A login changes only by ``ccs registry login|rm`` (or a data-key
rotation that re-seals it), so it is read once per (cluster, host) and kept until a watch on the
secrets prefix (:func:`controlplane.store.follow.follow_prefix`, as the token cache does) says
its keys changed.

No stale password is ever sent: an entry is kept only while the watch runs (it is dropped, and
every read goes to etcd, from a break until the watch starts again), and only when it was read
at a revision at least as new as the last change the watch reported for it (a change that lands
between the read and the keeping is not lost: the read is then not kept). A login that cannot be
read (Corrupt) is not kept: each message tries again, as before. Decrypted passwords stay in this
server's memory, as the keyring's data keys do; never in a log (``Login.__repr__``).
"""

from __future__ import annotations

import asyncio

from controlplane.store import keys
from controlplane.store.etcd import WatchedChange
from controlplane.store.follow import follow_prefix

from .logins import KIND, Login, Logins

#: Entries (and remembered changes) kept at most; past that the cache starts empty again.
LIMIT = 10_000


class LoginCache:
    def __init__(self, logins: Logins, limit: int = LIMIT) -> None:
        self.logins = logins
        self.limit = limit
        self._entries: dict[tuple[str, str], Login | None] = {}
        self._changed: dict[tuple[str, str], int] = {}  # the newest change revision the watch reported
        self._live = False  # the watch runs: entries may be answered from
        self._generation = 0  # bumped when what is held is dropped: a read begun before is not kept
        self.revision = 0  # the newest change of the secrets prefix the watch reported
        self._advanced = asyncio.Event()
        self.following = asyncio.Event()  # set while the watch runs

    async def get(self, cluster: str, host: str) -> Login | None:
        """``host``'s login in ``cluster`` (None: it has none); Corrupt when it cannot be read."""
        key = (cluster, host)
        if self._live and key in self._entries:
            return self._entries[key]
        generation = self._generation
        login, revision = await self.logins.read(cluster, host)
        if self._live and generation == self._generation and revision >= self._changed.get(key, 0):
            if len(self._entries) >= self.limit:
                self._drop()
            else:
                self._entries[key] = login
        return login

    async def caught_up(self, revision: int) -> None:
        """Wait until the watch has reported every change up to ``revision`` (tests: no clock)."""
        while self.revision < revision:
            await self._advanced.wait()

    def _advance(self, revision: int) -> None:
        self.revision = revision
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def follow(self, retry: float = 1.0) -> None:
        """Keep the cache true to etcd; runs until cancelled (start it beside the server)."""
        await follow_prefix(self.logins.store.etcd, keys.SECRETS, on_start=self._start, on_batch=self._changes,
                            on_break=self._stop, retry=retry)

    def _start(self, revision: int) -> None:
        self._drop()
        self._live = True
        self._advance(revision)
        self.following.set()

    def _stop(self) -> None:
        self._live = False
        self.following.clear()
        self._drop()

    def _drop(self) -> None:
        self._entries.clear()
        self._changed.clear()
        self._generation += 1

    def _changes(self, batch: list[WatchedChange]) -> None:
        for change in batch:
            parts = change.kv.key[len(keys.SECRETS):].split("/")  # cluster/kind/name/version
            if len(parts) != 4 or parts[1] != KIND:
                continue
            key = (parts[0], parts[2])
            self._entries.pop(key, None)
            self._changed[key] = change.revision
        if batch:
            self._advance(batch[-1].revision)
        if len(self._changed) > self.limit:
            self._drop()
