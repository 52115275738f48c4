"""Store errors. They carry the resource kind and name so the API can say what failed."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class NotFound(StoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind, self.name = kind, name


class AlreadyExists(StoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists")
        self.kind, self.name = kind, name


class Conflict(StoreError):
    """A write carried a stale resource_version: someone else changed the object first."""

    def __init__(self, kind: str, name: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{kind} {name!r} was modified concurrently (resource_version {expected} is stale, "
            f"current is {actual}); re-read and retry"
        )
        self.kind, self.name, self.expected, self.actual = kind, name, expected, actual


class NotEmpty(StoreError):
    """A guarded range (e.g. a cluster's applications) gained a key concurrently."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{name} is not empty: {kind} were added concurrently; retry")
        self.kind, self.name = kind, name


class Compacted(StoreError):
    """A read or watch asked for a revision etcd has compacted away."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available is {compacted}); "
            "re-list and watch from the list's revision + 1"
        )
        self.requested, self.compacted = requested, compacted


class FutureRevision(StoreError):
    """A read asked for a revision etcd has not reached yet (a forged or foreign page token).

    Not an outage (etcd answered) and not retryable: the request itself is wrong.
    """

    def __init__(self, requested: int) -> None:
        super().__init__(f"revision {requested} is ahead of etcd's current revision")
        self.requested = requested


class TooLarge(StoreError):
    """A write is larger than etcd accepts in one transaction (operations or bytes).

    Not retryable and not an outage: etcd refused the request as given, nothing was written.
    ``what`` is ``"operations"`` (etcd's ``--max-txn-ops``) or ``"bytes"``
    (``--max-request-bytes``).
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        flag = "--max-txn-ops" if what == "operations" else "--max-request-bytes"
        unit = "operations in one transaction" if what == "operations" else "bytes in one request"
        super().__init__(f"the write needs {size} {unit}; etcd accepts at most {limit} ({flag})")
        self.what, self.size, self.limit = what, size, limit


class StoreUnavailable(StoreError):
    """etcd could not be reached or did not answer in time. Safe to retry."""


class Corrupt(StoreError):
    """Stored values that do not decode as the records their keys hold.

    As Kubernetes does for an object it cannot decrypt or decode (KEP-3926), a read names
    every such key instead of failing anonymously, so an operator knows what to rewrite or
    delete; the rest of the store is still served. Not retryable (the same bytes give the
    same answer) and not the request's fault. ``bad`` maps each etcd key to why it does not
    decode; ``what`` names the object or collection that was read, when the reader knows it.
    """

    def __init__(self, bad: dict[str, str], what: str = "") -> None:
        if len(bad) == 1:
            [(key, why)] = bad.items()
            detail = f"the stored record at {key} does not decode ({why})"
        else:
            detail = f"{len(bad)} stored records do not decode: " + ", ".join(
                f"{key} ({why})" for key, why in sorted(bad.items()))
        super().__init__(f"{what}: {detail}; rewrite or delete it" if what
                         else f"{detail}; rewrite or delete it")
        self.bad, self.what = dict(bad), what

    def named(self, what: str) -> Corrupt:
        """The same keys, reported as a read of ``what``."""
        return Corrupt(self.bad, what)
