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

A write may *need* other keys (a placed container needs its node's subnet allocation):
when a needed key is written in the same ``Writes`` it is committed in the same or an
earlier chunk, and a chunk that does not carry it guards on its existence, so a container
never lands in etcd pointing at a subnet that did not (the chunk fails like a conflict).
Guards count against etcd's operation limit too, so chunks are cut on writes + guards.

An event that tells of a write (:meth:`Writes.event_with`) is attached to it: it commits in
the chunk that carries the write, or not at all when that chunk meets a conflict, so the
event log never says a container was stopped when its record was not changed. Other events
(:meth:`Writes.event`) ride along with the first chunk that has room.

A write may be *bound* to another (:meth:`Writes.bind`): it commits in the transaction of
that write, never without it. Fencing needs this: a node's raised ``fence_epoch`` and the
containers stamped with it are one fact, so a heartbeat that changes the node record first
makes the whole unit conflict, and no container is ever fenced with an epoch the node lost.
Chunks are never cut inside a unit; the caller keeps a unit within ``MAX_OPS``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    needs: tuple[str, ...] = ()
    # Events put in the same transaction as this write (they tell of it).
    events: tuple[tuple[str, Message], ...] = ()
    # The key of the write this one commits with (see Writes.bind); "" when free.
    bound_to: str = ""

    @property
    def ops(self) -> int:
        return 1 + len(self.prefixes) + len(self.events)


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
        # The etcd revision of the last chunk committed (0: none yet). Kept even when a later
        # chunk raises: what landed must be in the cache before anyone plans from it again.
        self.last_revision = 0

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
        """The unguarded puts (events) not yet committed: those attached to a write, then the others."""
        return [value for w in self._writes.values() for _, value in w.events] + [value for _, value in self._extra]

    def put(
        self, key: str, value: Message, revision: int, kind: str, name: str, *, needs: tuple[str, ...] = ()
    ) -> None:
        """Create (revision 0) or update (revision = the one read) ``key``; see ``needs`` above."""
        prior = self._writes.get(key)
        self._journal.append((key, prior))
        if prior is not None:
            revision = prior.revision  # a second write in one pass keeps the first guard
        self._writes[key] = _Write(key, value, revision, kind, name, needs=needs,
                                   events=prior.events if prior else (),
                                   bound_to=prior.bound_to if prior else "")

    def delete(
        self, key: str, revision: int, kind: str, name: str, *, with_prefixes: tuple[str, ...] = ()
    ) -> None:
        """Delete ``key``; ``with_prefixes`` are range-deleted in the same transaction."""
        prior = self._writes.get(key)
        self._journal.append((key, prior))
        if prior is not None and prior.revision == 0 and prior.value is not None and not with_prefixes:
            del self._writes[key]  # created and deleted in the same pass: nothing to do, nothing to tell
            return
        self._writes[key] = _Write(key, None, prior.revision if prior else revision, kind, name,
                                   prefixes=with_prefixes, events=prior.events if prior else (),
                                   bound_to=prior.bound_to if prior else "")

    def has(self, key: str) -> bool:
        return key in self._writes

    def deletes(self, key: str) -> bool:
        """A delete of ``key`` is pending. O(1): callers ask per object, and building the set of
        deleted keys for each would cost the pass's writes every time."""
        w = self._writes.get(key)
        return w is not None and w.value is None

    def event(self, key: str, value: Message) -> None:
        """An unguarded put (events): rides along with the first transaction."""
        self._extra.append((key, value))

    def event_with(self, write_key: str, key: str, value: Message) -> bool:
        """Put ``value`` at ``key`` in the transaction that carries the pending write of
        ``write_key``, and only if that one commits. False (nothing added) when no write of
        ``write_key`` is pending: an event tells of a write, never of nothing."""
        w = self._writes.get(write_key)
        if w is None:
            return False
        self._journal.append((write_key, w))
        self._writes[write_key] = replace(w, events=(*w.events, (key, value)))
        return True

    def bind(self, key: str, to: str) -> bool:
        """Commit the pending write of ``key`` in the transaction of the pending write of
        ``to`` (one unit: both or neither). False (nothing bound) unless both are pending."""
        w = self._writes.get(key)
        if w is None or to not in self._writes or key == to:
            return False
        self._journal.append((key, w))
        self._writes[key] = replace(w, bound_to=to)
        return True

    async def commit(self, etcd: Etcd) -> int:
        writes = _bound_with_anchor(_needed_first(list(self._writes.values())))
        extra = list(self._extra)
        committed = 0
        while writes or extra:
            chunk, needed = _chunk(writes)
            writes = writes[len(chunk):]
            room = MAX_OPS - sum(w.ops for w in chunk)
            events, extra = extra[:room], extra[room:]
            txn = Txn()
            for key in needed:
                txn.require_present(key, "needed key", key)
            for w in chunk:
                if w.value is None:
                    txn.require_revision(w.key, w.kind, w.name, w.revision).delete(w.key)
                    for prefix in w.prefixes:
                        txn.delete_prefix(prefix)
                elif w.revision == 0:
                    txn.create(w.key, w.value, w.kind, w.name)
                else:
                    txn.update(w.key, w.value, w.kind, w.name, w.revision)
                for key, value in w.events:
                    txn.put(key, value)
            for key, value in events:
                txn.put(key, value)
            try:
                self.last_revision = max(self.last_revision, await txn.commit(etcd))
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
    # Never at their own place: before their first needer, or at the end. (Skipping only those
    # still deferred wrote one twice when it came after its needers, and the second copy failed
    # a whole chunk.)
    moving = set(deferred)
    out: list[_Write] = []
    for w in writes:
        if w.key in moving:
            continue
        for k in w.needs:
            if k in deferred:
                out.append(deferred.pop(k))
        out.append(w)
    out.extend(deferred.values())
    return out


def _bound_with_anchor(writes: list[_Write]) -> list[_Write]:
    """Move each bound write to just after the write it is bound to, so a unit is contiguous
    (a needed write stays before the writes needing it: it may land in an earlier chunk,
    which the needs guard covers)."""
    bound: dict[str, list[_Write]] = {}
    present = {x.key for x in writes}
    for w in writes:
        if w.bound_to and w.bound_to in present:
            bound.setdefault(w.bound_to, []).append(w)
    if not bound:
        return writes
    members = {id(w) for ws in bound.values() for w in ws}
    out: list[_Write] = []
    for w in writes:
        if id(w) in members:
            continue
        out.append(w)
        out.extend(bound.get(w.key, ()))
    return out


def _unit_len(writes: list[_Write]) -> int:
    """How many writes at the front of ``writes`` form one unit (a write and those bound to it)."""
    n = 1
    while n < len(writes) and writes[n].bound_to == writes[0].key:
        n += 1
    return n


def _chunk(writes: list[_Write]) -> tuple[list[_Write], list[str]]:
    """The next chunk from the front of ``writes``, and the needed keys it must guard on.

    etcd counts a transaction's compares and its operations separately against
    ``--max-txn-ops``: the guards (one per write plus one per needed key written elsewhere)
    stay within ``MAX_OPS``, and so do the operations (a delete that takes the prefixes an
    application owns counts one per prefix).
    """
    chunk: list[_Write] = []
    in_chunk: set[str] = set()
    needed: list[str] = []
    ops = 0
    i = 0
    while i < len(writes):
        # A unit (a write and those bound to it) goes into one chunk whole or waits for the next.
        unit = writes[i:i + _unit_len(writes[i:])]
        unit_keys = {w.key for w in unit}
        extra: list[str] = []
        for w in unit:
            extra += [k for k in w.needs if k not in in_chunk and k not in unit_keys
                      and k not in needed and k not in extra]
        unit_ops = sum(w.ops for w in unit)
        if chunk and (len(chunk) + len(needed) + len(unit) + len(extra) > MAX_OPS or ops + unit_ops > MAX_OPS):
            break
        chunk.extend(unit)
        in_chunk |= unit_keys
        needed.extend(extra)
        ops += unit_ops
        i += len(unit)
        if ops >= MAX_OPS:
            break
    return chunk, needed
