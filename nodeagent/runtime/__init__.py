"""The node agent's container runtime layer: a narrow, faked-or-real seam to the engine.

Design:
- `types.Runtime` is the only thing the agent's reconcile code sees (prepare, create, start,
  stop, remove, inspect, list_managed, events, logs, exec, remove_app_resources, info). It is
  small so that `FakeRuntime` can back hollow nodes in scale tests while `DockerRuntime` is
  tested against a real daemon, and the same agent code runs on both.
- Pure and I/O code are apart: `translate` (spec -> Engine API body), `observe` (inspect/event
  -> ccs state) and `naming` (names, labels) do no I/O and are tested with tables;
  `docker_engine` and `streams` do the I/O.
- The engine is cattle, labels are memory: every object carries ccs.* labels, so a restarted
  agent adopts what runs (`list_managed`) instead of keeping a local database.
- The control plane owns restarts: containers are created with Docker restart policy "no".
- Errors carry their retry policy (`RuntimeFailure.permanent`) and a user-facing `reason`.
- This package does not import `docker_engine`: importing a pure module (`translate`, `observe`)
  or the fake must not load the Docker SDK (`docker`, which pulls in requests and urllib3), so
  the agent's pure code and hollow nodes stay free of it. The real runtime is imported from
  `nodeagent.runtime.docker_engine` by the one caller that needs it (`nodeagent.main`).
"""

from .fake import FakeRuntime
from .types import (
    ContainerNotFound,
    EngineUnavailable,
    EventKind,
    ExecResult,
    HostInfo,
    ImageNotFound,
    InvalidSpec,
    NotFound,
    Observed,
    OutOfDisk,
    PortBinding,
    ResourceBusy,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
    StartFailed,
    State,
    VolumeFailed,
    VolumeMissing,
)

__all__ = [
    "ContainerNotFound",
    "EngineUnavailable",
    "EventKind",
    "ExecResult",
    "FakeRuntime",
    "HostInfo",
    "ImageNotFound",
    "InvalidSpec",
    "NotFound",
    "Observed",
    "OutOfDisk",
    "PortBinding",
    "ResourceBusy",
    "Runtime",
    "RuntimeEvent",
    "RuntimeFailure",
    "StartFailed",
    "State",
    "VolumeFailed",
    "VolumeMissing",
]
