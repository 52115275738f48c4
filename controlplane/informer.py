"""The informer: an in-memory copy of every cluster's resources, kept current by one watch.

List at revision R (paged, pinned to R), then watch from R+1; every watch batch is one
etcd revision, applied atomically to the cache before listeners hear of it, so a
listener never sees half a transaction. On a compacted revision the cache re-lists and
tells listeners to resync (the dispatcher then sends complete sets again).

A value that does not decode must not stop the cache: the watch would replay the same
batch forever and every cluster would freeze. Such a record is kept aside in
``ClusterState.undecodable`` and the last value that decoded stays in the cache, so the
dispatcher does not tell an agent to remove a container because its record was damaged;
reconcilers hold the objects it concerns (see :mod:`controlplane.reconcile.cluster_pass`)
until the key is rewritten or deleted. Listeners hear of it as a change of kind ``"undecodable"``.

Why a module of its own, between :mod:`controlplane.store` and its three readers: the API
servers answer reads from it (:class:`controlplane.api.common.CacheReader`), the dispatcher
streams assignments from it and the reconcilers plan from it. Kept under ``reconcile/`` it
made the API and the dispatcher import the reconcilers (a cycle, since the reconcilers
used the API's helpers). It is not part of ``store/`` either: the store is stateless
request/response access to etcd, while the informer owns a long-lived task and state that
listeners subscribe to. The layers contract in ``pyproject.toml`` places it just above the
store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler.usage import Usage
from controlplane.state_counts import StateCounts
from controlplane.store import Compacted, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import KV, Etcd, WatchedChange

log = structlog.get_logger("ccs.cache")

ROOT = "/ccs/c/"
_KINDS: dict[str, type[Any]] = {
    "nodes": pb.Node,
    "apps": pb.Application,
    "services": pb.Service,
    "containers": pb.Container,
    "releases": pb.Release,
    "routerstats": pb.RouterStats,
    "subnets": pb.SubnetAllocation,
    "subnetblocks": pb.SubnetAllocation,
    "alive": bytes,  # the replica's id, raw (keys.alive): not a record
}

SvcKey = tuple[str, str]  # (app, service)
CtrKey = tuple[str, str, str]  # (app, service, container name)
# (node, app, network, index): one block of a pair; index 0 is the first (keys.subnet).
SubnetKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class Undecodable:
    """A stored value that is not a valid record of its kind."""

    key: str  # the etcd key
    kind: str  # node | application | service | container | release | routerstats
    path: tuple[str, ...]  # the key below the kind: (app, service) for a service
    error: str
    mod_revision: int


@dataclass
class ClusterState:
    name: str
    # False for keys under /ccs/c/{name}/ without a cluster object (never reconciled).
    exists: bool = False
    nodes: dict[str, pb.Node] = field(default_factory=dict)
    apps: dict[str, pb.Application] = field(default_factory=dict)
    services: dict[SvcKey, pb.Service] = field(default_factory=dict)
    containers: dict[CtrKey, pb.Container] = field(default_factory=dict)
    by_node: dict[str, set[CtrKey]] = field(default_factory=dict)
    by_service: dict[SvcKey, set[CtrKey]] = field(default_factory=dict)
    # container id -> key: kept here, per change, so a pass need not build it over the cluster.
    by_id: dict[str, CtrKey] = field(default_factory=dict)
    # What live containers hold per node (the scheduler's sums), kept per change for the same reason.
    usage: Usage = field(default_factory=Usage)
    # Containers by state and pending reason, releases by phase (the metrics' state series), likewise.
    counts: StateCounts = field(default_factory=StateCounts)
    # (app, release name) -> Release; node -> RouterStats
    releases: dict[tuple[str, str], pb.Release] = field(default_factory=dict)
    router_stats: dict[str, pb.RouterStats] = field(default_factory=dict)
    # etcd key -> a record there that does not decode (its last good value, if any, stays above).
    undecodable: dict[str, Undecodable] = field(default_factory=dict)
    # The cluster's range (Cluster.pod_cidr) and the blocks handed out of it.
    pod_cidr: str = ""
    # False while the cluster's own record (/ccs/clusters/{name}) does not decode: a list from
    # the cache then leaves the answer (Corrupt, naming it) to etcd.
    record_decodes: bool = True
    subnets: dict[SubnetKey, pb.SubnetAllocation] = field(default_factory=dict)
    # node -> the API replicas holding it alive now (keys.alive, on their leases): a node with
    # none is not heard from by any live replica (controlplane.dispatcher.liveness).
    alive: dict[str, set[str]] = field(default_factory=dict)

    def latest_release(self, app: str) -> pb.Release | None:
        mine = [r for (a, _), r in self.releases.items() if a == app]
        return max(mine, key=lambda r: r.number) if mine else None

    def containers_of(self, app: str, service: str) -> list[pb.Container]:
        return [self.containers[k] for k in sorted(self.by_service.get((app, service), ()))]

    def containers_on(self, node: str) -> list[pb.Container]:
        return [self.containers[k] for k in sorted(self.by_node.get(node, ()))]

    def _index(self, key: CtrKey, old: pb.Container | None, new: pb.Container | None) -> None:
        if old is not None and old.node:
            s = self.by_node.get(old.node)
            if s is not None:
                s.discard(key)
        if new is not None and new.node:
            self.by_node.setdefault(new.node, set()).add(key)
        if new is None:
            s2 = self.by_service.get(key[:2])
            if s2 is not None:
                s2.discard(key)
        else:
            self.by_service.setdefault((key[0], key[1]), set()).add(key)
        if old is not None and self.by_id.get(old.meta.id) == key and (new is None or new.meta.id != old.meta.id):
            del self.by_id[old.meta.id]
        if new is not None:
            self.by_id[new.meta.id] = key
        self.usage.apply(old, new)
        self.counts.container(old, new)


@dataclass(frozen=True)
class Change:
    """One resource change inside a cluster. ``old``/``new`` are None on create/delete."""

    cluster: str
    kind: str  # node | application | service | container | release | routerstats | alive | undecodable
    key: tuple[str, ...]
    old: Any
    new: Any
    revision: int


Listener = Callable[[list[Change]], None]
ResyncListener = Callable[[], None]
KeyListener = Callable[[list[str] | None], None]  # the changed keys; None: forget everything


def parse_key(key: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``/ccs/c/{cluster}/{plural}/a/b`` -> (cluster, plural, (a, b))."""
    if not key.startswith(ROOT):
        return None
    parts = key[len(ROOT) :].split("/")
    if len(parts) < 3 or parts[1] not in _KINDS or (parts[1] == "releases" and len(parts) < 4):
        return None
    if parts[1] == "alive" and len(parts) < 4:
        return None
    if parts[1] == "subnets" and len(parts) < 5:
        return None
    if parts[1] == "subnetblocks" and (len(parts) < 6 or not parts[5].isdigit() or int(parts[5]) < 1):
        return None  # a further block's index is a number >= 1 (keys.subnet)
    return parts[0], parts[1], tuple(parts[2:])


