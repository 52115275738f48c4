import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_ROLE_UNSPECIFIED: _ClassVar[NodeRole]
    NODE_ROLE_WORKER: _ClassVar[NodeRole]
    NODE_ROLE_MANAGER: _ClassVar[NodeRole]

class NodeAvailability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_AVAILABILITY_UNSPECIFIED: _ClassVar[NodeAvailability]
    NODE_AVAILABILITY_ACTIVE: _ClassVar[NodeAvailability]
    NODE_AVAILABILITY_PAUSE: _ClassVar[NodeAvailability]
    NODE_AVAILABILITY_DRAIN: _ClassVar[NodeAvailability]

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_READY: _ClassVar[NodeState]
    NODE_STATE_DOWN: _ClassVar[NodeState]
    NODE_STATE_DISCONNECTED: _ClassVar[NodeState]

class ServiceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_MODE_UNSPECIFIED: _ClassVar[ServiceMode]
    SERVICE_MODE_REPLICATED: _ClassVar[ServiceMode]
    SERVICE_MODE_GLOBAL: _ClassVar[ServiceMode]

class NodeLossPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_LOSS_POLICY_UNSPECIFIED: _ClassVar[NodeLossPolicy]
    NODE_LOSS_POLICY_WAIT: _ClassVar[NodeLossPolicy]
    NODE_LOSS_POLICY_RESCHEDULE: _ClassVar[NodeLossPolicy]

class DesiredState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DESIRED_STATE_UNSPECIFIED: _ClassVar[DesiredState]
    DESIRED_STATE_RUNNING: _ClassVar[DesiredState]
    DESIRED_STATE_STOPPED: _ClassVar[DesiredState]
    DESIRED_STATE_REMOVED: _ClassVar[DesiredState]

class ContainerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTAINER_STATE_UNSPECIFIED: _ClassVar[ContainerState]
    CONTAINER_STATE_PENDING: _ClassVar[ContainerState]
    CONTAINER_STATE_ASSIGNED: _ClassVar[ContainerState]
    CONTAINER_STATE_PULLING: _ClassVar[ContainerState]
    CONTAINER_STATE_STARTING: _ClassVar[ContainerState]
    CONTAINER_STATE_RUNNING: _ClassVar[ContainerState]
    CONTAINER_STATE_HEALTHY: _ClassVar[ContainerState]
    CONTAINER_STATE_UNHEALTHY: _ClassVar[ContainerState]
    CONTAINER_STATE_EXITED: _ClassVar[ContainerState]
    CONTAINER_STATE_FAILED: _ClassVar[ContainerState]
    CONTAINER_STATE_STOPPED: _ClassVar[ContainerState]
    CONTAINER_STATE_REMOVED: _ClassVar[ContainerState]

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    FAILURE_REASON_IMAGE_NOT_FOUND: _ClassVar[FailureReason]
    FAILURE_REASON_INVALID_SPEC: _ClassVar[FailureReason]
    FAILURE_REASON_START_FAILED: _ClassVar[FailureReason]
    FAILURE_REASON_NETWORK: _ClassVar[FailureReason]
    FAILURE_REASON_ENGINE_REFUSED: _ClassVar[FailureReason]

class ReleasePhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELEASE_PHASE_UNSPECIFIED: _ClassVar[ReleasePhase]
    RELEASE_PHASE_PROGRESSING: _ClassVar[ReleasePhase]
    RELEASE_PHASE_PAUSED: _ClassVar[ReleasePhase]
    RELEASE_PHASE_AWAITING_SHIFT: _ClassVar[ReleasePhase]
    RELEASE_PHASE_ROLLING_BACK: _ClassVar[ReleasePhase]
    RELEASE_PHASE_SUCCEEDED: _ClassVar[ReleasePhase]
    RELEASE_PHASE_ROLLED_BACK: _ClassVar[ReleasePhase]
    RELEASE_PHASE_FAILED: _ClassVar[ReleasePhase]
    RELEASE_PHASE_SUPERSEDED: _ClassVar[ReleasePhase]
