"""Test doubles for the reconcilers' unit tests: an etcd key space in memory, and one cluster.

The reconcilers' input is the informer's cache and their output is guarded transactions, so
they can be tested without etcd if both ends behave as the real ones do:

- :class:`FakeEtcd` evaluates a transaction's compares the way etcd does (``create_revision``
  0 means absent, ``mod_revision`` equal, ``version`` 0 over a range means empty), applies all
  of its operations at one new revision or none of them, answers the failure branch's reads
  (which :class:`~controlplane.store.txn.Txn` turns into ``Conflict``/``NotFound``/...), and
  refuses a transaction over ``--max-txn-ops``. It is a stand-in for the store only in unit
  tests of pure logic; everything that talks to etcd is tested against the real one.
- Each committed write is delivered to the real :class:`Informer` as one watch batch, through
  the informer's own code (``_apply_batch``), so listeners such as the orchestrator hear of it
  as they would in production. With ``hold`` set, batches wait for :meth:`FakeEtcd.deliver`:
  a cache that lags behind etcd, which is how a guarded write meets a conflict.
- :class:`Cluster` is one cluster's state over that pair, with builders for applications and
  services, and :meth:`Cluster.run`, one pass driven as the orchestrator drives it.

(Not named ``test_*``: it holds no tests.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from aetcd import rpc
from google.protobuf.message import Message

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, Informer
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.containment import ClusterFailures
from controlplane.reconcile.orchestrator import plan_pass
from controlplane.reconcile.writes import Writes
from controlplane.store import keys
from controlplane.store.codec import decode, encode
from controlplane.store.errors import StoreUnavailable, TooLarge
from controlplane.store.etcd import KV, Etcd, RangeResult, WatchedChange
from tests.unit.test_planner_helpers import at, node, service

C = "c1"
GARBAGE = b"\x00not a protobuf\xff\xff"
BAD_CONSTRAINT = ("node.colour==blue",)  # unknown key: the scheduler raises InvalidSpecError


def _cmp(result: int, have: int, want: int) -> bool:
    if result == rpc.Compare.EQUAL:
        return have == want
    if result == rpc.Compare.GREATER:
        return have > want
    if result == rpc.Compare.LESS:
        return have < want
    return have != want  # NOT_EQUAL


class FakeEtcd:
    """An etcd key space in memory that checks guards as etcd does (see the module docstring)."""

    max_txn_ops = 128

    def __init__(self) -> None:
        self.kvs: dict[str, KV] = {}
        self.revision = 1
        self.informer: Informer | None = None
        self.hold = False  # True: the informer lags until deliver()
        self.unavailable = False  # True: every transaction fails as an unreachable etcd does
        self._undelivered: list[list[WatchedChange]] = []
        self.refused = 0  # transactions whose compares failed
        self.last_write_revision = 0  # as Etcd's: the newest write committed through txn (this server's)

    # -- what the tests use ------------------------------------------------------------
    def put(self, key: str, raw: bytes) -> int:
        """A write from outside the pass (an agent's status, an API call): its own revision."""
        return self._write([(key, raw)])

    def delete(self, key: str) -> int:
        return self._write([(key, None)])

    def deliver(self) -> None:
        """Let the informer catch up with every committed write."""
        batches, self._undelivered = self._undelivered, []
        for batch in batches:
            self._feed(batch)

    def values(self, prefix: str) -> dict[str, bytes]:
        return {k: kv.value for k, kv in sorted(self.kvs.items()) if k.startswith(prefix)}

    # -- the part of the Etcd interface that Txn, Writes and Informer._list use -------------
    def check_fits(self, request: Any) -> None:
        ops = max(len(request.compare), len(request.success), len(request.failure))
        if ops > self.max_txn_ops:
            raise TooLarge("operations", ops, self.max_txn_ops)

    async def txn(self, compare: list[Any], success: list[Any], failure: list[Any] | None = None, *,
                  checked: bool = False) -> tuple[bool, Any]:
        failure = failure or []
        if self.unavailable:
            raise StoreUnavailable("etcd is unreachable (FakeEtcd.unavailable)")
        self.check_fits(rpc.TxnRequest(compare=compare, success=success, failure=failure))
        ok = all(self._holds(c) for c in compare)
        resp = rpc.TxnResponse(succeeded=ok)
        if not ok:
            self.refused += 1
            for op in failure:
                assert op.WhichOneof("request") == "request_range", "failure branches only read"
                resp.responses.append(rpc.ResponseOp(response_range=self._range_response(op.request_range)))
            resp.header.revision = self.revision
            return False, resp
        changes: list[tuple[str, bytes | None]] = []
        for op in success:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                changes.append((op.request_put.key.decode(), op.request_put.value))
            elif kind == "request_delete_range":
                r = op.request_delete_range
                changes.extend((k, None) for k in self._keys(r.key, r.range_end))
            else:
                raise NotImplementedError(f"FakeEtcd: {kind} in a success branch")
        revision = self._write(changes) if changes else self.revision
        if changes:
            self.last_write_revision = max(self.last_write_revision, revision)
        resp.header.revision = revision
        return True, resp

    async def get(self, key: str) -> KV | None:
        return (await self.get_with_revision(key))[0]

    async def get_with_revision(self, key: str) -> tuple[KV | None, int]:
        """As etcd's: the record and the store's revision at the read (the newest, which the
        informer may not have applied yet while ``hold`` is set)."""
        return self.kvs.get(key), self.revision

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0,
                    keys_only: bool = False) -> RangeResult:
        assert revision in (0, self.revision), "FakeEtcd keeps no history"
        found = [kv for k, kv in sorted(self.kvs.items()) if k.startswith(prefix) and (start is None or k >= start)]
        more = bool(limit) and len(found) > limit
        found = found[:limit] if limit else found
        return RangeResult(found, more, self.revision)

    # -- internals ---------------------------------------------------------------------
    def _keys(self, key: bytes, range_end: bytes) -> list[str]:
        if not range_end:
            return [key.decode()] if key.decode() in self.kvs else []
        return [k for k in sorted(self.kvs) if key <= k.encode() < range_end]

    def _holds(self, c: Any) -> bool:
        target = c.target
        if c.range_end:
            assert target == rpc.Compare.VERSION and c.version == 0 and c.result == rpc.Compare.EQUAL, \
                "FakeEtcd: only the 'range is empty' compare is supported over a range"
            return not self._keys(c.key, c.range_end)
        kv = self.kvs.get(c.key.decode())
        if target == rpc.Compare.CREATE:
            return _cmp(c.result, kv.create_revision if kv else 0, c.create_revision)
        if target == rpc.Compare.MOD:
            return _cmp(c.result, kv.mod_revision if kv else 0, c.mod_revision)
        raise NotImplementedError(f"FakeEtcd: compare target {target}")

    def _range_response(self, r: Any) -> Any:
        out = rpc.RangeResponse()
        for k in self._keys(r.key, r.range_end)[: r.limit or None]:
            kv = self.kvs[k]
            out.kvs.append(rpc.KeyValue(key=k.encode(), mod_revision=kv.mod_revision,
                                        create_revision=kv.create_revision,
                                        value=b"" if r.keys_only else kv.value))
        return out

    def _write(self, changes: list[tuple[str, bytes | None]]) -> int:
        self.revision += 1
        rev = self.revision
        batch = []
        for key, raw in changes:
            prior = self.kvs.get(key)
            if raw is None:
                if prior is None:
                    continue
                del self.kvs[key]
                batch.append(WatchedChange(rev, True, KV(key, b"", rev, 0), prior.value))
            else:
                kv = KV(key, raw, rev, prior.create_revision if prior else rev)
                self.kvs[key] = kv
                batch.append(WatchedChange(rev, False, kv, prior.value if prior else None))
        if batch:
            if self.hold:
                self._undelivered.append(batch)
            else:
                self._feed(batch)
        return rev

    def _feed(self, batch: list[WatchedChange]) -> None:
        if self.informer is not None:
            # As Informer._follow does: only cluster objects and the clusters' own keys.
            self.informer._apply_batch(batch)


