"""Pydantic models of the parser's output, mirroring ccs.v1 resources field for field.

The converters build these typed objects (not protobuf messages) so that mypy checks every
assignment; ``to_proto`` then turns a model into its message with ``json_format.ParseDict``,
which works because the field names are the proto's. A unit test guards that the two stay in
step. ``None`` means "not set" and is dropped on the way to the proto.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PortSpec(_Model):
    target: int
    published: int = 0
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = ""
    mode: Literal["", "host"] = ""


class NamedVolume(_Model):
    name: str
    driver: str | None = None
    external: bool = False
    labels: dict[str, str] = {}
    driver_opts: dict[str, str] = {}
    volume_name: str | None = None


class BindMountOptions(_Model):
    propagation: Literal["", "shared", "slave", "private", "rshared", "rslave", "rprivate"] = ""
    non_recursive: bool = False
    create_host_path: bool = False
    selinux: Literal["", "z", "Z"] = ""


class TmpfsMountOptions(_Model):
    size_bytes: int | None = None
    mode: int | None = None


class VolumeMount(_Model):
    type: Literal["volume", "bind", "tmpfs"]
    source: str = ""
    target: str
    read_only: bool = False
    volume: NamedVolume | None = None
    bind: BindMountOptions | None = None
    nocopy: bool = False
    tmpfs: TmpfsMountOptions | None = None
    volume_labels: dict[str, str] = {}


class HealthCheck(_Model):
    test: list[str] = []
    interval_ms: int | None = None
    timeout_ms: int | None = None
    start_period_ms: int | None = None
    retries: int | None = None
    disable: bool = False


class Probe(_Model):
    kind: Literal["http", "tcp", "cmd"]
    port: int | None = None
    path: str | None = None
    cmd: list[str] = []
    timeout_seconds: int | None = None
    initial_delay_seconds: int | None = None


class Dependency(_Model):
    service: str
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = (
        "service_started"
    )
    restart: bool = False
    required: bool = True


class ServiceNetwork(_Model):
    name: str
    aliases: list[str] = []


class DeviceMapping(_Model):
    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


class Ulimit(_Model):
    name: str
    soft: int
    hard: int


class Placement(_Model):
    constraints: list[str] = []
    spread: list[str] = []
    max_replicas_per_node: int | None = None


class ResourceAmounts(_Model):
    cpus: float | None = None
    memory_bytes: int | None = None
    pids: int | None = None


class Resources(_Model):
    limits: ResourceAmounts | None = None
    reservations: ResourceAmounts | None = None


class RestartPolicy(_Model):
    condition: Literal["none", "on-failure", "any"] | None = None
    delay_ms: int | None = None
    max_attempts: int | None = None
    window_ms: int | None = None


class UpdateConfig(_Model):
    parallelism: int | None = None
    delay_ms: int | None = None
    failure_action: Literal["pause", "continue", "rollback"] | None = None
    monitor_ms: int | None = None
    max_failure_ratio: float | None = None
    order: Literal["stop-first", "start-first"] | None = None


class RouteTLS(_Model):
    secret: str
    version: int = 0  # pinned version; 0: the latest, filled in at deploy
    pinned: bool = False


class Route(_Model):
    port: int
    domain: str
    path: str = "/"
    tls: RouteTLS | None = None


Mode = Literal["SERVICE_MODE_REPLICATED", "SERVICE_MODE_GLOBAL"]
Strategy = Literal["rolling", "blue-green", "canary"]
NodeLoss = Literal["NODE_LOSS_POLICY_WAIT", "NODE_LOSS_POLICY_RESCHEDULE"]


class FileRef(_Model):
    name: str
    version: int = 0
    pinned: bool = False
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444
    key: str = ""


class ServiceSpec(_Model):
    image: str = ""
    command: list[str] = []
    entrypoint: list[str] = []
    environment: dict[str, str] = {}
    ports: list[PortSpec] = []
    expose: list[str] = []
    volumes: list[VolumeMount] = []
    labels: dict[str, str] = {}
    healthcheck: HealthCheck | None = None
    restart: str | None = None
    depends_on: list[Dependency] = []
    networks: list[ServiceNetwork] = []
    mode: Mode = "SERVICE_MODE_REPLICATED"
    replicas: int | None = None
    placement: Placement | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    probe: Probe | None = None
    routes: list[Route] = []
    session_sticky: bool = False
    always_pull: bool = False
    registry_login: str = ""  # set at deploy from the top-level x-ccs.registry (api.image_pins)
    stop_grace_period_ms: int | None = None
    stop_signal: str | None = None
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    strategy: Strategy | None = None
    cap_add: list[str] = []
    cap_drop: list[str] = []
    security_opt: list[str] = []
    privileged: bool = False
    devices: list[DeviceMapping] = []
    network_mode: Literal["", "host"] = ""
    pid: Literal["", "host"] = ""
    read_only: bool = False
    ulimits: list[Ulimit] = []
    shm_size_bytes: int | None = None
    sysctls: dict[str, str] = {}
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_search: list[str] = []
    dns_opt: list[str] = []
    group_add: list[str] = []
    tmpfs: dict[str, str] = {}
    init: bool | None = None
    cpu_shares: int | None = None
    oom_score_adj: int | None = None
    replace_unhealthy: bool | None = None  # None: unset, which means true
    on_node_loss: NodeLoss | None = None
    secrets: list[FileRef] = []
    configs: list[FileRef] = []


class NetworkDef(_Model):
    name: str
    driver: str | None = None
    external: bool = False
    internal: bool = False
    external_name: str | None = None


M = TypeVar("M", bound=Message)


def to_proto(model: _Model, message: M) -> M:
    """Fill ``message`` (a fresh proto of the mirrored type) from ``model`` and return it."""
    json_format.ParseDict(model.model_dump(mode="json", exclude_none=True), message)
    return message

