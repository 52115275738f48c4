"""FakeRuntime: the Runtime protocol in memory, for hollow nodes in scale tests (kubemark style).

A hollow node runs the real agent code against this fake, so one process can simulate
hundreds of nodes: containers "start" at once, events are emitted as Docker would emit them
(start, then health_status when a healthcheck is set; die; destroy), and nothing touches the
host. Each container costs one small slotted record (~1 KB with its labels), so 20,000
containers across 500 fake runtimes fit in tens of MB.

Addresses as the engine gives them: a container joins every network of its service; each
network has the subnet of the first `prepare` that made it (the control plane's block; without
one, a /24 of 172.16.0.0/12 as the engine's own pools would), a container takes the lowest free
address of each when it starts (the first is the gateway's) and gives them back when it stops;
`Observed.networks`/`addresses` report them, so a hollow node reports addresses like a real one.

Fault injection for release tests: images listed in `missing_images` fail `prepare` like an
unreachable registry; images in `unhealthy_images` become UNHEALTHY (healthcheck) and fail
exec probes; `crash()` makes a running container exit with a code. An external volume must be in
`volumes` (a test puts it there, as an operator would create it), else `prepare` raises
VolumeMissing like the real runtime.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from ccs.v1 import agent_pb2, resources_pb2

from . import naming
from .observe import addresses
from .translate import create_request
from .types import (
    Bridge,
    ContainerNotFound,
    EventKind,
    ExecNotRunning,
    ExecResult,
    ExecSession,
    HostInfo,
    ImageNotFound,
    Observed,
    PullCallback,
    ResourceBusy,
    RuntimeEvent,
    RuntimeFailure,
    StartFailed,
    State,
    VolumeFailed,
    VolumeMissing,
)

_ids = itertools.count(1)


@dataclass(slots=True)
class _Record:
    docker_id: str
    name: str
    image: str
    labels: dict[str, str]
    has_healthcheck: bool
    networks: tuple[str, ...]  # the engine networks it joins ("": network_mode host)
    addresses: tuple[str, ...] = ()  # one per network, while running
    running: bool = False
    health: str = ""
    exit_code: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    created: bool = True  # never started yet

    def observed(self) -> Observed:
        if self.running:
            state = {
                "healthy": State.CONTAINER_STATE_HEALTHY,
                "unhealthy": State.CONTAINER_STATE_UNHEALTHY,
                "starting": State.CONTAINER_STATE_STARTING,
            }.get(self.health, State.CONTAINER_STATE_RUNNING)
            message = ""
        elif self.created:
            state, message = State.CONTAINER_STATE_STARTING, "created"
        else:
            state = State.CONTAINER_STATE_EXITED
            message = f"exited with code {self.exit_code}"
        # As the engine lists it: a network_mode host container is on its "host" network.
        networks = dict(zip(self.networks, self.addresses or ("",) * len(self.networks), strict=True)) \
            if self.networks else {"host": ""}
        return Observed(
            docker_id=self.docker_id,
            name=self.name,
            labels=self.labels,
            image=self.image,
            state=state,
            exit_code=0 if self.running else self.exit_code,
            message=message,
            health=self.health,
            started_at=self.started_at,
            finished_at=self.finished_at,
            networks=networks,
            addresses=addresses(networks, self.labels),
        )


class FakeRuntime:
    """An in-memory Runtime. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        *,
        hostname: str = "hollow",
        cpus: float = 4.0,
        memory_bytes: int = 8 << 30,
        missing_images: Iterable[str] = (),
        unhealthy_images: Iterable[str] = (),
    ) -> None:
        self._info = HostInfo(cpus, memory_bytes, "fake", "linux", "amd64", hostname)
        self.missing_images = set(missing_images)
        self.unhealthy_images = set(unhealthy_images)
        self._containers: dict[str, _Record] = {}
        self._by_name: dict[str, str] = {}
        self._subscribers: list[asyncio.Queue[RuntimeEvent]] = []
        self.networks: set[str] = set()
        self.subnets: dict[str, ipaddress.IPv4Network] = {}  # network -> its subnet
        self.network_owners: dict[str, tuple[str, str, str]] = {}  # network -> (cluster, app, Compose network)
        self._in_use: dict[str, set[int]] = {}  # network -> addresses taken by running containers
        self.volumes: dict[str, tuple[str, str]] = {}  # name -> (cluster, app)
        self.pulled: list[str] = []
        self.removed_images: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    async def prepare(self, c: resources_pb2.Container, *, on_pull: PullCallback | None = None,
                      auth: agent_pb2.PullAuth | None = None) -> None:
        request = create_request(c, bind_address="0.0.0.0")  # same validation as the real one
        if c.spec.image in self.missing_images:
            if on_pull is not None:
                on_pull(c.spec.image)
            raise ImageNotFound(c.spec.image, "pull failed: no registry in a hollow node")
        if c.spec.always_pull:
            if on_pull is not None:
                on_pull(c.spec.image)
            self.pulled.append(c.spec.image)
        missing = [v.name for v in request.volumes if v.external and v.name not in self.volumes]
        if missing:
            node = c.node or self._info.hostname
            raise VolumeMissing(f"external volume {missing[0]!r} does not exist on node {node}")
        for join in request.joins:
            self.networks.add(join.name)
            self.network_owners[join.name] = (c.cluster, c.application, join.compose)
            current = self.subnets.get(join.name)
            if current is None or (join.subnet and str(current) != join.subnet and not self._in_use.get(join.name)):
                # Made, or (unused, with another subnet) made again: as AppNetworks.ensure does.
                self._make_network(join.name, join.subnet)
        for v in request.volumes:
            owner = self.volumes.get(v.name)
            if not v.external and owner is not None and owner != (c.cluster, c.application):
                raise VolumeFailed(f"volume {v.name!r} (volumes.{v.key}) exists but belongs to cluster {owner[0]!r}, "
                                   f"application {owner[1]!r} (as the Docker runtime refuses it)")
        self.volumes.update((v.name, (c.cluster, c.application)) for v in request.volumes if not v.external)

    async def create(self, c: resources_pb2.Container) -> str:
        request = create_request(c, bind_address="0.0.0.0")
        if c.spec.image in self.missing_images:
            raise ImageNotFound(c.spec.image)
        existing = self._by_name.get(request.name)
        if existing is not None:
            if self._containers[existing].labels[naming.CONTAINER_ID] != c.meta.id:
                raise RuntimeFailure(f"create {request.name}: name already in use by another container")
            return existing
        docker_id = f"{next(_ids):064x}"
        health = c.spec.healthcheck
        has_check = c.spec.HasField("healthcheck") and not health.disable and list(health.test) != ["NONE"]
        self._containers[docker_id] = _Record(
            docker_id, request.name, c.spec.image, naming.container_labels(c), has_check,
            tuple(sys.intern(j.name) for j in request.joins),  # one string per app network, not per container
        )
        self._by_name[request.name] = docker_id
        return docker_id

    async def start(self, docker_id: str) -> None:
        r = self._get(docker_id)
        if r.running:
            return
        if r.image in self.missing_images:
            raise StartFailed(f"start failed: image {r.image} vanished")
        r.addresses = tuple(self._attach(n) for n in r.networks)  # network_mode host: none of its own
        r.running, r.created, r.exit_code = True, False, 0
        r.started_at, r.finished_at = time.time(), None
        self._emit(EventKind.START, r)
        if r.has_healthcheck:
            r.health = "unhealthy" if r.image in self.unhealthy_images else "healthy"
            self._emit(EventKind.HEALTH_STATUS, r, health=r.health)

    async def stop(self, docker_id: str, grace_seconds: float) -> None:
        r = self._containers.get(docker_id)
        if r is not None and r.running:
            self._exit(r, 0)

    def crash(self, docker_id: str, exit_code: int = 1) -> None:
        """Make a running container exit by itself (fault injection)."""
        r = self._get(docker_id)
        if r.running:
            self._exit(r, exit_code)

    def _make_network(self, network: str, subnet: str) -> ipaddress.IPv4Network:
        n = len(self.subnets)
        made = self.subnets[network] = ipaddress.IPv4Network(subnet or f"172.{16 + n // 256 % 16}.{n % 256}.0/24")
        return made

    def _attach(self, network: str) -> str:
        """The lowest free address of `network`'s subnet after the gateway's, now taken.

        A network no `prepare` made (unit tests create containers directly) is made from the
        default pool here rather than failing the start as the engine would."""
        subnet = self.subnets.get(network) or self._make_network(network, "")
        taken = self._in_use.setdefault(network, set())
        first = int(subnet.network_address) + 2  # the network's own address, then the gateway
        for candidate in range(first, int(subnet.broadcast_address)):
            if candidate not in taken:
                taken.add(candidate)
                return str(ipaddress.IPv4Address(candidate))
        raise StartFailed(f"start failed: no available IPv4 addresses on network {network}")

    def _detach(self, r: _Record) -> None:
        for network, address in zip(r.networks, r.addresses, strict=False):
            self._in_use.get(network, set()).discard(int(ipaddress.IPv4Address(address)))
        r.addresses = ()

    def _exit(self, r: _Record, exit_code: int) -> None:
        self._detach(r)
        r.running, r.health, r.exit_code, r.finished_at = False, "", exit_code, time.time()
        self._emit(EventKind.DIE, r, exit_code=exit_code)

    async def remove_image(self, image: str) -> bool:
        """One a container uses is refused, as the Engine does; a pulled one goes."""
        if any(r.image == image for r in self._containers.values()):
            raise RuntimeFailure(f"remove image {image}: image is being used by a container")
        if image not in self.pulled:
            return False
        self.pulled = [i for i in self.pulled if i != image]
        self.removed_images.append(image)
        return True

    async def image_disk_usage(self) -> int:
        """A pulled image "weighs" 1 MiB."""
        return len(set(self.pulled)) << 20

    async def remove(self, docker_id: str, *, volumes: bool) -> None:
        r = self._containers.pop(docker_id, None)
        if r is None:
            return
        self._by_name.pop(r.name, None)
        if r.running:
            self._exit(r, 137)
        self._emit(EventKind.DESTROY, r)

    async def inspect(self, docker_id: str) -> Observed | None:
        r = self._containers.get(docker_id)
        return None if r is None else r.observed()

    async def list_managed(self) -> list[Observed]:
        return [r.observed() for r in self._containers.values()]

    # ------------------------------------------------------------------ streams

    def events(self, *, since: float | None = None) -> AsyncIterator[RuntimeEvent]:
        """Events from now on (`since` is accepted for interface parity and ignored)."""
        queue: asyncio.Queue[RuntimeEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[RuntimeEvent]) -> AsyncIterator[RuntimeEvent]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    def _emit(self, kind: EventKind, r: _Record, *, exit_code: int | None = None, health: str = "") -> None:
        if not self._subscribers:
            return
        event = RuntimeEvent(kind, r.docker_id, r.labels, time.time(), exit_code, health)
        for queue in self._subscribers:
            queue.put_nowait(event)

    async def logs(
        self, docker_id: str, *, follow: bool, tail: int | None, since: float | None
    ) -> AsyncIterator[bytes]:
        r = self._get(docker_id)
        if tail != 0:
            yield f"{r.name}: hollow container started\n".encode()

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        r = self._get(docker_id)
        if not r.running:
            raise StartFailed(f"exec failed: container {r.name} is not running")
        return ExecResult(1 if r.image in self.unhealthy_images else 0, b"")

    async def open_exec(
        self, docker_id: str, command: Sequence[str], *, tty: bool, stdin: bool, rows: int, cols: int
    ) -> ExecSession:
        r = self._get(docker_id)
        if not r.running:
            raise ExecNotRunning(f"exec failed: container {r.name} is not running")
        raise RuntimeFailure("the hollow runtime runs no interactive exec sessions")

    # ------------------------------------------------------------------ app / host

    async def remove_app_resources(self, cluster: str, app: str, *, volumes: bool) -> None:
        mine = [n for n in self.networks if naming.compose_network(cluster, app, n) is not None]
        for network in mine:
            if self._in_use.get(network):
                raise ResourceBusy(f"remove network {network}: network has active endpoints")
        for network in mine:
            self.networks.discard(network)
            self.subnets.pop(network, None)
            self._in_use.pop(network, None)
        if volumes:
            self.volumes = {k: v for k, v in self.volumes.items() if v != (cluster, app)}

    async def app_networks(self, cluster: str) -> list[Bridge]:
        return [Bridge(name, app, compose, (str(self.subnets[name]),) if name in self.subnets else ())
                for name, (owner, app, compose) in sorted(self.network_owners.items())
                if owner == cluster and name in self.networks]

    async def remove_unused_network(self, name: str) -> bool:
        if any(name in r.networks for r in self._containers.values()):
            return False
        self.networks.discard(name)
        self.subnets.pop(name, None)
        self._in_use.pop(name, None)
        self.network_owners.pop(name, None)
        return True

    async def info(self) -> HostInfo:
        return self._info

    async def aclose(self) -> None:
        self._subscribers.clear()

    def _get(self, docker_id: str) -> _Record:
        r = self._containers.get(docker_id)
        if r is None:
            raise ContainerNotFound(f"no such container: {docker_id[:12]}")
        return r