class Cluster:
    """One cluster kept in a :class:`FakeEtcd` and followed by a real informer.

    ``failures`` is the pass's book of failing objects (the orchestrator keeps one per cluster);
    ``events()`` reads back the events the passes wrote.
    """

    def __init__(self) -> None:
        self.etcd = FakeEtcd()
        self.informer = self._new_informer()
        self.failures = ClusterFailures()
        self.etcd.put(keys.cluster(C), encode(pb.Cluster()))
        self.put(keys.node(C, "n1"), node("n1", heartbeat=0.0))
        # n1's agent has a session on an API replica, which vouches for it (dispatcher.liveness).
        self.etcd.put(keys.alive(C, "n1", "r1"), b"r1")

    def _new_informer(self) -> Informer:
        informer = Informer(cast(Etcd, self.etcd))
        self.etcd.informer = informer
        return informer

    @property
    def state(self) -> ClusterState:
        return self.informer.clusters[C]

    @property
    def stored(self) -> dict[str, KV]:
        return self.etcd.kvs

    def put(self, key: str, value: Message) -> int:
        return self.etcd.put(key, encode(value))

    def put_raw(self, key: str, raw: bytes) -> int:
        return self.etcd.put(key, raw)

    def delete(self, key: str) -> None:
        self.etcd.delete(key)

    async def relist(self) -> None:
        """A new leader: its informer lists what is stored, with no earlier good copies, and
        its failure book is empty."""
        self.informer = self._new_informer()
        await self.informer._list()
        self.failures = ClusterFailures()

    def add_app(self, name: str, **services: int) -> None:
        a = pb.Application(cluster=C, spec=pb.ApplicationSpec(desired_state=pb.DESIRED_STATE_RUNNING))
        a.meta.name = name
        self.put(keys.app(C, name), a)
        for svc, replicas in services.items():
            self.put_service(name, svc, replicas)

    def put_service(self, app: str, name: str, replicas: int, constraints: tuple[str, ...] = (),
                    **kw: Any) -> None:
        s = service(name, replicas=replicas, **kw)
        s.application, s.cluster = app, C
        s.spec.placement.constraints.extend(constraints)
        self.put(keys.service(C, app, name), s)

    def service(self, app: str, name: str) -> pb.Service:
        return self.state.services[(app, name)]

    def running(self, app: str, svc: str) -> list[pb.Container]:
        return [c for c in self.state.containers_of(app, svc)
                if c.node and c.desired_state == pb.DESIRED_STATE_RUNNING]

    async def run(self, seconds: float, dirty: set[tuple[str, str]] | None = None) -> ClusterPass:
        """One pass at ``seconds`` (both clocks), committed; ``dirty`` None means a full pass.

        Commits as the orchestrator does (the releases' transaction first) and asserts that no
        write met a newer revision: the cache is never behind here unless a test holds it.
        """
        full = dirty is None
        if dirty is None:  # as the orchestrator's full pass: every service, every record's service
            dirty = set(self.state.services) | {k for k, v in self.state.by_service.items() if v}
        p, release_writes = await plan_pass(
            self.state, set(dirty), full,
            failures=self.failures, now=at(seconds), mono_now=seconds,
            heartbeat_period=timedelta(seconds=5), down_grace=timedelta(seconds=30))
        await release_writes.commit(cast(Etcd, self.etcd))
        await p.writes.commit(cast(Etcd, self.etcd))
        assert p.writes.conflicts == 0, "a write was guarded by a stale revision"
        p.record_outcome()
        return p

    def events(self) -> list[pb.Event]:
        return list(self.events_by_key().values())

    def events_by_key(self) -> dict[str, pb.Event]:
        """The stored events by key (keys sort by time, so the oldest first)."""
        return {k: decode(KV(k, v, 0, 0), pb.Event) for k, v in self.etcd.values(keys.events(C)).items()}

    def warnings(self, reason: str) -> list[pb.Event]:
        return [e for e in self.events() if e.type == "Warning" and e.reason == reason]


def deleted(writes: Writes) -> set[str]:
    """The keys a pass's pending writes delete."""
    return {key for key, value, _ in writes.pending() if value is None}
