"""Collect guarded writes during a reconcile pass, then commit them in bounded transactions.

Every write is guarded by the ``mod_revision`` the pass read from the cache (or by "must
not exist" for a new key). If the cache was behind, etcd refuses the transaction, the
pass fails with ``Conflict`` and is retried with backoff once the cache has caught up:
optimistic concurrency, never a lost update. Writes are split into transactions of at
most ``MAX_OPS`` keys because etcd refuses larger ones (``--max-txn-ops``, 128 by
default); each chunk is consistent on its own and the next pass finishes the rest.

A write may *need* other keys (a placed container needs its node's subnet allocation):
when a needed key is written in the same ``Writes`` it is committed in the same or an
earlier chunk, and a chunk that does not carry it guards on its existence, so a container
never lands in etcd pointing at a subnet that did not (the chunk fails like a conflict).
Guards count against etcd's operation limit too, so chunks are cut on writes + guards.
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
    needs: tuple[str, ...] = ()


class Writes:
    def __init__(self, *, tolerate_conflicts: bool = False) -> None:
        self._writes: dict[str, _Write] = {}
        self._extra: list[tuple[str, Message]] = []
        # With tolerate_conflicts, a chunk that meets a concurrent write is skipped (and
        # counted) while the other chunks still commit; the caller replans.
        self.tolerate_conflicts = tolerate_conflicts
        self.conflicts = 0

    def __len__(self) -> int:
        return len(self._writes) + len(self._extra)

    def put(
        self, key: str, value: Message, revision: int, kind: str, name: str, *, needs: tuple[str, ...] = ()
    ) -> None:
        """Create (revision 0) or update (revision = the one read) ``key``; see ``needs`` above."""
        prior = self._writes.get(key)
        if prior is not None:
            revision = prior.revision  # a second write in one pass keeps the first guard
        self._writes[key] = _Write(key, value, revision, kind, name, needs)

    def delete(self, key: str, revision: int, kind: str, name: str) -> None:
        prior = self._writes.get(key)
        if prior is not None and prior.revision == 0 and prior.value is not None:
            del self._writes[key]  # created and deleted in the same pass: nothing to do
            return
        self._writes[key] = _Write(key, None, prior.revision if prior else revision, kind, name)

    def has(self, key: str) -> bool:
        return key in self._writes

    def deleted_keys(self) -> set[str]:
        return {k for k, w in self._writes.items() if w.value is None}

    def event(self, key: str, value: Message) -> None:
        """An unguarded put (events): rides along with the first transaction."""
        self._extra.append((key, value))

    async def commit(self, etcd: Etcd) -> int:
        writes = _needed_first(list(self._writes.values()))
        extra = list(self._extra)
        committed = 0
        while writes or extra:
            chunk, needed = _chunk(writes)
            writes = writes[len(chunk):]
            room = MAX_OPS - len(chunk)
            events, extra = extra[:room], extra[room:]
            txn = Txn()
            for key in needed:
                txn.require_present(key, "needed key", key)
            for w in chunk:
                if w.value is None:
                    txn.require_revision(w.key, w.kind, w.name, w.revision).delete(w.key)
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
        return committed


def _needed_first(writes: list[_Write]) -> list[_Write]:
    """Move each needed write to just before the first write that needs it.

    A pass allocates the blocks of all its placements before writing the containers; in this
    order a block and the containers needing it share a chunk, so no guard is needed and a
    chunk carries 100 writes instead of 50 writes and 50 guards.
    """
    needed = {k for w in writes for k in w.needs}
    if not needed:
        return writes
    deferred = {w.key: w for w in writes if w.key in needed and w.value is not None}
    out: list[_Write] = []
    for w in writes:
        if w.key in deferred:
            continue
        for k in w.needs:
            if k in deferred:
                out.append(deferred.pop(k))
        out.append(w)
    out.extend(deferred.values())
    return out


def _chunk(writes: list[_Write]) -> tuple[list[_Write], list[str]]:
    """The next chunk from the front of ``writes``, and the needed keys it must guard on.

    A chunk holds at most ``MAX_OPS`` writes, and its guards (one per write plus one per
    needed key written elsewhere) stay within ``MAX_OPS`` as well.
    """
    chunk: list[_Write] = []
    in_chunk: set[str] = set()
    needed: list[str] = []
    for w in writes:
        extra = [k for k in w.needs if k not in in_chunk and k not in needed]
        if chunk and len(chunk) + len(needed) + 1 + len(extra) > MAX_OPS:
            break
        chunk.append(w)
        in_chunk.add(w.key)
        needed.extend(extra)
        if len(chunk) >= MAX_OPS:
            break
    return chunk, needed
