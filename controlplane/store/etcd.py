"""A thin asyncio wrapper over ``aetcd``.

Why a wrapper: aetcd's ``get_prefix`` cannot page (no ``limit``, no ``revision``), its
errors are its own, and it connects to one endpoint. This class adds paged and
revision-pinned range reads (by calling the KV stub aetcd already holds), maps every
transport failure to :class:`StoreUnavailable` and a compacted revision to
:class:`Compacted`, and spreads one channel over several etcd members with gRPC's own
``ipv4:`` multi-address target so a dead member fails over without our code noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import grpc
from aetcd import rpc

from controlplane.store.errors import Compacted, FutureRevision, StoreUnavailable, TooLarge
from controlplane.store.etcd_tls import EtcdTls, TlsClient
from controlplane.store.keys import prefix_end

DEFAULT_TIMEOUT = 10.0
# etcd's defaults: an external etcd cannot be assumed to raise them.
DEFAULT_MAX_TXN_OPS = 128
DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024
# etcd measures its limit on the raft entry, which wraps the TxnRequest in a small header.
_REQUEST_MARGIN = 8 * 1024


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KV]
    more: bool
    revision: int


@dataclass(frozen=True, slots=True)
class WatchedChange:
    revision: int
    deleted: bool
    kv: KV
    prev_value: bytes | None


def _kv(raw: Any) -> KV:
    return KV(raw.key.decode(), raw.value, raw.mod_revision, raw.create_revision)


def _ops(request: Any) -> int:
    """What etcd counts against ``--max-txn-ops``: each list of a txn on its own."""
    if not isinstance(request, rpc.TxnRequest):
        return 0
    return max(len(request.compare), len(request.success), len(request.failure))


def parse_endpoints(endpoints: Sequence[str], tls: bool = False) -> list[tuple[str, int]]:
    """``http://127.0.0.1:2379`` or ``127.0.0.1:2379`` -> ``("127.0.0.1", 2379)``; with
    ``tls``, ``https://`` (and bare host:port) instead of ``http://``."""
    out = []
    scheme = "https" if tls else "http"
    for raw in endpoints:
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"{scheme}://{raw}")
        if parts.scheme != scheme:
            hint = ("pass --etcd-cacert (and --etcd-cert/--etcd-key) to use https:// endpoints"
                    if parts.scheme == "https" else
                    "with --etcd-cacert every endpoint must be https://" if tls else "")
            raise ValueError(f"etcd endpoint {raw!r}: only {scheme}:// endpoints are supported here"
                             + (f"; {hint}" if hint else ""))
        if not parts.hostname:
            raise ValueError(f"etcd endpoint {raw!r}: no host")
        out.append((parts.hostname, parts.port or 2379))
    if not out:
        raise ValueError("no etcd endpoint given")
    return out


