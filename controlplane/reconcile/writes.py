"""Collect guarded writes during a reconcile pass, then commit them in bounded transactions.

Every write is guarded by the ``mod_revision`` the pass read from the cache (or by "must
not exist" for a new key). If the cache was behind, etcd refuses the transaction, the
pass fails with ``Conflict`` and is retried with backoff once the cache has caught up:
optimistic concurrency, never a lost update. Writes are split into transactions of at
most ``MAX_OPS`` keys because etcd refuses larger ones (``--max-txn-ops``, 128 by
default); each chunk is consistent on its own and the next pass finishes the rest.

A savepoint (:meth:`Writes.savepoint`, :meth:`Writes.rollback`) undoes what one object's
planning added when that planning fails halfway, so a failure belongs to its object: the
writes of the other objects in the pass still commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from controlplane.store.errors import AlreadyExists, Conflict, NotFound
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

MAX_OPS = 100


@dataclass
class _Write:
    key: str
    value: Message | None  # None: delete
    revision: int  # 0: the key must not exist (create) / exist (delete without rv)
    kind: str
    name: str
    # Prefixes deleted in the same transaction as this key (what an application owns).
    prefixes: tuple[str, ...] = ()

    @property
    def ops(self) -> int:
        return 1 + len(self.prefixes)


class Writes:
    def __init__(self, *, tolerate_conflicts: bool = False) -> None:
        self._writes: dict[str, _Write] = {}
        self._extra: list[tuple[str, Message]] = []
        # With tolerate_conflicts, a chunk that meets a concurrent write is skipped (and
        # counted) while the other chunks still commit; the caller replans.
        self.tolerate_conflicts = tolerate_conflicts
        self.conflicts = 0
        # (key, the write it replaced): what a rollback restores, newest last.
        self._journal: list[tuple[str, _Write | None]] = []

    def __len__(self) -> int:
        return len(self._writes) + len(self._extra)

    def savepoint(self) -> tuple[int, int]:
        """A mark that :meth:`rollback` returns to."""
        return len(self._journal), len(self._extra)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget every write and event added since ``mark``."""
        journal_len, extra_len = mark
        while len(self._journal) > journal_len:
            key, prior = self._journal.pop()
            if prior is None:
                self._writes.pop(key, None)
            else:
                self._writes[key] = prior
        del self._extra[extra_len:]

    def pending(self) -> list[tuple[str, Message | None, int]]:
        """(key, value or None for a delete, guard revision) of every write not yet committed."""
        return [(w.key, w.value, w.revision) for w in self._writes.values()]

    def events(self) -> list[Message]:
        """The unguarded puts (events) not yet committed."""
        return [value for _, value in self._extra]

    def put(self, key: str, value: Message, revision: int, kind: str, name: str) -> None:
        """Create (revision 0) or update (revision = the one read) ``key``."""
        prior = self._writes.get(key)
        self._journal.append((key, prior))
        if prior is not None:
            revision = prior.revision  # a second write in one pass keeps the first guard
        self._writes[key] = _Write(key, value, revision, kind, name)

    def delete(
        self, key: str, revision: int, kind: str, name: str, *, with_prefixes: tuple[str, ...] = ()
    ) -> None:
        """Delete ``key``; ``with_prefixes`` are range-deleted in the same transaction."""
        prior = self._writes.get(key)
        self._journal.append((key, prior))
        if prior is not None and prior.revision == 0 and prior.value is not None and not with_prefixes:
            del self._writes[key]  # created and deleted in the same pass: nothing to do
            return
        self._writes[key] = _Write(key, None, prior.revision if prior else revision, kind, name,
                                   with_prefixes)

    def has(self, key: str) -> bool:
        return key in self._writes

    def deleted_keys(self) -> set[str]:
        return {k for k, w in self._writes.items() if w.value is None}

    def event(self, key: str, value: Message) -> None:
        """An unguarded put (events): rides along with the first transaction."""
        self._extra.append((key, value))

    async def commit(self, etcd: Etcd) -> int:
        writes = list(self._writes.values())
        extra = list(self._extra)
        committed = 0
        i = 0
        while i < len(writes) or extra:
            chunk: list[_Write] = []
            used = 0
            while i < len(writes) and (not chunk or used + writes[i].ops <= MAX_OPS):
                chunk.append(writes[i])
                used += writes[i].ops
                i += 1
            room = MAX_OPS - used
            events, extra = extra[:room], extra[room:]
            txn = Txn()
            for w in chunk:
                if w.value is None:
                    txn.require_revision(w.key, w.kind, w.name, w.revision).delete(w.key)
                    for prefix in w.prefixes:
                        txn.delete_prefix(prefix)
                elif w.revision == 0:
                    txn.create(w.key, w.value, w.kind, w.name)
                else:
                    txn.update(w.key, w.value, w.kind, w.name, w.revision)
            for key, value in events:
                txn.put(key, value)
            try:
                await txn.commit(etcd)
            except (Conflict, NotFound, AlreadyExists):
                if not self.tolerate_conflicts:
                    raise
                self.conflicts += 1
                continue
            committed += len(chunk)
        self._writes.clear()
        self._extra.clear()
        self._journal.clear()
        return committed
