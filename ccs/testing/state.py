"""The fake's state (objects by path, a revision counter, the watch history), the helpers tests
use to seed what agents and reconcilers would write, and the real server's error messages.

The messages are the server's, word for word (``controlplane/store/errors.py``,
``controlplane/names.py``, ``controlplane/auth.py``); ``tests/contract`` checks that they
still are.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeAlias

import grpc
from google.protobuf.message import Message

from ccs.container_states import RUNNING_STATES
from ccs.errors import REASON_ETCD_UNAVAILABLE, REASON_KEY
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Ctx", "FakeState", "fail"]

Ctx: TypeAlias = Any  # grpc.aio.ServicerContext; grpc ships no type information
Key: TypeAlias = tuple[str, ...]  # (kind, cluster, ...names)
_KINDS = {
    resources_pb2.Cluster: "cluster",
    resources_pb2.Node: "node",
    resources_pb2.Application: "application",
    resources_pb2.Service: "service",
    resources_pb2.Container: "container",
    resources_pb2.Event: "event",
    resources_pb2.Release: "release",  # WatchEvent has no field for it: sent without object
}
_EVENT_FIELDS = frozenset(f.name for f in api_pb2.WatchEvent.DESCRIPTOR.fields)
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MAX_REPLICAS = 1000
NO_TOKEN = "missing bearer token (metadata 'authorization: Bearer <token>')"
BAD_TOKEN = "invalid or revoked token"
ETCD_DOWN = "etcd is unavailable: cannot verify the token"


async def fail(ctx: Ctx, code: grpc.StatusCode, message: str) -> NoReturn:
    """Abort the call (``abort`` raises; the assertion only tells the type checker)."""
    await ctx.abort(code, message)
    raise AssertionError("unreachable: abort raises")


class FakeState:
    """Every object of the fake keyed by its path, committed one revision at a time."""

    def __init__(self, token: str | None = "test-token", page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size
        self.revision = 1
        self.objects: dict[Key, Message] = {}
        self.history: list[api_pb2.WatchEvent] = []
        self.history_clusters: list[str] = []  # the cluster of each history entry
        self.compacted = 0  # revisions <= this are gone from history
        self.watch_faults: list[int] = []
        self.watch_fault_code = grpc.StatusCode.UNAVAILABLE
        self.watch_requests: list[api_pb2.WatchRequest] = []
        self.watch_kinds: frozenset[str] | None = None  # set: other kinds are INVALID_ARGUMENT
        self.etcd_unavailable = False
        self.corrupt_records: dict[Key, tuple[str, str]] = {}  # key -> (etcd key, why)
        self.revisions: dict[tuple[str, str], list[resources_pb2.ApplicationRevision]] = {}
        self.routes: dict[str, resources_pb2.RoutingTable] = {}
        # Called as hook(api, cluster, app) after an application create/update is written: a
        # test's stand-in for the reconciler and agents (e.g. to seed containers).
        self.reconcile_hook: Callable[[Any, str, str], None] | None = None
        self._changed: asyncio.Event | None = None

    # ------------------------------------------------------------ the store

    def commit(self, puts: Sequence[tuple[Key, Message]] = (), deletes: Sequence[Key] = ()) -> int:
        """Apply puts and deletes at one new revision, as one etcd transaction would."""
        self.revision += 1
        for key, obj in puts:
            meta = obj.meta  # type: ignore[attr-defined]
            if not meta.id:
                meta.id = uuid.uuid4().hex[:12]
                meta.created_at.GetCurrentTime()
            meta.updated_at.GetCurrentTime()
            meta.resource_version = self.revision
            self.objects[key] = obj
            self._record(api_pb2.WatchEvent.TYPE_PUT, obj)
        for key in deletes:
            self._record(api_pb2.WatchEvent.TYPE_DELETE, self.objects.pop(key))
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return self.revision

    def _record(self, type_: int, obj: Message) -> None:
        kind = _KINDS[type(obj)]
        ev = api_pb2.WatchEvent(revision=self.revision, type=type_, kind=kind)  # type: ignore[arg-type]
        if kind in _EVENT_FIELDS:
            getattr(ev, kind).CopyFrom(obj)
        self.history.append(ev)
        self.history_clusters.append(str(getattr(obj, "cluster", "") or obj.meta.name))  # type: ignore[attr-defined]

    def _items(self, kind: str, *prefix: str) -> list[Any]:
        n = len(prefix)
        return [o for k, o in sorted(self.objects.items()) if k[0] == kind and k[1 : 1 + n] == prefix]

    # ------------------------------------------------------------ seeding, as agents and reconcilers would

    def add_node(self, cluster: str, name: str, **status: Any) -> resources_pb2.Node:
        """Seed a ready, active worker node (nodes join through agents, not the API)."""
        node = resources_pb2.Node(
            meta=resources_pb2.Meta(name=name), cluster=cluster,
            spec=resources_pb2.NodeSpec(
                role=resources_pb2.NODE_ROLE_WORKER,
                availability=resources_pb2.NODE_AVAILABILITY_ACTIVE,
            ),
            status=resources_pb2.NodeStatus(state=resources_pb2.NODE_STATE_READY, **status),
        )
        self.commit([(("node", cluster, name), node)])
        return node

    def add_container(
        self, cluster: str, app: str, service: str, slot: int, node: str = "",
        state: int = resources_pb2.CONTAINER_STATE_RUNNING, *, generation: int = 1,
        message: str = "", exit_code: int = 0, labels: dict[str, str] | None = None,
        desired: int = resources_pb2.DESIRED_STATE_RUNNING, reason: int = 0,
        addresses: dict[str, str] | None = None,
    ) -> resources_pb2.Container:
        """Seed or replace a container (the control plane and agents write them, not the API);
        one per (service, generation, slot). `reason` is the FailureReason of a FAILED one;
        `addresses` its address by application network, as its agent reports them."""
        name = f"{app}-{service}-{slot}" + (f"-g{generation}" if generation > 1 else "")
        c = resources_pb2.Container(
            meta=resources_pb2.Meta(name=name, labels=labels), cluster=cluster, application=app,
            service=service, node=node, slot=slot, spec_generation=generation,
            desired_state=desired,  # type: ignore[arg-type]
            status=resources_pb2.ContainerStatus(
                state=state, message=message, exit_code=exit_code,  # type: ignore[arg-type]
                failure_reason=reason, addresses=addresses or {}),  # type: ignore[arg-type]
        )
        self.commit([(("container", cluster, app, service, name), c)])
        return c

    def set_service_status(
        self, cluster: str, app: str, service: str, running: int, healthy: int, message: str = "",
        desired: int | None = None,
    ) -> resources_pb2.Service:
        """Write a service's status as the reconciler would (``desired`` defaults to the spec's;
        the addresses are those of the service's running containers)."""
        svc = resources_pb2.Service()
        old = self.objects[("service", cluster, app, service)]
        assert isinstance(old, resources_pb2.Service)
        svc.CopyFrom(old)
        want = svc.spec.replicas if desired is None else desired
        svc.status.CopyFrom(resources_pb2.ServiceStatus(
            desired=want, running=running, healthy=healthy,
            message=message or f"{running}/{want} running",
            addresses=self._addresses_of(cluster, app, service),
        ))
        self.commit([(("service", cluster, app, service), svc)])
        return svc

    def _addresses_of(self, cluster: str, app: str, service: str) -> list[resources_pb2.ContainerAddress]:
        rows = sorted(
            (c.meta.name, net, c.node, addr)
            for key, c in self.objects.items()
            if key[0] == "container" and tuple(key[1:4]) == (cluster, app, service)
            and isinstance(c, resources_pb2.Container) and c.status.state in RUNNING_STATES
            for net, addr in c.status.addresses.items()
        )
        return [resources_pb2.ContainerAddress(container=name, node=node, network=net, address=addr)
                for name, net, node, addr in rows]

    def add_event(self, cluster: str, obj_kind: str, obj: str, reason: str, msg: str) -> int:
        name = f"{obj}.{self.revision + 1}"
        ev = resources_pb2.Event(
            meta=resources_pb2.Meta(name=name), cluster=cluster, kind=obj_kind, object=obj,
            type="Normal", reason=reason, message=msg,
        )
        return self.commit([(("event", cluster, name), ev)])

    # ------------------------------------------------------------ checks, with the server's messages

    async def _auth(self, ctx: Ctx) -> None:
        if self.etcd_unavailable:
            await ctx.abort(grpc.StatusCode.UNAVAILABLE, ETCD_DOWN, ((REASON_KEY, REASON_ETCD_UNAVAILABLE),))
        if self.token is None:
            return
        header = dict(ctx.invocation_metadata() or ()).get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            await fail(ctx, grpc.StatusCode.UNAUTHENTICATED, NO_TOKEN)
        if header[7:].strip() != self.token:
            await fail(ctx, grpc.StatusCode.UNAUTHENTICATED, BAD_TOKEN)

    @staticmethod
    async def _name(ctx: Ctx, field: str, value: str) -> str:
        """``controlplane.names.check_name``."""
        if not value:
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT, f"{field}: is required")
        if not _DNS_LABEL.fullmatch(value):  # fullmatch: "$" lets a trailing newline through
            shown = repr(value) if len(value) <= 80 else f"{value[:80]!r}... ({len(value)} characters)"
            await fail(ctx, grpc.StatusCode.INVALID_ARGUMENT,
                       f"{field}: {shown} is not a valid name: use at most 63 lowercase letters, digits "
                       "and '-', starting and ending with a letter or digit")
        return value

    def corrupt(self, key: Key, why: str = "Error parsing message") -> str:
        """Make the stored record at ``key`` undecodable, as damaged bytes in etcd: a get of it
        answers DATA_LOSS naming the object and its (pretend) etcd key, which is returned."""
        path = "/ccs/fake/" + "/".join(key)
        self.corrupt_records[key] = (path, why)
        return path

    async def _get(self, ctx: Ctx, key: Key, kind: str, name: str) -> Any:
        if key in self.corrupt_records:
            path, why = self.corrupt_records[key]
            await fail(ctx, grpc.StatusCode.DATA_LOSS,
                       f"{kind} {name!r}: the stored record at {path} does not decode ({why}); rewrite or delete it")
        if key not in self.objects:
            await fail(ctx, grpc.StatusCode.NOT_FOUND, f"{kind} {name!r} not found")
        return self.objects[key]

    async def _absent(self, ctx: Ctx, key: Key, kind: str, name: str) -> None:
        if key in self.objects:
            await fail(ctx, grpc.StatusCode.ALREADY_EXISTS, f"{kind} {name!r} already exists")

    @staticmethod
    async def _fresh(ctx: Ctx, obj: Any, expected: int, kind: str, name: str) -> None:
        """A stale ``resource_version`` (0: any) is ABORTED, as the store's guarded write."""
        actual = obj.meta.resource_version
        if expected and expected != actual:
            await fail(ctx, grpc.StatusCode.ABORTED,
                       f"{kind} {name!r} was modified concurrently (resource_version {expected} is stale, "
                       f"current is {actual}); re-read and retry")

    async def _cluster(self, ctx: Ctx, name: str) -> resources_pb2.Cluster:
        await self._auth(ctx)
        await self._name(ctx, "cluster", name)
        obj: resources_pb2.Cluster = await self._get(ctx, ("cluster", name), "cluster", name)
        return obj

    async def _page(self, ctx: Ctx, items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
        await self._auth(ctx)
        start = int(token or 0)
        end = start + (size or self.page_size)
        return items[start:end], (str(end) if end < len(items) else "")