_KIND_NAME = {
    "nodes": "node",
    "apps": "application",
    "services": "service",
    "containers": "container",
    "releases": "release",
    "routerstats": "routerstats",
    "subnets": "subnet",
    "subnetblocks": "subnet",
    "alive": "alive",
}


class Informer:
    def __init__(self, etcd: Etcd, *, page: int = 5000) -> None:
        self.etcd = etcd
        self.clusters: dict[str, ClusterState] = {}
        self.revision = 0
        self.synced = asyncio.Event()
        self._listeners: list[Listener] = []
        self._resync_listeners: list[ResyncListener] = []
        self._key_listeners: list[tuple[str, KeyListener]] = []
        self._task: asyncio.Task[None] | None = None
        self._page = page
        self._advanced = asyncio.Event()

    def _advance(self, revision: int) -> None:
        self.revision = revision
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def caught_up(self, revision: int, timeout: float = 2.0) -> bool:
        """Wait until the cache reflects ``revision``; False if it did not within ``timeout``."""
        if not self.synced.is_set():
            return False
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.revision < revision:
            remaining = end - loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self._advanced.wait()
            except TimeoutError:
                return False
        return True

    def subscribe(self, listener: Listener, on_resync: ResyncListener | None = None) -> None:
        self._listeners.append(listener)
        if on_resync is not None:
            self._resync_listeners.append(on_resync)

    def follow_keys(self, marker: str, listener: KeyListener) -> None:
        """Call ``listener`` with the keys containing ``marker`` that each watch batch changed
        (put or deleted), in order, and with None when changes may have been missed (the watch
        fell behind a compaction and the cache re-listed). For keys the cache does not keep
        (node certificate records): a caller keeps its own cache of them correct without a
        watch of its own - the informer already watches every key under ``/ccs/``."""
        self._key_listeners.append((marker, listener))

    def _tell_keys(self, batch: list[WatchedChange] | None) -> None:
        for marker, listener in self._key_listeners:
            changed = None if batch is None else [c.kv.key for c in batch if marker in c.kv.key]
            if changed is None or changed:
                try:
                    listener(changed)
                except Exception:
                    log.exception("key listener failed")

    def cluster(self, name: str) -> ClusterState:
        state = self.clusters.get(name)
        if state is None:
            state = self.clusters[name] = ClusterState(name)
        return state

    async def start(self) -> None:
        await self._list()
        self._task = asyncio.create_task(self._follow(), name="informer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _list(self) -> None:
        clusters: dict[str, ClusterState] = {}
        revision = 0
        start: str | None = None
        while True:
            res = await self.etcd.range(ROOT, start=start, limit=self._page, revision=revision)
            revision = revision or res.revision
            for kv in res.kvs:
                self._apply_kv(clusters, kv, deleted=False, revision=revision)
            if not res.more or not res.kvs:
                break
            start = res.kvs[-1].key + "\0"
        # Clusters with no resources yet still exist for the dispatcher.
        for kv in (await self.etcd.range(keys.CLUSTERS, revision=revision)).kvs:
            name = kv.key[len(keys.CLUSTERS) :]
            state = clusters.setdefault(name, ClusterState(name))
            state.exists = True
            state.pod_cidr, state.record_decodes = _cluster_record(kv)
        self.clusters = clusters
        self.revision = revision
        self.synced.set()
        log.info("cache synced", revision=revision,
                 containers=sum(len(c.containers) for c in clusters.values()))

    def _apply_kv(
        self, clusters: dict[str, ClusterState], kv: KV, *, deleted: bool, revision: int,
        prev: bytes | None = None,
    ) -> Change | None:
        parsed = parse_key(kv.key)
        if parsed is None:
            return None
        cluster, plural, rest = parsed
        state = clusters.get(cluster)
        if state is None:
            state = clusters[cluster] = ClusterState(cluster)
        cls = _KINDS[plural]
        new: Any = None
        if plural == "alive":
            return _apply_alive(state, rest, None if deleted else kv.value, revision)
        if deleted:
            state.undecodable.pop(kv.key, None)
        else:
            try:
                new = decode(kv, cls)
            except Exception as e:  # any parse failure means the same thing: bad bytes
                bad = Undecodable(kv.key, _KIND_NAME[plural], rest, f"{type(e).__name__}: {e}",
                                  kv.mod_revision)
                state.undecodable[kv.key] = bad
                log.warning("record does not decode; its object is held", key=kv.key, error=bad.error,
                            revision=kv.mod_revision)
                return Change(cluster, "undecodable", rest, None, bad, revision)
            state.undecodable.pop(kv.key, None)
        old: Any
        if plural == "nodes":
            old = state.nodes.pop(rest[0], None)
            if new is not None:
                state.nodes[rest[0]] = new
        elif plural == "apps":
            old = state.apps.pop(rest[0], None)
            if new is not None:
                state.apps[rest[0]] = new
        elif plural == "releases":
            rkey = (rest[0], rest[1])
            old = state.releases.pop(rkey, None)
            if new is not None:
                state.releases[rkey] = new
            state.counts.release(old, new)
        elif plural == "routerstats":
            old = state.router_stats.pop(rest[0], None)
            if new is not None:
                state.router_stats[rest[0]] = new
        elif plural in ("subnets", "subnetblocks"):
            nkey = (rest[0], rest[1], rest[2], int(rest[3]) if plural == "subnetblocks" else 0)
            old = state.subnets.pop(nkey, None)
            if new is not None:
                state.subnets[nkey] = new
            rest = (*nkey[:3], str(nkey[3]))  # one shape for every block's change
        elif plural == "services":
            skey = (rest[0], rest[1])
            old = state.services.pop(skey, None)
            if new is not None:
                state.services[skey] = new
        else:
            ckey = (rest[0], rest[1], rest[2])
            old = state.containers.pop(ckey, None)
            if new is not None:
                state.containers[ckey] = new
            state._index(ckey, old, new)
        return Change(cluster, _KIND_NAME[plural], rest, old, new, revision)

    def _apply_batch(self, batch: list[WatchedChange]) -> None:
        changes = []
        for ch in batch:
            if ch.kv.key.startswith(keys.CLUSTERS):
                name = ch.kv.key[len(keys.CLUSTERS) :]
                if ch.deleted:
                    self.clusters.pop(name, None)
                else:
                    state = self.cluster(name)
                    state.exists = True
                    state.pod_cidr, state.record_decodes = _cluster_record(ch.kv)
                continue
            c = self._apply_kv(self.clusters, ch.kv, deleted=ch.deleted, revision=ch.revision)
            if c is not None:
                changes.append(c)
        self._advance(batch[-1].revision)
        if changes:
            for listener in self._listeners:
                try:
                    listener(changes)
                except Exception:
                    log.exception("cache listener failed")

    async def _follow(self) -> None:
        backoff = 0.2
        while True:
            try:
                # One watch over "/ccs/" would include tokens and events; two prefixes
                # would lose ordering. Watch "/ccs/" and filter: events are skipped cheaply.
                async for batch in self.etcd.watch("/ccs/", self.revision + 1):
                    self._tell_keys(batch)
                    relevant = [
                        c for c in batch
                        if c.kv.key.startswith(keys.CLUSTERS) or parse_key(c.kv.key) is not None
                    ]
                    if relevant:
                        self._apply_batch(relevant)
                    else:
                        self._advance(batch[-1].revision)
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Compacted:
                log.warning("cache fell behind a compaction; re-listing")
                self._tell_keys(None)
                with contextlib.suppress(Exception):
                    await self._list()
                    for cb in self._resync_listeners:
                        cb()
            except Exception as e:
                log.warning("cache watch broke; resuming", error=str(e), revision=self.revision)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _apply_alive(state: ClusterState, rest: tuple[str, ...], value: bytes | None, revision: int) -> Change:
    """A liveness key: ``(node, replica)``; old/new are the node's replicas before and after
    (frozensets), so a listener sees at once whether the node went from some to none."""
    node, replica = rest[0], rest[1]
    before = frozenset(state.alive.get(node, ()))
    held = state.alive.setdefault(node, set())
    if value is None:
        held.discard(replica)
    else:
        held.add(replica)
    if not held:
        del state.alive[node]
    return Change(state.name, "alive", (node, replica), before, frozenset(held), revision)


def _cluster_record(kv: KV) -> tuple[str, bool]:
    """The cluster's range from its record, and whether the record decodes ("", False if not)."""
    try:
        return str(decode(kv, pb.Cluster).pod_cidr), True
    except Exception:
        return "", False
