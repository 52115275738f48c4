"""DockerRuntime: the Runtime protocol against a real Docker Engine, through the docker SDK.

Why the sync `docker` SDK in threads rather than an asyncio Docker client: it is the engine's
official client, already a dependency, speaks every API version the engine negotiates, and
reads the user's registry credentials from ~/.docker/config.json. Its calls are short request/
response exchanges, so a small private thread pool (not the loop's default executor, which
other agent code shares) carries them; the two long-lived streams (events, followed logs) get
a dedicated thread each (see streams.py).

Every docker error is mapped to the runtime error tree (types.py) here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import platform
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import docker.errors
import structlog

from ccs.v1 import agent_pb2, resources_pb2

from . import naming, node_security
from .docker_errors import docker_error_kind
from .docker_exec import DockerExecSession
from .docker_images import Images
from .docker_networks import AppNetworks, status_code
from .docker_volumes import Volumes
from .observe import event_from_docker, observed_from_inspect
from .streams import ThreadStream
from .translate import CreateRequest, create_request, with_network_names, with_volume_names
from .types import (
    Bridge,
    ContainerNotFound,
    EngineUnavailable,
    EventKind,
    ExecResult,
    HostInfo,
    ImageNotFound,
    InvalidSpec,
    NotFound,
    Observed,
    PullCallback,
    ResourceBusy,
    RuntimeEvent,
    RuntimeFailure,
    StartFailed,
)

T = TypeVar("T")

log = structlog.get_logger("ccs.agent.docker")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def engine_error(exc: BaseException, doing: str) -> BaseException:
    """Map a docker SDK / transport exception to the runtime error tree."""
    if isinstance(exc, RuntimeFailure):
        return exc
    if isinstance(exc, docker.errors.APIError):
        explanation = str(exc.explanation or exc)
        if exc.status_code == 404:
            missing = ContainerNotFound if "container" in explanation.lower() else NotFound
            return missing(f"{doing}: {explanation}")
        if exc.status_code is not None and exc.status_code >= 500:
            return EngineUnavailable(f"{doing}: {explanation}")
        return RuntimeFailure(f"{doing}: {explanation}")
    if isinstance(exc, OSError | docker.errors.DockerException):  # requests errors are OSErrors
        return EngineUnavailable(f"{doing}: engine unreachable: {exc}")
    return exc


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _close_stream(stream: Any) -> None:
    """Close a docker SDK CancellableStream for good.

    `CancellableStream.close()` shuts the socket down, which unblocks a reader, but leaves the
    HTTP response (and the socket's file object) open until garbage collection, which then
    warns about an unclosed socket; closing the response too releases it at once.
    """
    try:
        stream.close()
    finally:
        response = getattr(stream, "_response", None)
        if response is not None:
            response.close()


class DockerRuntime:
    """The node agent's Runtime backed by the local Docker Engine.

    `bind_address` is where published ports listen unless a port names its own host_ip.
    `dns` is the node resolver every container uses (empty: engine aliases, see translate).
    `on_network_created` is awaited after the runtime created an application network and
    before any container uses it (the network fabric puts its nat rule back above the
    MASQUERADE rule Docker inserts on top of POSTROUTING for the new network).
    `cluster`, when given, scopes `list_managed` and `events` to that cluster's containers, so
    two agents (or test sessions) sharing one engine never adopt each other's containers.
    """

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        bind_address: str = "0.0.0.0",
        cluster: str | None = None,
        max_workers: int = 8,
        dns: Sequence[str] = (),
        on_network_created: Callable[[], Awaitable[None]] | None = None,
        on_docker_error: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client if client is not None else docker.from_env()
        self._api = self._client.api
        self._bind_address = bind_address
        self._dns = tuple(dns)
        self._selector = [f"{naming.MANAGED}=true"]
        if cluster is not None:
            self._selector.append(f"{naming.CLUSTER}={cluster}")
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="ccs-docker")
        self._locks: dict[str, asyncio.Lock] = {}
        self._networks = AppNetworks(self._api, self._call, self._lock, on_created=on_network_created)
        # Engine network name -> the older-named bridge adopted in its stead (`prepare`, which
        # the agent always runs right before `create`, fills it).
        self._adopted: dict[str, str] = {}
        self._adopted_volumes: dict[str, str] = {}  # new volume name -> the older name adopted
        self._volumes = Volumes(self._api, self._call, self._lock)
        self._images = Images(self._api, self._call, self._lock)
        self._apparmor: bool | None = None  # read from the engine's info on first need
        # Told the kind of every Docker API error (docker_error_kind): the agent's metrics.
        self._on_docker_error = on_docker_error

    async def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        submitted = time.time()
        spans: list[float] = []

        def timed() -> T:
            spans.append(time.time())
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append(time.time())

        try:
            return await loop.run_in_executor(self._executor, timed)
        except Exception as exc:
            raise self._mapped(exc, doing) from exc
        finally:
            if len(spans) == 2:
                log.debug("docker call", doing=doing, submitted=submitted, began=spans[0], ended=spans[1],
                          resumed=time.time())

    def _mapped(self, exc: BaseException, doing: str) -> BaseException:
        """:func:`engine_error`, counting the Docker API errors on the way."""
        kind = docker_error_kind(exc)
        if kind is not None and self._on_docker_error is not None:
            self._on_docker_error(kind)
        return engine_error(exc, doing)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # ------------------------------------------------------------------ prepare / create

    async def prepare(self, c: resources_pb2.Container, *, on_pull: PullCallback | None = None,
                      auth: agent_pb2.PullAuth | None = None) -> None:
        """Image (pulled when missing or when spec.always_pull, with ``auth`` when given), app
        network, named volumes (created as the template describes them; external ones must
        exist: VolumeMissing)."""
        request = create_request(c, bind_address=self._bind_address, dns=self._dns)  # validates the spec first
        await self._images.ensure(c.spec.image, always=c.spec.always_pull, on_pull=on_pull, auth=auth)
        for join in request.joins:
            labels = naming.network_labels(c.cluster, c.application, join.compose)
            legacy = naming.legacy_network_name(c.cluster, c.application, join.compose,
                                                c.subnet_index.get(join.compose, 0))
            used = await self._networks.ensure(join.name, labels, join.subnet, legacy)
            if used != join.name:
                self._adopted[join.name] = used  # create joins the bridge an older agent made
            else:
                self._adopted.pop(join.name, None)
        for volume in request.volumes:
            used = await self._volumes.ensure(volume, c.node)
            if used != volume.name:
                self._adopted_volumes[volume.name] = used  # create mounts the volume an older agent made
            else:
                self._adopted_volumes.pop(volume.name, None)

    async def create(self, c: resources_pb2.Container) -> str:
        """Create the container, attached to every network it joins; idempotent per ccs
        container id (returns the existing one)."""
        request = with_volume_names(with_network_names(
            create_request(c, bind_address=self._bind_address, dns=self._dns), self._adopted), self._adopted_volumes)
        docker_id = await self._create(c, request)
        for join in request.joins[1:]:  # the create body holds the first
            await self._networks.connect(join.name, docker_id, join.aliases)
        return docker_id

    async def _create(self, c: resources_pb2.Container, request: CreateRequest) -> str:
        body = request.body
        if node_security.needs_node(body):
            apparmor = await self._has_apparmor()
            body = await self._call("read security profiles", functools.partial(
                node_security.resolve, body, apparmor=apparmor, read_text=_read_text))
        try:
            result = await self._call(
                f"create {request.name}",
                self._api.create_container_from_config,
                body,
                name=request.name,
            )
        except NotFound as exc:
            if "image" in exc.reason.lower():
                raise ImageNotFound(c.spec.image) from exc
            raise
        except RuntimeFailure as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError) and status_code(cause) == 409:
                existing = await self.inspect(request.name)
                if existing is not None and existing.container_id == c.meta.id:
                    return existing.docker_id
            if isinstance(cause, docker.errors.APIError) and status_code(cause) == 400:
                raise InvalidSpec("spec", str(cause.explanation or cause)) from exc
            raise
        return str(result["Id"])

    async def _has_apparmor(self) -> bool:
        """Whether the engine applies AppArmor profiles (it lists "name=apparmor")."""
        if self._apparmor is None:
            raw = await self._call("info", self._api.info)
            self._apparmor = any("name=apparmor" in str(o) for o in raw.get("SecurityOptions") or ())
        return self._apparmor

    # ------------------------------------------------------------------ lifecycle

    async def start(self, docker_id: str) -> None:
        try:
            await self._call(f"start {docker_id[:12]}", self._api.start, docker_id)
        except NotFound:
            raise
        except RuntimeFailure as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError):  # the engine said no: not transient
                raise StartFailed(f"start failed: {cause.explanation or cause}") from exc
            raise

    async def stop(self, docker_id: str, grace_seconds: float) -> None:
        with contextlib.suppress(NotFound):
            await self._call(
                f"stop {docker_id[:12]}",
                self._api.stop,
                docker_id,
                timeout=max(0, math.ceil(grace_seconds)),
            )

    async def remove_image(self, image: str) -> bool:
        return await self._images.remove(image)

    async def image_disk_usage(self) -> int:
        return await self._images.disk_usage()

    async def remove(self, docker_id: str, *, volumes: bool) -> None:
        try:
            await self._call(
                f"remove {docker_id[:12]}",
                self._api.remove_container,
                docker_id,
                v=volumes,
                force=True,
            )
        except NotFound:
            return
        except RuntimeFailure as exc:
            if "already in progress" not in exc.reason:
                raise

    async def inspect(self, docker_id: str) -> Observed | None:
        try:
            attrs = await self._call(f"inspect {docker_id[:12]}", self._api.inspect_container, docker_id)
        except NotFound:
            return None
        return observed_from_inspect(attrs)

    async def list_managed(self) -> list[Observed]:
        summaries = await self._call(
            "list containers", self._api.containers, all=True, filters={"label": self._selector}
        )
        found = await asyncio.gather(*(self.inspect(s["Id"]) for s in summaries))
        return [o for o in found if o is not None]  # removed between list and inspect

    # ------------------------------------------------------------------ streams

    def events(self, *, since: float | None = None) -> ThreadStream[RuntimeEvent]:
        """Events from `since` (default: the moment of this call), so none falls in the gap
        between subscribing and the thread's connection. Take `since` before `list_managed`
        to adopt without missing a change. Ends with EngineUnavailable if the engine goes.
        """
        start = f"{time.time() if since is None else since:.9f}"

        def opener() -> tuple[Iterator[Any], Callable[[], None]]:
            # Only the actions the agent reacts to: a container with a health check causes
            # three exec_* events per check, which the engine would otherwise encode and the
            # agent decode and drop (4,400 of them in a 30-replica rolling update).
            stream = self._api.events(
                since=start,
                filters={"type": "container", "label": self._selector, "event": [k.value for k in EventKind]},
                decode=True,
            )
            return stream, functools.partial(_close_stream, stream)

        return ThreadStream(
            opener,
            event_from_docker,
            name="ccs-docker-events",
            map_error=lambda e: self._mapped(e, "events"),
            on_end=lambda: EngineUnavailable("events: the engine closed the event stream"),
        )

    def logs(
        self, docker_id: str, *, follow: bool, tail: int | None, since: float | None
    ) -> ThreadStream[bytes]:
        """stdout+stderr chunks. Close it (`contextlib.aclosing`) when done with a follow."""

        def opener() -> tuple[Iterator[Any], Callable[[], None]]:
            stream = self._api.logs(
                docker_id,
                stream=True,
                follow=follow,
                tail="all" if tail is None else tail,
                since=since,
            )
            return stream, functools.partial(_close_stream, stream)

        return ThreadStream(
            opener,
            lambda chunk: bytes(chunk) or None,
            name=f"ccs-docker-logs-{docker_id[:12]}",
            map_error=lambda e: self._mapped(e, f"logs {docker_id[:12]}"),
        )

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        """Run `cmd` in the container; TimeoutError after `timeout_seconds`.

        The engine cannot kill an exec, so a command that overruns keeps running in the
        container (as with Kubernetes exec probes); only the wait is abandoned.
        """
        exec_id = (
            await self._call(f"exec in {docker_id[:12]}", self._api.exec_create, docker_id, list(cmd))
        )["Id"]

        def opener() -> tuple[Iterator[Any], Callable[[], None]]:
            stream = self._api.exec_start(exec_id, stream=True)
            return stream, functools.partial(_close_stream, stream)

        output = bytearray()
        stream: ThreadStream[bytes] = ThreadStream(
            opener,
            lambda chunk: bytes(chunk) or None,
            name=f"ccs-docker-exec-{docker_id[:12]}",
            map_error=lambda e: self._mapped(e, f"exec in {docker_id[:12]}"),
        )
        try:
            async with asyncio.timeout(timeout_seconds):
                async for chunk in stream:
                    output += chunk
        finally:
            await stream.aclose()
        details = await self._call("inspect exec", self._api.exec_inspect, exec_id)
        return ExecResult(int(details.get("ExitCode") or 0), bytes(output))

    async def open_exec(
        self, docker_id: str, command: Sequence[str], *, tty: bool, stdin: bool, rows: int, cols: int
    ) -> DockerExecSession:
        return await DockerExecSession.start(self._api, self._call, docker_id, command,
                                             tty=tty, stdin=stdin, rows=rows, cols=cols)

    # ------------------------------------------------------------------ app / host

    async def app_networks(self, cluster: str) -> list[Bridge]:
        return await self._networks.list_app(cluster)

    async def remove_unused_network(self, name: str) -> bool:
        return await self._networks.remove_if_unused(name)

    async def remove_app_resources(self, cluster: str, app: str, *, volumes: bool) -> None:
        """Remove the app's networks and anonymous volumes; named volumes when asked.

        Raises ResourceBusy while containers still use them: remove those first.
        """
        await self._networks.remove_app(cluster, app)
        selector = [f"{naming.CLUSTER}={cluster}", f"{naming.APP}={app}"]
        listing = await self._call("list volumes", self._api.volumes, filters={"label": selector})
        for vol in listing.get("Volumes") or ():
            if not volumes and (vol.get("Labels") or {}).get(naming.ANONYMOUS) != "true":
                continue
            try:
                await self._call(f"remove volume {vol['Name']}", self._api.remove_volume, vol["Name"])
            except NotFound:
                pass
            except RuntimeFailure as exc:
                raise ResourceBusy(exc.reason) from exc

    async def info(self) -> HostInfo:
        raw = await self._call("info", self._api.info)
        arch = str(raw.get("Architecture") or platform.machine())
        return HostInfo(
            cpus=float(raw.get("NCPU") or 0),
            memory_bytes=int(raw.get("MemTotal") or 0),
            docker_version=str(raw.get("ServerVersion") or ""),
            os=str(raw.get("OSType") or "linux"),
            arch=_ARCH.get(arch, arch),
            hostname=str(raw.get("Name") or ""),
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._client.close)