NODE_ROLE_UNSPECIFIED: NodeRole
NODE_ROLE_WORKER: NodeRole
NODE_ROLE_MANAGER: NodeRole
NODE_AVAILABILITY_UNSPECIFIED: NodeAvailability
NODE_AVAILABILITY_ACTIVE: NodeAvailability
NODE_AVAILABILITY_PAUSE: NodeAvailability
NODE_AVAILABILITY_DRAIN: NodeAvailability
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_READY: NodeState
NODE_STATE_DOWN: NodeState
NODE_STATE_DISCONNECTED: NodeState
SERVICE_MODE_UNSPECIFIED: ServiceMode
SERVICE_MODE_REPLICATED: ServiceMode
SERVICE_MODE_GLOBAL: ServiceMode
NODE_LOSS_POLICY_UNSPECIFIED: NodeLossPolicy
NODE_LOSS_POLICY_WAIT: NodeLossPolicy
NODE_LOSS_POLICY_RESCHEDULE: NodeLossPolicy
DESIRED_STATE_UNSPECIFIED: DesiredState
DESIRED_STATE_RUNNING: DesiredState
DESIRED_STATE_STOPPED: DesiredState
DESIRED_STATE_REMOVED: DesiredState
CONTAINER_STATE_UNSPECIFIED: ContainerState
CONTAINER_STATE_PENDING: ContainerState
CONTAINER_STATE_ASSIGNED: ContainerState
CONTAINER_STATE_PULLING: ContainerState
CONTAINER_STATE_STARTING: ContainerState
CONTAINER_STATE_RUNNING: ContainerState
CONTAINER_STATE_HEALTHY: ContainerState
CONTAINER_STATE_UNHEALTHY: ContainerState
CONTAINER_STATE_EXITED: ContainerState
CONTAINER_STATE_FAILED: ContainerState
CONTAINER_STATE_STOPPED: ContainerState
CONTAINER_STATE_REMOVED: ContainerState
FAILURE_REASON_UNSPECIFIED: FailureReason
FAILURE_REASON_IMAGE_NOT_FOUND: FailureReason
FAILURE_REASON_INVALID_SPEC: FailureReason
FAILURE_REASON_START_FAILED: FailureReason
FAILURE_REASON_NETWORK: FailureReason
FAILURE_REASON_ENGINE_REFUSED: FailureReason
RELEASE_PHASE_UNSPECIFIED: ReleasePhase
RELEASE_PHASE_PROGRESSING: ReleasePhase
RELEASE_PHASE_PAUSED: ReleasePhase
RELEASE_PHASE_AWAITING_SHIFT: ReleasePhase
RELEASE_PHASE_ROLLING_BACK: ReleasePhase
RELEASE_PHASE_SUCCEEDED: ReleasePhase
RELEASE_PHASE_ROLLED_BACK: ReleasePhase
RELEASE_PHASE_FAILED: ReleasePhase
RELEASE_PHASE_SUPERSEDED: ReleasePhase

class Meta(_message.Message):
    __slots__ = ("id", "name", "created_at", "updated_at", "labels", "resource_version")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    resource_version: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., resource_version: _Optional[int] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("meta", "description", "pod_cidr", "policy")
    META_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POD_CIDR_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    description: str
    pod_cidr: str
    policy: ClusterPolicy
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., description: _Optional[str] = ..., pod_cidr: _Optional[str] = ..., policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ...) -> None: ...

class ClusterPolicy(_message.Message):
    __slots__ = ("allow",)
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    allow: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allow: _Optional[_Iterable[str]] = ...) -> None: ...

