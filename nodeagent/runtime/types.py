"""The runtime seam: the narrow interface the node agent drives, and the values it exchanges.

Everything here is plain data (frozen dataclasses) and a `typing.Protocol`, so that the agent's
reconcile logic, the real Docker runtime and the in-memory fake for hollow nodes all meet on
types that do no I/O. Errors carry their retry policy (kopf style): the agent asks
`err.permanent` instead of pattern-matching messages.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ccs.v1 import agent_pb2, resources_pb2

from . import naming

#: ccs.v1.ContainerState values, re-exported so callers need not spell the proto prefix.
State = resources_pb2.ContainerState
#: ccs.v1.FailureReason values: what a permanent error reports in ContainerStatus.failure_reason.
Reason = resources_pb2.FailureReason


@dataclass(frozen=True, slots=True)
class PortBinding:
    """One container port and where the engine published it (host_port 0: not published)."""

    target: int
    protocol: str
    host_ip: str = ""
    host_port: int = 0


@dataclass(frozen=True, slots=True)
class Observed:
    """What the engine reports about one managed container, already mapped to ccs terms.

    `state` is a `ccs.v1.ContainerState` value; `message` says why when the state is FAILED
    (or qualifies it, e.g. "paused"). The ccs identity comes back from the labels the runtime
    set at create time, which is what makes adoption after an agent restart possible.
    """

    docker_id: str
    name: str
    labels: Mapping[str, str]
    image: str
    state: int
    exit_code: int = 0
    message: str = ""
    health: str = ""  # "" (no healthcheck) | starting | healthy | unhealthy
    started_at: float | None = None  # unix seconds
    finished_at: float | None = None
    oom_killed: bool = False
    networks: Mapping[str, str] = field(default_factory=dict)  # engine network name -> IPv4 address
    # Compose network name ("default") -> IPv4 address, for the container's application
    # networks only (observe.addresses): what ContainerStatus.addresses reports.
    addresses: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[PortBinding] = ()
    failure_reason: int = 0  # a ccs.v1.FailureReason when the engine could not start it
    pid: int = 0  # its process while it runs (the way into its network namespace); 0 otherwise
    # The engine's health check as a command to exec (CMD argv, or the shell and a CMD-SHELL
    # string), () without one (none, NONE, disabled), and its per-run timeout in seconds
    # (0: the engine's default): what the agent's first check runs (nodeagent.first_check).
    health_cmd: Sequence[str] = ()
    health_timeout: float = 0.0

    @property
    def container_id(self) -> str:
        """The ccs container id (Meta.id), from the ccs.container-id label."""
        return self.labels.get(naming.CONTAINER_ID, "")

    @property
    def generation(self) -> int:
        """The spec generation the container was created from (ccs.generation label)."""
        return _int_label(self.labels, naming.GENERATION)

    @property
    def app_revision(self) -> int:
        """The application revision the container was created from (ccs.app-revision label)."""
        return _int_label(self.labels, naming.APP_REVISION)


def _int_label(labels: Mapping[str, str], key: str) -> int:
    try:
        return int(labels.get(key, "0"))
    except ValueError:
        return 0


class EventKind(enum.Enum):
    """The engine events the agent reacts to (Docker actions of the same names)."""

    START = "start"
    DIE = "die"
    HEALTH_STATUS = "health_status"
    OOM = "oom"
    DESTROY = "destroy"


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """One engine event about a managed container.

    Events are hints for a level-triggered agent: on any event it re-inspects the container
    (or, for DESTROY, forgets it); nothing is computed from the event payload alone.
    """

    kind: EventKind
    docker_id: str
    labels: Mapping[str, str]
    time: float  # unix seconds
    exit_code: int | None = None  # DIE only
    health: str = ""  # HEALTH_STATUS only: healthy | unhealthy | starting

    @property
    def container_id(self) -> str:
        """The ccs container id (Meta.id), from the ccs.container-id label."""
        return self.labels.get(naming.CONTAINER_ID, "")

    @property
    def cluster(self) -> str:
        """The ccs cluster the container belongs to, from the ccs.cluster label."""
        return self.labels.get(naming.CLUSTER, "")


@dataclass(frozen=True, slots=True)
class HostInfo:
    """Capacity and versions of the host, reported in NodeStatus."""

    cpus: float
    memory_bytes: int
    docker_version: str
    os: str
    arch: str
    hostname: str


@dataclass(frozen=True, slots=True)
class ExecResult:
    """The outcome of a command run inside a container."""

    exit_code: int
    output: bytes


@dataclass(frozen=True, slots=True)
class ExecEnd:
    """How an interactive exec ended: its exit code, and why it did not run (126/127)."""

    exit_code: int
    message: str = ""


class ExecSession(Protocol):
    """One running `ccs exec` command (nodeagent.runtime.docker_exec)."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(1 stdout | 2 stderr, bytes) until the command's output ends."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, rows: int, cols: int) -> None: ...

    async def wait(self) -> ExecEnd:
        """The exit, once output has ended."""
        ...

    async def close(self) -> None:
        """End the session, killing the command if it still runs."""
        ...