class Etcd:
    """One connection (one gRPC channel) to an etcd cluster."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        cacert: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
    ) -> None:
        tls = EtcdTls.load(cacert, cert, key) if (cacert or cert or key) else None
        self.tls = tls is not None
        hosts = parse_endpoints(endpoints, tls=self.tls)
        # The limits etcd enforces on one transaction; writes are checked against them
        # before they are sent, so a too-large write is refused with the limit named.
        self.max_txn_ops = max_txn_ops
        self.max_request_bytes = max_request_bytes
        self.endpoints = [f"{h}:{p}" for h, p in hosts]
        if len(hosts) == 1:
            host, port = hosts[0]
        else:
            # aetcd builds the target as f"{host}:{port}"; give it gRPC's multi-address
            # form "ipv4:a:1,b:2,c:3" by folding all but the last port into the host.
            head = ",".join(f"{h}:{p}" for h, p in hosts[:-1])
            host, port = f"ipv4:{head},{hosts[-1][0]}", hosts[-1][1]
        self._timeout = timeout
        # The revision of the newest write made through this connection: reads served from
        # the watch cache wait until the cache has seen it (read-your-writes).
        self.last_write_revision = 0
        # Told (seconds, outcome) after every transaction: committed, conflict (a compare failed)
        # or error. The server's metrics set it (controlplane/metrics); None: nobody listens.
        self.on_txn: Callable[[float, str], None] | None = None
        options = {
            "grpc.keepalive_time_ms": 10_000,
            "grpc.keepalive_timeout_ms": 5_000,
            "grpc.max_receive_message_length": 64 * 1024 * 1024,
        }
        if tls is not None and len(hosts) > 1:  # one channel over several members: check them by the first's name
            tls = EtcdTls(tls.ca, tls.cert, tls.key, server_name=hosts[0][0])
        self._target, self._options, self._tls_material = f"{host}:{port}", options, tls
        if tls is not None:
            self._client: aetcd.Client = TlsClient(host=host, port=port, timeout=int(timeout), options=options,
                                                   tls=tls)
        else:
            self._client = aetcd.Client(host=host, port=port, timeout=int(timeout), options=options)

    def blocking_channel(self) -> grpc.Channel:
        """A synchronous gRPC channel to the same members with the same credentials, for a
        thread that must not wait for the event loop
        (:class:`controlplane.dispatcher.lease_keeper.LeaseKeeper`). The caller closes it."""
        options: list[tuple[str, str | int]] = list(self._options.items())
        if self._tls_material is None:
            return grpc.insecure_channel(self._target, options=options)
        if self._tls_material.server_name:
            options.append(("grpc.ssl_target_name_override", self._tls_material.server_name))
        return grpc.secure_channel(self._target, self._tls_material.credentials(), options=options)

    @property
    def client(self) -> aetcd.Client:
        return self._client

    async def connect(self) -> None:
        try:
            await self._client.connect()
        except aetcd.exceptions.ClientError as e:
            raise StoreUnavailable(f"cannot connect to etcd at {self.endpoints}: {e}") from e

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()

    async def wait_ready(self, deadline: float = 30.0) -> None:
        """Block until etcd answers a read, or raise StoreUnavailable."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        last: Exception | None = None
        while loop.time() < end:
            try:
                await self.connect()
                await self.get("/ccs/ping")
                return
            except StoreUnavailable as e:
                last = e
                await asyncio.sleep(0.2)
        raise StoreUnavailable(f"etcd at {self.endpoints} not ready after {deadline}s: {last}")

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout, metadata=self._client.metadata)
        except grpc.aio.AioRpcError as e:
            details = e.details() or ""
            if e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
                raise Compacted(getattr(request, "revision", 0), 0) from e
            if e.code() == grpc.StatusCode.OUT_OF_RANGE and "future revision" in details:
                raise FutureRevision(getattr(request, "revision", 0)) from e
            # etcd refusing the request as given is not an outage: say what it refused.
            if "too many operations in txn request" in details:
                raise TooLarge("operations", _ops(request), self.max_txn_ops) from e
            if "request is too large" in details or (
                e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details
            ):
                raise TooLarge("bytes", request.ByteSize(), self.max_request_bytes) from e
            raise StoreUnavailable(f"etcd: {e.code().name}: {e.details()}") from e

    async def _stub(self) -> Any:
        await self.connect()
        return self._client.kvstub

    async def get(self, key: str) -> KV | None:
        stub = await self._stub()
        resp = await self._call(stub.Range, rpc.RangeRequest(key=key.encode()))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def get_with_revision(self, key: str) -> tuple[KV | None, int]:
        stub = await self._stub()
        resp = await self._call(stub.Range, rpc.RangeRequest(key=key.encode()))
        return (_kv(resp.kvs[0]) if resp.kvs else None), resp.header.revision

    async def range(
        self,
        prefix: str,
        *,
        start: str | None = None,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> RangeResult:
        """Keys under ``prefix`` in key order, from ``start`` (inclusive) if given.

        ``revision`` pins the read to a past revision (consistent paging); a compacted
        one raises :class:`Compacted`.
        """
        stub = await self._stub()
        req = rpc.RangeRequest(
            key=(start or prefix).encode(),
            range_end=prefix_end(prefix),
            limit=limit,
            revision=revision,
            keys_only=keys_only,
            count_only=count_only,
        )
        resp = await self._call(stub.Range, req)
        return RangeResult([_kv(kv) for kv in resp.kvs], bool(resp.more), resp.header.revision)

    async def count(self, prefix: str, revision: int = 0) -> int:
        """How many keys are under ``prefix`` (at ``revision``, if given); etcd counts them."""
        stub = await self._stub()
        req = rpc.RangeRequest(key=prefix.encode(), range_end=prefix_end(prefix), count_only=True,
                               revision=revision)
        resp = await self._call(stub.Range, req)
        return int(resp.count)

    def request_budget(self) -> int:
        """The bytes a transaction may take (etcd's limit less the margin :meth:`check_fits` keeps),
        for a writer that splits its work into requests (the secrets key rotation)."""
        return self.max_request_bytes - _REQUEST_MARGIN

    def check_fits(self, request: Any) -> None:
        """Raise :class:`TooLarge` if etcd would refuse this TxnRequest for its size."""
        if _ops(request) > self.max_txn_ops:
            raise TooLarge("operations", _ops(request), self.max_txn_ops)
        size = request.ByteSize()
        if size > self.max_request_bytes - _REQUEST_MARGIN:
            raise TooLarge("bytes", size, self.max_request_bytes)

    def fits(self, compare: list[Any], success: list[Any], failure: list[Any]) -> bool:
        """Whether etcd would take this transaction (its operation count and size)."""
        try:
            self.check_fits(rpc.TxnRequest(compare=compare, success=success, failure=failure))
        except TooLarge:
            return False
        return True

    async def txn(
        self, compare: list[Any], success: list[Any], failure: list[Any] | None = None, *, checked: bool = False
    ) -> tuple[bool, Any]:
        """Run one etcd transaction with raw ``rpc.Compare`` / ``rpc.RequestOp`` messages.
        ``checked``: the caller has just asked :meth:`fits` about these very lists (not again)."""
        req = rpc.TxnRequest(compare=compare, success=success, failure=failure or [])
        if not checked:
            self.check_fits(req)
        stub = await self._stub()
        t0 = time.perf_counter()
        try:
            resp = await self._call(stub.Txn, req)
        except BaseException:
            if self.on_txn is not None:
                self.on_txn(time.perf_counter() - t0, "error")
            raise
        if self.on_txn is not None:
            self.on_txn(time.perf_counter() - t0, "committed" if resp.succeeded else "conflict")
        if resp.succeeded and success:
            self.last_write_revision = max(self.last_write_revision, int(resp.header.revision))
        return bool(resp.succeeded), resp

    async def grant_lease(self, ttl: int) -> int:
        await self.connect()
        try:
            lease = await self._client.lease(ttl)
        except aetcd.exceptions.ClientError as e:
            raise StoreUnavailable(f"etcd lease grant failed: {e}") from e
        return int(lease.id)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchedChange]]:
        """Changes under ``prefix`` from ``start_revision`` (inclusive), one revision at a time.

        Each yielded list holds every change of one etcd revision (one transaction), so
        a consumer that remembers the last revision it finished can resume at +1 with no
        gap and no duplicate. That is why this talks to etcd's Watch stub directly:
        aetcd's watch iterator flattens responses into single events and loses the
        revision boundaries. Raises :class:`Compacted` when the start revision is gone
        and :class:`StoreUnavailable` when the stream breaks.
        """
        await self.connect()
        stub = rpc.WatchStub(self._client.channel)
        create = rpc.WatchCreateRequest(
            key=prefix.encode(),
            range_end=prefix_end(prefix),
            start_revision=start_revision,
            prev_kv=True,
        )
        requests: asyncio.Queue[Any] = asyncio.Queue()
        await requests.put(rpc.WatchRequest(create_request=create))

        async def outgoing() -> AsyncIterator[Any]:
            while True:
                item = await requests.get()
                if item is None:
                    return
                yield item

        call = stub.Watch(outgoing(), metadata=self._client.metadata)
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise Compacted(start_revision, int(resp.compact_revision))
                if resp.canceled:
                    raise StoreUnavailable(f"etcd canceled the watch: {resp.cancel_reason}")
                batch: list[WatchedChange] = []
                for ev in resp.events:
                    kv = _kv(ev.kv)
                    if batch and batch[-1].revision != kv.mod_revision:
                        yield batch
                        batch = []
                    batch.append(
                        WatchedChange(
                            revision=kv.mod_revision,
                            deleted=ev.type == rpc.Event.DELETE,
                            kv=kv,
                            prev_value=ev.prev_kv.value if ev.HasField("prev_kv") else None,
                        )
                    )
                if batch:
                    yield batch
        except grpc.aio.AioRpcError as e:
            raise StoreUnavailable(f"etcd watch broke: {e.code().name}: {e.details()}") from e
        finally:
            await requests.put(None)
            call.cancel()

    async def compact(self, revision: int) -> None:
        await self.connect()
        await self._client.compact(revision, physical=True)