class SubnetAllocation(_message.Message):
    __slots__ = ("application", "network", "node", "subnet", "index")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    application: str
    network: str
    node: str
    subnet: str
    index: int
    def __init__(self, application: _Optional[str] = ..., network: _Optional[str] = ..., node: _Optional[str] = ..., subnet: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class NodeResources(_message.Message):
    __slots__ = ("cpus", "memory_bytes")
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpus: float
    memory_bytes: int
    def __init__(self, cpus: _Optional[float] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class NodeSpec(_message.Message):
    __slots__ = ("role", "availability", "prune_requested")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    PRUNE_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    role: NodeRole
    availability: NodeAvailability
    prune_requested: int
    def __init__(self, role: _Optional[_Union[NodeRole, str]] = ..., availability: _Optional[_Union[NodeAvailability, str]] = ..., prune_requested: _Optional[int] = ...) -> None: ...

class ImagePrune(_message.Message):
    __slots__ = ("request", "images_removed", "bytes_freed", "images", "at", "message")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    IMAGES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request: int
    images_removed: int
    bytes_freed: int
    images: _containers.RepeatedScalarFieldContainer[str]
    at: _timestamp_pb2.Timestamp
    message: str
    def __init__(self, request: _Optional[int] = ..., images_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., images: _Optional[_Iterable[str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("state", "address", "hostname", "capacity", "docker_version", "agent_version", "last_heartbeat", "message", "os", "arch", "agent_features", "prune")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    DOCKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    AGENT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    state: NodeState
    address: str
    hostname: str
    capacity: NodeResources
    docker_version: str
    agent_version: str
    last_heartbeat: _timestamp_pb2.Timestamp
    message: str
    os: str
    arch: str
    agent_features: _containers.RepeatedScalarFieldContainer[str]
    prune: ImagePrune
    def __init__(self, state: _Optional[_Union[NodeState, str]] = ..., address: _Optional[str] = ..., hostname: _Optional[str] = ..., capacity: _Optional[_Union[NodeResources, _Mapping]] = ..., docker_version: _Optional[str] = ..., agent_version: _Optional[str] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., os: _Optional[str] = ..., arch: _Optional[str] = ..., agent_features: _Optional[_Iterable[str]] = ..., prune: _Optional[_Union[ImagePrune, _Mapping]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("meta", "cluster", "spec", "status", "fence_epoch")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FENCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    spec: NodeSpec
    status: NodeStatus
    fence_epoch: int
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., spec: _Optional[_Union[NodeSpec, _Mapping]] = ..., status: _Optional[_Union[NodeStatus, _Mapping]] = ..., fence_epoch: _Optional[int] = ...) -> None: ...

class PortSpec(_message.Message):
    __slots__ = ("target", "published", "protocol", "host_ip", "mode")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HOST_IP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    target: int
    published: int
    protocol: str
    host_ip: str
    mode: str
    def __init__(self, target: _Optional[int] = ..., published: _Optional[int] = ..., protocol: _Optional[str] = ..., host_ip: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class VolumeMount(_message.Message):
    __slots__ = ("type", "source", "target", "read_only", "volume", "bind", "nocopy", "tmpfs", "volume_labels")
    class VolumeLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    BIND_FIELD_NUMBER: _ClassVar[int]
    NOCOPY_FIELD_NUMBER: _ClassVar[int]
    TMPFS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_LABELS_FIELD_NUMBER: _ClassVar[int]
    type: str
    source: str
    target: str
    read_only: bool
    volume: NamedVolume
    bind: BindMountOptions
    nocopy: bool
    tmpfs: TmpfsMountOptions
    volume_labels: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., read_only: _Optional[bool] = ..., volume: _Optional[_Union[NamedVolume, _Mapping]] = ..., bind: _Optional[_Union[BindMountOptions, _Mapping]] = ..., nocopy: _Optional[bool] = ..., tmpfs: _Optional[_Union[TmpfsMountOptions, _Mapping]] = ..., volume_labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BindMountOptions(_message.Message):
    __slots__ = ("propagation", "non_recursive", "create_host_path", "selinux")
    PROPAGATION_FIELD_NUMBER: _ClassVar[int]
    NON_RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_HOST_PATH_FIELD_NUMBER: _ClassVar[int]
    SELINUX_FIELD_NUMBER: _ClassVar[int]
    propagation: str
    non_recursive: bool
    create_host_path: bool
    selinux: str
    def __init__(self, propagation: _Optional[str] = ..., non_recursive: _Optional[bool] = ..., create_host_path: _Optional[bool] = ..., selinux: _Optional[str] = ...) -> None: ...

class TmpfsMountOptions(_message.Message):
    __slots__ = ("size_bytes", "mode")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    mode: int
    def __init__(self, size_bytes: _Optional[int] = ..., mode: _Optional[int] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("test", "interval_ms", "timeout_ms", "start_period_ms", "retries", "disable")
    TEST_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    DISABLE_FIELD_NUMBER: _ClassVar[int]
    test: _containers.RepeatedScalarFieldContainer[str]
    interval_ms: int
    timeout_ms: int
    start_period_ms: int
    retries: int
    disable: bool
    def __init__(self, test: _Optional[_Iterable[str]] = ..., interval_ms: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., start_period_ms: _Optional[int] = ..., retries: _Optional[int] = ..., disable: _Optional[bool] = ...) -> None: ...

class Probe(_message.Message):
    __slots__ = ("kind", "port", "path", "cmd", "timeout_seconds", "initial_delay_seconds")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CMD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    port: int
    path: str
    cmd: _containers.RepeatedScalarFieldContainer[str]
    timeout_seconds: int
    initial_delay_seconds: int
    def __init__(self, kind: _Optional[str] = ..., port: _Optional[int] = ..., path: _Optional[str] = ..., cmd: _Optional[_Iterable[str]] = ..., timeout_seconds: _Optional[int] = ..., initial_delay_seconds: _Optional[int] = ...) -> None: ...

class Dependency(_message.Message):
    __slots__ = ("service", "condition", "restart", "required")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    service: str
    condition: str
    restart: bool
    required: bool
    def __init__(self, service: _Optional[str] = ..., condition: _Optional[str] = ..., restart: _Optional[bool] = ..., required: _Optional[bool] = ...) -> None: ...

class ServiceNetwork(_message.Message):
    __slots__ = ("name", "aliases")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("constraints", "spread", "max_replicas_per_node")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    spread: _containers.RepeatedScalarFieldContainer[str]
    max_replicas_per_node: int
    def __init__(self, constraints: _Optional[_Iterable[str]] = ..., spread: _Optional[_Iterable[str]] = ..., max_replicas_per_node: _Optional[int] = ...) -> None: ...

class ResourceAmounts(_message.Message):
    __slots__ = ("cpus", "memory_bytes", "pids")
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    cpus: float
    memory_bytes: int
    pids: int
    def __init__(self, cpus: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., pids: _Optional[int] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("limits", "reservations")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    limits: ResourceAmounts
    reservations: ResourceAmounts
    def __init__(self, limits: _Optional[_Union[ResourceAmounts, _Mapping]] = ..., reservations: _Optional[_Union[ResourceAmounts, _Mapping]] = ...) -> None: ...

class RestartPolicy(_message.Message):
    __slots__ = ("condition", "delay_ms", "max_attempts", "window_ms")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    condition: str
    delay_ms: int
    max_attempts: int
    window_ms: int
    def __init__(self, condition: _Optional[str] = ..., delay_ms: _Optional[int] = ..., max_attempts: _Optional[int] = ..., window_ms: _Optional[int] = ...) -> None: ...

class UpdateConfig(_message.Message):
    __slots__ = ("parallelism", "delay_ms", "failure_action", "monitor_ms", "max_failure_ratio", "order")
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_ACTION_FIELD_NUMBER: _ClassVar[int]
    MONITOR_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURE_RATIO_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    parallelism: int
    delay_ms: int
    failure_action: str
    monitor_ms: int
    max_failure_ratio: float
    order: str
    def __init__(self, parallelism: _Optional[int] = ..., delay_ms: _Optional[int] = ..., failure_action: _Optional[str] = ..., monitor_ms: _Optional[int] = ..., max_failure_ratio: _Optional[float] = ..., order: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("port", "domain", "path", "tls")
    PORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    port: int
    domain: str
    path: str
    tls: RouteTLS
    def __init__(self, port: _Optional[int] = ..., domain: _Optional[str] = ..., path: _Optional[str] = ..., tls: _Optional[_Union[RouteTLS, _Mapping]] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("image", "command", "entrypoint", "environment", "ports", "expose", "volumes", "labels", "healthcheck", "restart", "depends_on", "networks", "mode", "replicas", "placement", "resources", "restart_policy", "update_config", "rollback_config", "probe", "routes", "session_sticky", "always_pull", "registry_login", "stop_grace_period_ms", "stop_signal", "user", "working_dir", "hostname", "strategy", "cap_add", "cap_drop", "security_opt", "privileged", "devices", "network_mode", "pid", "read_only", "ulimits", "shm_size_bytes", "sysctls", "extra_hosts", "dns", "dns_search", "dns_opt", "group_add", "tmpfs", "init", "cpu_shares", "oom_score_adj", "replace_unhealthy", "on_node_loss", "secrets", "configs")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SysctlsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TmpfsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    EXPOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RESTART_POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    SESSION_STICKY_FIELD_NUMBER: _ClassVar[int]
    ALWAYS_PULL_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_LOGIN_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CAP_ADD_FIELD_NUMBER: _ClassVar[int]
    CAP_DROP_FIELD_NUMBER: _ClassVar[int]
    SECURITY_OPT_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MODE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    SHM_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SYSCTLS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HOSTS_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    DNS_SEARCH_FIELD_NUMBER: _ClassVar[int]
    DNS_OPT_FIELD_NUMBER: _ClassVar[int]
    GROUP_ADD_FIELD_NUMBER: _ClassVar[int]
    TMPFS_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    CPU_SHARES_FIELD_NUMBER: _ClassVar[int]
    OOM_SCORE_ADJ_FIELD_NUMBER: _ClassVar[int]
    REPLACE_UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    ON_NODE_LOSS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    entrypoint: _containers.RepeatedScalarFieldContainer[str]
    environment: _containers.ScalarMap[str, str]
    ports: _containers.RepeatedCompositeFieldContainer[PortSpec]
    expose: _containers.RepeatedScalarFieldContainer[str]
    volumes: _containers.RepeatedCompositeFieldContainer[VolumeMount]
    labels: _containers.ScalarMap[str, str]
    healthcheck: HealthCheck
    restart: str
    depends_on: _containers.RepeatedCompositeFieldContainer[Dependency]
    networks: _containers.RepeatedCompositeFieldContainer[ServiceNetwork]
    mode: ServiceMode
    replicas: int
    placement: Placement
    resources: Resources
    restart_policy: RestartPolicy
    update_config: UpdateConfig
    rollback_config: UpdateConfig
    probe: Probe
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    session_sticky: bool
    always_pull: bool
    registry_login: str
    stop_grace_period_ms: int
    stop_signal: str
    user: str
    working_dir: str
    hostname: str
    strategy: str
    cap_add: _containers.RepeatedScalarFieldContainer[str]
    cap_drop: _containers.RepeatedScalarFieldContainer[str]
    security_opt: _containers.RepeatedScalarFieldContainer[str]
    privileged: bool
    devices: _containers.RepeatedCompositeFieldContainer[DeviceMapping]
    network_mode: str
    pid: str
    read_only: bool
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    shm_size_bytes: int
    sysctls: _containers.ScalarMap[str, str]
    extra_hosts: _containers.RepeatedScalarFieldContainer[str]
    dns: _containers.RepeatedScalarFieldContainer[str]
    dns_search: _containers.RepeatedScalarFieldContainer[str]
    dns_opt: _containers.RepeatedScalarFieldContainer[str]
    group_add: _containers.RepeatedScalarFieldContainer[str]
    tmpfs: _containers.ScalarMap[str, str]
    init: bool
    cpu_shares: int
    oom_score_adj: int
    replace_unhealthy: bool
    on_node_loss: NodeLossPolicy
    secrets: _containers.RepeatedCompositeFieldContainer[FileRef]
    configs: _containers.RepeatedCompositeFieldContainer[FileRef]
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., entrypoint: _Optional[_Iterable[str]] = ..., environment: _Optional[_Mapping[str, str]] = ..., ports: _Optional[_Iterable[_Union[PortSpec, _Mapping]]] = ..., expose: _Optional[_Iterable[str]] = ..., volumes: _Optional[_Iterable[_Union[VolumeMount, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., healthcheck: _Optional[_Union[HealthCheck, _Mapping]] = ..., restart: _Optional[str] = ..., depends_on: _Optional[_Iterable[_Union[Dependency, _Mapping]]] = ..., networks: _Optional[_Iterable[_Union[ServiceNetwork, _Mapping]]] = ..., mode: _Optional[_Union[ServiceMode, str]] = ..., replicas: _Optional[int] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., restart_policy: _Optional[_Union[RestartPolicy, _Mapping]] = ..., update_config: _Optional[_Union[UpdateConfig, _Mapping]] = ..., rollback_config: _Optional[_Union[UpdateConfig, _Mapping]] = ..., probe: _Optional[_Union[Probe, _Mapping]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., session_sticky: _Optional[bool] = ..., always_pull: _Optional[bool] = ..., registry_login: _Optional[str] = ..., stop_grace_period_ms: _Optional[int] = ..., stop_signal: _Optional[str] = ..., user: _Optional[str] = ..., working_dir: _Optional[str] = ..., hostname: _Optional[str] = ..., strategy: _Optional[str] = ..., cap_add: _Optional[_Iterable[str]] = ..., cap_drop: _Optional[_Iterable[str]] = ..., security_opt: _Optional[_Iterable[str]] = ..., privileged: _Optional[bool] = ..., devices: _Optional[_Iterable[_Union[DeviceMapping, _Mapping]]] = ..., network_mode: _Optional[str] = ..., pid: _Optional[str] = ..., read_only: _Optional[bool] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., shm_size_bytes: _Optional[int] = ..., sysctls: _Optional[_Mapping[str, str]] = ..., extra_hosts: _Optional[_Iterable[str]] = ..., dns: _Optional[_Iterable[str]] = ..., dns_search: _Optional[_Iterable[str]] = ..., dns_opt: _Optional[_Iterable[str]] = ..., group_add: _Optional[_Iterable[str]] = ..., tmpfs: _Optional[_Mapping[str, str]] = ..., init: _Optional[bool] = ..., cpu_shares: _Optional[int] = ..., oom_score_adj: _Optional[int] = ..., replace_unhealthy: _Optional[bool] = ..., on_node_loss: _Optional[_Union[NodeLossPolicy, str]] = ..., secrets: _Optional[_Iterable[_Union[FileRef, _Mapping]]] = ..., configs: _Optional[_Iterable[_Union[FileRef, _Mapping]]] = ...) -> None: ...

class FileRef(_message.Message):
    __slots__ = ("name", "version", "pinned", "target", "uid", "gid", "mode", "key", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    pinned: bool
    target: str
    uid: str
    gid: str
    mode: int
    key: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., pinned: _Optional[bool] = ..., target: _Optional[str] = ..., uid: _Optional[str] = ..., gid: _Optional[str] = ..., mode: _Optional[int] = ..., key: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class DeviceMapping(_message.Message):
    __slots__ = ("path_on_host", "path_in_container", "permissions")
    PATH_ON_HOST_FIELD_NUMBER: _ClassVar[int]
    PATH_IN_CONTAINER_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    path_on_host: str
    path_in_container: str
    permissions: str
    def __init__(self, path_on_host: _Optional[str] = ..., path_in_container: _Optional[str] = ..., permissions: _Optional[str] = ...) -> None: ...

class Ulimit(_message.Message):
    __slots__ = ("name", "soft", "hard")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft: int
    hard: int
    def __init__(self, name: _Optional[str] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class NamedVolume(_message.Message):
    __slots__ = ("name", "driver", "external", "labels", "driver_opts", "volume_name")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class DriverOptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DRIVER_OPTS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    external: bool
    labels: _containers.ScalarMap[str, str]
    driver_opts: _containers.ScalarMap[str, str]
    volume_name: str
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., external: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., driver_opts: _Optional[_Mapping[str, str]] = ..., volume_name: _Optional[str] = ...) -> None: ...

class NetworkDef(_message.Message):
    __slots__ = ("name", "driver", "external", "internal", "external_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    external: bool
    internal: bool
    external_name: str
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., external: _Optional[bool] = ..., internal: _Optional[bool] = ..., external_name: _Optional[str] = ...) -> None: ...

class ClusterNetwork(_message.Message):
    __slots__ = ("meta", "cluster", "description", "applications")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    description: str
    applications: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., description: _Optional[str] = ..., applications: _Optional[_Iterable[str]] = ...) -> None: ...

class ApplicationSpec(_message.Message):
    __slots__ = ("template", "env", "files", "version", "desired_state", "template_revision", "profiles", "pinned_images", "registry")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class PinnedImagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    PINNED_IMAGES_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    template: str
    env: _containers.ScalarMap[str, str]
    files: _containers.ScalarMap[str, str]
    version: str
    desired_state: DesiredState
    template_revision: int
    profiles: _containers.RepeatedScalarFieldContainer[str]
    pinned_images: _containers.ScalarMap[str, str]
    registry: str
    def __init__(self, template: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., files: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., desired_state: _Optional[_Union[DesiredState, str]] = ..., template_revision: _Optional[int] = ..., profiles: _Optional[_Iterable[str]] = ..., pinned_images: _Optional[_Mapping[str, str]] = ..., registry: _Optional[str] = ...) -> None: ...

class ApplicationStatus(_message.Message):
    __slots__ = ("phase", "message", "services", "containers_desired", "containers_running", "containers_healthy")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_DESIRED_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_HEALTHY_FIELD_NUMBER: _ClassVar[int]
    phase: str
    message: str
    services: int
    containers_desired: int
    containers_running: int
    containers_healthy: int
    def __init__(self, phase: _Optional[str] = ..., message: _Optional[str] = ..., services: _Optional[int] = ..., containers_desired: _Optional[int] = ..., containers_running: _Optional[int] = ..., containers_healthy: _Optional[int] = ...) -> None: ...

class Application(_message.Message):
    __slots__ = ("meta", "cluster", "spec", "status", "revision", "volumes", "networks", "warnings")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    spec: ApplicationSpec
    status: ApplicationStatus
    revision: int
    volumes: _containers.RepeatedCompositeFieldContainer[NamedVolume]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkDef]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., spec: _Optional[_Union[ApplicationSpec, _Mapping]] = ..., status: _Optional[_Union[ApplicationStatus, _Mapping]] = ..., revision: _Optional[int] = ..., volumes: _Optional[_Iterable[_Union[NamedVolume, _Mapping]]] = ..., networks: _Optional[_Iterable[_Union[NetworkDef, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("container", "node", "address", "published", "target", "protocol")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    container: str
    node: str
    address: str
    published: int
    target: int
    protocol: str
    def __init__(self, container: _Optional[str] = ..., node: _Optional[str] = ..., address: _Optional[str] = ..., published: _Optional[int] = ..., target: _Optional[int] = ..., protocol: _Optional[str] = ...) -> None: ...

class ContainerAddress(_message.Message):
    __slots__ = ("container", "node", "network", "address")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    container: str
    node: str
    network: str
    address: str
    def __init__(self, container: _Optional[str] = ..., node: _Optional[str] = ..., network: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("desired", "running", "healthy", "message", "endpoints", "addresses")
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    desired: int
    running: int
    healthy: int
    message: str
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    addresses: _containers.RepeatedCompositeFieldContainer[ContainerAddress]
    def __init__(self, desired: _Optional[int] = ..., running: _Optional[int] = ..., healthy: _Optional[int] = ..., message: _Optional[str] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ..., addresses: _Optional[_Iterable[_Union[ContainerAddress, _Mapping]]] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("meta", "cluster", "application", "spec", "status", "generation", "app_revision", "last_generation")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    APP_REVISION_FIELD_NUMBER: _ClassVar[int]
    LAST_GENERATION_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    application: str
    spec: ServiceSpec
    status: ServiceStatus
    generation: int
    app_revision: int
    last_generation: int
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., application: _Optional[str] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., status: _Optional[_Union[ServiceStatus, _Mapping]] = ..., generation: _Optional[int] = ..., app_revision: _Optional[int] = ..., last_generation: _Optional[int] = ...) -> None: ...

class ContainerStatus(_message.Message):
    __slots__ = ("state", "exit_code", "message", "docker_id", "started_at", "updated_at", "endpoints", "failure_reason", "addresses", "healthy_by_agent_check")
    class AddressesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DOCKER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_BY_AGENT_CHECK_FIELD_NUMBER: _ClassVar[int]
    state: ContainerState
    exit_code: int
    message: str
    docker_id: str
    started_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    failure_reason: FailureReason
    addresses: _containers.ScalarMap[str, str]
    healthy_by_agent_check: bool
    def __init__(self, state: _Optional[_Union[ContainerState, str]] = ..., exit_code: _Optional[int] = ..., message: _Optional[str] = ..., docker_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ..., failure_reason: _Optional[_Union[FailureReason, str]] = ..., addresses: _Optional[_Mapping[str, str]] = ..., healthy_by_agent_check: _Optional[bool] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("meta", "cluster", "application", "service", "node", "slot", "spec_generation", "app_revision", "desired_state", "spec", "status", "stop_after", "subnets", "fence_epoch", "subnet_index")
    class SubnetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SubnetIndexEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    SPEC_GENERATION_FIELD_NUMBER: _ClassVar[int]
    APP_REVISION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_AFTER_FIELD_NUMBER: _ClassVar[int]
    SUBNETS_FIELD_NUMBER: _ClassVar[int]
    FENCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SUBNET_INDEX_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    application: str
    service: str
    node: str
    slot: int
    spec_generation: int
    app_revision: int
    desired_state: DesiredState
    spec: ServiceSpec
    status: ContainerStatus
    stop_after: _timestamp_pb2.Timestamp
    subnets: _containers.ScalarMap[str, str]
    fence_epoch: int
    subnet_index: _containers.ScalarMap[str, int]
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., application: _Optional[str] = ..., service: _Optional[str] = ..., node: _Optional[str] = ..., slot: _Optional[int] = ..., spec_generation: _Optional[int] = ..., app_revision: _Optional[int] = ..., desired_state: _Optional[_Union[DesiredState, str]] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., status: _Optional[_Union[ContainerStatus, _Mapping]] = ..., stop_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subnets: _Optional[_Mapping[str, str]] = ..., fence_epoch: _Optional[int] = ..., subnet_index: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("meta", "cluster", "kind", "object", "type", "reason", "message")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    kind: str
    object: str
    type: str
    reason: str
    message: str
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., kind: _Optional[str] = ..., object: _Optional[str] = ..., type: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RouteBackend(_message.Message):
    __slots__ = ("container", "node", "address", "port", "weight", "app_revision", "spec_generation", "group")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    APP_REVISION_FIELD_NUMBER: _ClassVar[int]
    SPEC_GENERATION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    container: str
    node: str
    address: str
    port: int
    weight: int
    app_revision: int
    spec_generation: int
    group: str
    def __init__(self, container: _Optional[str] = ..., node: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., weight: _Optional[int] = ..., app_revision: _Optional[int] = ..., spec_generation: _Optional[int] = ..., group: _Optional[str] = ...) -> None: ...

class RouteEntry(_message.Message):
    __slots__ = ("application", "service", "domain", "path", "session_sticky", "backends", "match_header", "match_cookie", "match_value", "tls")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SESSION_STICKY_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    MATCH_HEADER_FIELD_NUMBER: _ClassVar[int]
    MATCH_COOKIE_FIELD_NUMBER: _ClassVar[int]
    MATCH_VALUE_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    application: str
    service: str
    domain: str
    path: str
    session_sticky: bool
    backends: _containers.RepeatedCompositeFieldContainer[RouteBackend]
    match_header: str
    match_cookie: str
    match_value: str
    tls: RouteTLS
    def __init__(self, application: _Optional[str] = ..., service: _Optional[str] = ..., domain: _Optional[str] = ..., path: _Optional[str] = ..., session_sticky: _Optional[bool] = ..., backends: _Optional[_Iterable[_Union[RouteBackend, _Mapping]]] = ..., match_header: _Optional[str] = ..., match_cookie: _Optional[str] = ..., match_value: _Optional[str] = ..., tls: _Optional[_Union[RouteTLS, _Mapping]] = ...) -> None: ...

class RouteTLS(_message.Message):
    __slots__ = ("secret", "version", "pinned")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    secret: str
    version: int
    pinned: bool
    def __init__(self, secret: _Optional[str] = ..., version: _Optional[int] = ..., pinned: _Optional[bool] = ...) -> None: ...

class RoutingTable(_message.Message):
    __slots__ = ("cluster", "version", "routes")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    version: int
    routes: _containers.RepeatedCompositeFieldContainer[RouteEntry]
    def __init__(self, cluster: _Optional[str] = ..., version: _Optional[int] = ..., routes: _Optional[_Iterable[_Union[RouteEntry, _Mapping]]] = ...) -> None: ...

class BackendStats(_message.Message):
    __slots__ = ("application", "service", "container", "requests", "responses_5xx", "connection_errors")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_5XX_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    application: str
    service: str
    container: str
    requests: int
    responses_5xx: int
    connection_errors: int
    def __init__(self, application: _Optional[str] = ..., service: _Optional[str] = ..., container: _Optional[str] = ..., requests: _Optional[int] = ..., responses_5xx: _Optional[int] = ..., connection_errors: _Optional[int] = ...) -> None: ...

class RouterStats(_message.Message):
    __slots__ = ("node", "collected_at", "backends", "routing_version")
    NODE_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_AT_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    node: str
    collected_at: _timestamp_pb2.Timestamp
    backends: _containers.RepeatedCompositeFieldContainer[BackendStats]
    routing_version: int
    def __init__(self, node: _Optional[str] = ..., collected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backends: _Optional[_Iterable[_Union[BackendStats, _Mapping]]] = ..., routing_version: _Optional[int] = ...) -> None: ...

class CanaryStep(_message.Message):
    __slots__ = ("weight", "pause_ms")
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    weight: int
    pause_ms: int
    def __init__(self, weight: _Optional[int] = ..., pause_ms: _Optional[int] = ...) -> None: ...

class CanaryAnalysis(_message.Message):
    __slots__ = ("max_5xx_ratio", "min_requests", "max_unhealthy")
    MAX_5XX_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    max_5xx_ratio: float
    min_requests: int
    max_unhealthy: int
    def __init__(self, max_5xx_ratio: _Optional[float] = ..., min_requests: _Optional[int] = ..., max_unhealthy: _Optional[int] = ...) -> None: ...

class ReleaseSpec(_message.Message):
    __slots__ = ("strategy", "from_revision", "to_revision", "canary_replicas", "steps", "analysis", "match_header", "match_cookie", "match_value", "rolling", "is_rollback", "services", "previous_specs", "previous_generations", "previous_app_spec")
    class PreviousSpecsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ServiceSpec
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ServiceSpec, _Mapping]] = ...) -> None: ...
    class PreviousGenerationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    CANARY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    MATCH_HEADER_FIELD_NUMBER: _ClassVar[int]
    MATCH_COOKIE_FIELD_NUMBER: _ClassVar[int]
    MATCH_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROLLING_FIELD_NUMBER: _ClassVar[int]
    IS_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPECS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_APP_SPEC_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    from_revision: int
    to_revision: int
    canary_replicas: int
    steps: _containers.RepeatedCompositeFieldContainer[CanaryStep]
    analysis: CanaryAnalysis
    match_header: str
    match_cookie: str
    match_value: str
    rolling: UpdateConfig
    is_rollback: bool
    services: _containers.RepeatedScalarFieldContainer[str]
    previous_specs: _containers.MessageMap[str, ServiceSpec]
    previous_generations: _containers.ScalarMap[str, int]
    previous_app_spec: ApplicationSpec
    def __init__(self, strategy: _Optional[str] = ..., from_revision: _Optional[int] = ..., to_revision: _Optional[int] = ..., canary_replicas: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[CanaryStep, _Mapping]]] = ..., analysis: _Optional[_Union[CanaryAnalysis, _Mapping]] = ..., match_header: _Optional[str] = ..., match_cookie: _Optional[str] = ..., match_value: _Optional[str] = ..., rolling: _Optional[_Union[UpdateConfig, _Mapping]] = ..., is_rollback: _Optional[bool] = ..., services: _Optional[_Iterable[str]] = ..., previous_specs: _Optional[_Mapping[str, ServiceSpec]] = ..., previous_generations: _Optional[_Mapping[str, int]] = ..., previous_app_spec: _Optional[_Union[ApplicationSpec, _Mapping]] = ...) -> None: ...

class ReleaseStatus(_message.Message):
    __slots__ = ("phase", "message", "weight", "step", "slots", "updated", "total", "phase_since", "finished_at", "history", "observed_5xx_ratio", "observed_requests", "requests", "failures", "failed_containers", "updating")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PHASE_SINCE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_5XX_RATIO_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    FAILED_CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    UPDATING_FIELD_NUMBER: _ClassVar[int]
    phase: ReleasePhase
    message: str
    weight: int
    step: int
    slots: int
    updated: int
    total: int
    phase_since: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    history: _containers.RepeatedScalarFieldContainer[str]
    observed_5xx_ratio: float
    observed_requests: int
    requests: _containers.RepeatedScalarFieldContainer[str]
    failures: int
    failed_containers: _containers.RepeatedScalarFieldContainer[str]
    updating: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phase: _Optional[_Union[ReleasePhase, str]] = ..., message: _Optional[str] = ..., weight: _Optional[int] = ..., step: _Optional[int] = ..., slots: _Optional[int] = ..., updated: _Optional[int] = ..., total: _Optional[int] = ..., phase_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., history: _Optional[_Iterable[str]] = ..., observed_5xx_ratio: _Optional[float] = ..., observed_requests: _Optional[int] = ..., requests: _Optional[_Iterable[str]] = ..., failures: _Optional[int] = ..., failed_containers: _Optional[_Iterable[str]] = ..., updating: _Optional[_Iterable[str]] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("meta", "cluster", "application", "number", "spec", "status")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    cluster: str
    application: str
    number: int
    spec: ReleaseSpec
    status: ReleaseStatus
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., application: _Optional[str] = ..., number: _Optional[int] = ..., spec: _Optional[_Union[ReleaseSpec, _Mapping]] = ..., status: _Optional[_Union[ReleaseStatus, _Mapping]] = ...) -> None: ...

class ApplicationRevision(_message.Message):
    __slots__ = ("meta", "revision", "spec", "note", "author", "template_digest")
    META_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    revision: int
    spec: ApplicationSpec
    note: str
    author: str
    template_digest: str
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., revision: _Optional[int] = ..., spec: _Optional[_Union[ApplicationSpec, _Mapping]] = ..., note: _Optional[str] = ..., author: _Optional[str] = ..., template_digest: _Optional[str] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("cluster", "name", "version", "versions", "digest", "size", "created_at", "first_created_at", "application")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    name: str
    version: int
    versions: _containers.RepeatedScalarFieldContainer[int]
    digest: str
    size: int
    created_at: _timestamp_pb2.Timestamp
    first_created_at: _timestamp_pb2.Timestamp
    application: str
    def __init__(self, cluster: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., versions: _Optional[_Iterable[int]] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., application: _Optional[str] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("cluster", "name", "version", "versions", "digest", "size", "created_at", "first_created_at", "application", "data")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    name: str
    version: int
    versions: _containers.RepeatedScalarFieldContainer[int]
    digest: str
    size: int
    created_at: _timestamp_pb2.Timestamp
    first_created_at: _timestamp_pb2.Timestamp
    application: str
    data: bytes
    def __init__(self, cluster: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., versions: _Optional[_Iterable[int]] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., application: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("meta", "role", "clusters", "applications", "expires_at", "revoked_at", "created_by")
    META_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    role: str
    clusters: _containers.RepeatedScalarFieldContainer[str]
    applications: _containers.RepeatedScalarFieldContainer[str]
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., role: _Optional[str] = ..., clusters: _Optional[_Iterable[str]] = ..., applications: _Optional[_Iterable[str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("meta", "token_name", "token_id", "role", "method", "target", "peer", "result", "message", "wrote", "revision", "command")
    META_FIELD_NUMBER: _ClassVar[int]
    TOKEN_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WROTE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    token_name: str
    token_id: str
    role: str
    method: str
    target: str
    peer: str
    result: str
    message: str
    wrote: bool
    revision: int
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., token_name: _Optional[str] = ..., token_id: _Optional[str] = ..., role: _Optional[str] = ..., method: _Optional[str] = ..., target: _Optional[str] = ..., peer: _Optional[str] = ..., result: _Optional[str] = ..., message: _Optional[str] = ..., wrote: _Optional[bool] = ..., revision: _Optional[int] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class RegistryLogin(_message.Message):
    __slots__ = ("cluster", "host", "username", "has_ca", "created_at", "insecure")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    HAS_CA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    host: str
    username: str
    has_ca: bool
    created_at: _timestamp_pb2.Timestamp
    insecure: bool
    def __init__(self, cluster: _Optional[str] = ..., host: _Optional[str] = ..., username: _Optional[str] = ..., has_ca: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., insecure: _Optional[bool] = ...) -> None: ...