# ------------------------------------------------------------------------------ errors


class RuntimeFailure(Exception):
    """Base of every error a runtime raises; `reason` is fit for ContainerStatus.message.

    `permanent` tells the agent whether retrying the same spec can help: a missing image or an
    invalid spec will not fix itself, an unreachable engine will. A permanent error's
    `failure_reason` travels in ContainerStatus.failure_reason, which is what clients decide on
    (the deploy verdict), not the wording of `reason`.
    """

    permanent: bool = False
    failure_reason: int = Reason.FAILURE_REASON_ENGINE_REFUSED

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageNotFound(RuntimeFailure):
    """The image is not on the host and could not be pulled."""

    permanent = True
    failure_reason = Reason.FAILURE_REASON_IMAGE_NOT_FOUND

    def __init__(self, image: str, detail: str = "") -> None:
        reason = f"image not found: {image}"
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.image = image
        self.detail = detail


class OutOfDisk(RuntimeFailure):
    """A pull failed because the node's disk is full. Not permanent: the pull is retried with
    backoff (space may be freed meanwhile); the status says so, with the Engine's own text."""

    def __init__(self, image: str, detail: str) -> None:
        super().__init__(f"pull of {image} failed: the node is out of disk space ({detail}); free space on the node "
                         "(e.g. remove unused images) and it is retried")
        self.image = image
        self.detail = detail


def pull_failure(image: str, detail: str) -> RuntimeFailure:
    """What a failed pull of an image absent from the node is: out of disk space when the
    Engine says so (ENOSPC while writing layers), else the image cannot be had."""
    if "no space left on device" in detail.lower():
        return OutOfDisk(image, detail)
    return ImageNotFound(image, detail)


class InvalidSpec(RuntimeFailure):
    """The spec cannot be turned into an engine request; names the field and why."""

    permanent = True
    failure_reason = Reason.FAILURE_REASON_INVALID_SPEC

    def __init__(self, field_name: str, why: str) -> None:
        super().__init__(f"invalid spec: {field_name}: {why}")
        self.field = field_name
        self.why = why


class StartFailed(RuntimeFailure):
    """The engine refused to start the container (bad command, port already allocated...)."""

    permanent = True
    failure_reason = Reason.FAILURE_REASON_START_FAILED


class NetworkFailed(RuntimeFailure):
    """The engine refused the application network: its address pools are exhausted, or the
    subnet the control plane gave overlaps another network on the host. Retrying the same
    request gets the same answer."""

    permanent = True
    failure_reason = Reason.FAILURE_REASON_NETWORK


class VolumeFailed(RuntimeFailure):
    """The engine cannot give the container the volume the template describes: its driver is not
    installed on the node, the driver refused the options, or a volume of that name exists with
    another driver, other options or without the template's labels (the engine never changes an
    existing volume). Retrying the same request gets the same answer."""

    permanent = True


class VolumeMissing(RuntimeFailure):
    """An external volume does not exist on the node. Not permanent: the container stays
    pending, and the agent retries with backoff, until someone creates it there."""

    permanent = False


class NotFound(RuntimeFailure):
    """The engine object (image, network, volume, container) does not exist."""

    permanent = True


class ContainerNotFound(NotFound):
    """No container with that docker id (it was removed behind the agent's back)."""


class ResourceBusy(RuntimeFailure):
    """A network or volume is still in use (its containers are not gone yet); retry later."""

    permanent = False


class ExecNotRunning(RuntimeFailure):
    """An exec into a container that exists but is not running (the engine answers 409)."""


class EngineUnavailable(RuntimeFailure):
    """The engine did not answer or answered with a server error; worth retrying."""

    permanent = False


@dataclass(frozen=True, slots=True)
class Bridge:
    """An application network the engine holds (`Runtime.app_networks`)."""

    name: str
    application: str
    network: str  # the Compose network it stands for ("default" for the implicit one)
    subnets: tuple[str, ...]  # its IPv4 subnets (empty: made on the engine's pools)


# ------------------------------------------------------------------------------ protocol

#: Called by `prepare` right before an image pull starts, so the agent can report PULLING.
PullCallback = Callable[[str], None]


@runtime_checkable
class Runtime(Protocol):
    """The narrow interface between the node agent and a container engine.

    Every method is idempotent where the engine allows it (create returns the existing
    container of the same ccs id, stop/remove of a gone container succeed), because the
    agent is level-triggered and may repeat any step after a crash.
    """

    async def prepare(self, c: resources_pb2.Container, *, on_pull: PullCallback | None = None,
                      auth: agent_pb2.PullAuth | None = None) -> None:
        """Make the image, the app network and the named volumes exist; ``auth`` is the
        registry login a pull of the image uses (never stored, logged or given to the
        engine's configuration)."""
        ...

    async def create(self, c: resources_pb2.Container) -> str:
        """Create (not start) the container; return its docker id."""
        ...

    async def start(self, docker_id: str) -> None:
        """Start a created or exited container."""
        ...

    async def stop(self, docker_id: str, grace_seconds: float) -> None:
        """Send the stop signal, then SIGKILL after `grace_seconds`."""
        ...

    async def remove(self, docker_id: str, *, volumes: bool) -> None:
        """Remove the container (forcefully), and its anonymous volumes when asked."""
        ...

    async def inspect(self, docker_id: str) -> Observed | None:
        """The container's observed state, or None when it does not exist."""
        ...

    async def remove_image(self, image: str) -> bool:
        """Remove the reference ``image`` (never forced: an image a container uses stays, as
        RuntimeFailure); True when that deleted the image (not only a reference to it)."""
        ...

    async def image_disk_usage(self) -> int:
        """Bytes the engine's image layers take (shared layers once): what a collection frees
        is the difference before and after it."""
        ...

    async def list_managed(self) -> list[Observed]:
        """Every container this runtime manages (labelled ccs.managed=true)."""
        ...

    def events(self, *, since: float | None = None) -> AsyncIterator[RuntimeEvent]:
        """Engine events about managed containers, from `since` (default: now) on."""
        ...

    def logs(
        self, docker_id: str, *, follow: bool, tail: int | None, since: float | None
    ) -> AsyncIterator[bytes]:
        """The container's stdout and stderr, interleaved as written."""
        ...

    async def exec(self, docker_id: str, cmd: Sequence[str], *, timeout_seconds: float) -> ExecResult:
        """Run a command inside the running container (for cmd probes)."""
        ...

    async def open_exec(
        self, docker_id: str, command: Sequence[str], *, tty: bool, stdin: bool, rows: int, cols: int
    ) -> ExecSession:
        """Start an interactive command in the running container (`ccs exec`); ExecNotRunning
        when the container is not running."""
        ...

    async def remove_app_resources(self, cluster: str, app: str, *, volumes: bool) -> None:
        """Remove the app network and leftover anonymous volumes; named volumes if asked."""
        ...

    async def app_networks(self, cluster: str) -> list[Bridge]:
        """The application networks of `cluster` the engine holds, every block's bridge."""
        ...

    async def remove_unused_network(self, name: str) -> bool:
        """Remove the application network `name` unless a container, in any state, uses it;
        whether it is gone now."""
        ...

    async def info(self) -> HostInfo:
        """Host capacity and versions."""
        ...

    async def aclose(self) -> None:
        """Release threads and connections."""
        ...
