from ccs.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecFailure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXEC_FAILURE_UNSPECIFIED: _ClassVar[ExecFailure]
    EXEC_FAILURE_NO_CONTAINER: _ClassVar[ExecFailure]
    EXEC_FAILURE_NOT_RUNNING: _ClassVar[ExecFailure]
    EXEC_FAILURE_BUSY: _ClassVar[ExecFailure]
    EXEC_FAILURE_ENGINE: _ClassVar[ExecFailure]
EXEC_FAILURE_UNSPECIFIED: ExecFailure
EXEC_FAILURE_NO_CONTAINER: ExecFailure
EXEC_FAILURE_NOT_RUNNING: ExecFailure
EXEC_FAILURE_BUSY: ExecFailure
EXEC_FAILURE_ENGINE: ExecFailure

class RegisterRequest(_message.Message):
    __slots__ = ("join_token", "name", "labels", "status", "csr_pem")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    join_token: str
    name: str
    labels: _containers.ScalarMap[str, str]
    status: _resources_pb2.NodeStatus
    csr_pem: str
    def __init__(self, join_token: _Optional[str] = ..., name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[_resources_pb2.NodeStatus, _Mapping]] = ..., csr_pem: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("cluster", "node", "credential", "certificate_pem", "ca_pem", "node_port", "replicas")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    NODE_PORT_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    node: _resources_pb2.Node
    credential: str
    certificate_pem: str
    ca_pem: str
    node_port: int
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    def __init__(self, cluster: _Optional[str] = ..., node: _Optional[_Union[_resources_pb2.Node, _Mapping]] = ..., credential: _Optional[str] = ..., certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ..., node_port: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ...) -> None: ...

class Replica(_message.Message):
    __slots__ = ("api_address", "node_address")
    API_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    api_address: str
    node_address: str
    def __init__(self, api_address: _Optional[str] = ..., node_address: _Optional[str] = ...) -> None: ...

class RenewCertificateRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: str
    def __init__(self, csr_pem: _Optional[str] = ...) -> None: ...

class RenewCertificateResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_pem: str
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("agent_version", "held_map_version")
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HELD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent_version: str
    held_map_version: int
    def __init__(self, agent_version: _Optional[str] = ..., held_map_version: _Optional[int] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("action", "container", "files", "pull_auth")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[Assignment.Action]
        ACTION_UPDATE: _ClassVar[Assignment.Action]
        ACTION_REMOVE: _ClassVar[Assignment.Action]
    ACTION_UNSPECIFIED: Assignment.Action
    ACTION_UPDATE: Assignment.Action
    ACTION_REMOVE: Assignment.Action
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PULL_AUTH_FIELD_NUMBER: _ClassVar[int]
    action: Assignment.Action
    container: _resources_pb2.Container
    files: _containers.RepeatedCompositeFieldContainer[MountedFile]
    pull_auth: PullAuth
    def __init__(self, action: _Optional[_Union[Assignment.Action, str]] = ..., container: _Optional[_Union[_resources_pb2.Container, _Mapping]] = ..., files: _Optional[_Iterable[_Union[MountedFile, _Mapping]]] = ..., pull_auth: _Optional[_Union[PullAuth, _Mapping]] = ...) -> None: ...

class PullAuth(_message.Message):
    __slots__ = ("registry", "username", "password")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    registry: str
    username: str
    password: str
    def __init__(self, registry: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class MountedFile(_message.Message):
    __slots__ = ("kind", "name", "version", "data")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    version: int
    data: bytes
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("type", "version", "base_version", "assignments", "heartbeat_period_ms", "routing", "network_map", "route_certificates")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[SessionMessage.Type]
        TYPE_COMPLETE: _ClassVar[SessionMessage.Type]
        TYPE_INCREMENTAL: _ClassVar[SessionMessage.Type]
    TYPE_UNSPECIFIED: SessionMessage.Type
    TYPE_COMPLETE: SessionMessage.Type
    TYPE_INCREMENTAL: SessionMessage.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MAP_FIELD_NUMBER: _ClassVar[int]
    ROUTE_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    type: SessionMessage.Type
    version: int
    base_version: int
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    heartbeat_period_ms: int
    routing: _resources_pb2.RoutingTable
    network_map: NetworkMap
    route_certificates: _containers.RepeatedCompositeFieldContainer[MountedFile]
    def __init__(self, type: _Optional[_Union[SessionMessage.Type, str]] = ..., version: _Optional[int] = ..., base_version: _Optional[int] = ..., assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., heartbeat_period_ms: _Optional[int] = ..., routing: _Optional[_Union[_resources_pb2.RoutingTable, _Mapping]] = ..., network_map: _Optional[_Union[NetworkMap, _Mapping]] = ..., route_certificates: _Optional[_Iterable[_Union[MountedFile, _Mapping]]] = ...) -> None: ...

class NetworkBlock(_message.Message):
    __slots__ = ("node", "node_address", "subnet")
    NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    node: str
    node_address: str
    subnet: str
    def __init__(self, node: _Optional[str] = ..., node_address: _Optional[str] = ..., subnet: _Optional[str] = ...) -> None: ...

class NetworkName(_message.Message):
    __slots__ = ("name", "addresses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class AppNetwork(_message.Message):
    __slots__ = ("application", "network", "internal", "blocks", "names", "shared", "members")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    application: str
    network: str
    internal: bool
    blocks: _containers.RepeatedCompositeFieldContainer[NetworkBlock]
    names: _containers.RepeatedCompositeFieldContainer[NetworkName]
    shared: str
    members: _containers.RepeatedCompositeFieldContainer[NetworkBlock]
    def __init__(self, application: _Optional[str] = ..., network: _Optional[str] = ..., internal: _Optional[bool] = ..., blocks: _Optional[_Iterable[_Union[NetworkBlock, _Mapping]]] = ..., names: _Optional[_Iterable[_Union[NetworkName, _Mapping]]] = ..., shared: _Optional[str] = ..., members: _Optional[_Iterable[_Union[NetworkBlock, _Mapping]]] = ...) -> None: ...

class NetworkMap(_message.Message):
    __slots__ = ("cluster", "version", "pod_cidr", "networks", "base_version", "removed")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POD_CIDR_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    version: int
    pod_cidr: str
    networks: _containers.RepeatedCompositeFieldContainer[AppNetwork]
    base_version: int
    removed: _containers.RepeatedCompositeFieldContainer[AppNetwork]
    def __init__(self, cluster: _Optional[str] = ..., version: _Optional[int] = ..., pod_cidr: _Optional[str] = ..., networks: _Optional[_Iterable[_Union[AppNetwork, _Mapping]]] = ..., base_version: _Optional[int] = ..., removed: _Optional[_Iterable[_Union[AppNetwork, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("status", "router_stats")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROUTER_STATS_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.NodeStatus
    router_stats: _resources_pb2.RouterStats
    def __init__(self, status: _Optional[_Union[_resources_pb2.NodeStatus, _Mapping]] = ..., router_stats: _Optional[_Union[_resources_pb2.RouterStats, _Mapping]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("period_ms", "replicas", "prune_requested")
    PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PRUNE_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    period_ms: int
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    prune_requested: int
    def __init__(self, period_ms: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., prune_requested: _Optional[int] = ...) -> None: ...

class ContainerStatusUpdate(_message.Message):
    __slots__ = ("application", "service", "container", "status")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    application: str
    service: str
    container: str
    status: _resources_pb2.ContainerStatus
    def __init__(self, application: _Optional[str] = ..., service: _Optional[str] = ..., container: _Optional[str] = ..., status: _Optional[_Union[_resources_pb2.ContainerStatus, _Mapping]] = ...) -> None: ...

class UpdateStatusRequest(_message.Message):
    __slots__ = ("updates",)
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedCompositeFieldContainer[ContainerStatusUpdate]
    def __init__(self, updates: _Optional[_Iterable[_Union[ContainerStatusUpdate, _Mapping]]] = ...) -> None: ...

class UpdateStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("request_id", "container_id", "follow", "tail", "since", "cancel", "exec", "exec_input")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    EXEC_FIELD_NUMBER: _ClassVar[int]
    EXEC_INPUT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    container_id: str
    follow: bool
    tail: int
    since: float
    cancel: bool
    exec: AgentExecStart
    exec_input: AgentExecInput
    def __init__(self, request_id: _Optional[str] = ..., container_id: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since: _Optional[float] = ..., cancel: _Optional[bool] = ..., exec: _Optional[_Union[AgentExecStart, _Mapping]] = ..., exec_input: _Optional[_Union[AgentExecInput, _Mapping]] = ...) -> None: ...

class AgentExecStart(_message.Message):
    __slots__ = ("container_id", "command", "tty", "stdin", "rows", "cols")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    command: _containers.RepeatedScalarFieldContainer[str]
    tty: bool
    stdin: bool
    rows: int
    cols: int
    def __init__(self, container_id: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., tty: _Optional[bool] = ..., stdin: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class AgentExecInput(_message.Message):
    __slots__ = ("stdin", "close_stdin", "rows", "cols")
    STDIN_FIELD_NUMBER: _ClassVar[int]
    CLOSE_STDIN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    stdin: bytes
    close_stdin: bool
    rows: int
    cols: int
    def __init__(self, stdin: _Optional[bytes] = ..., close_stdin: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("request_id", "data", "eof", "error", "stderr", "exited", "exit_code", "exec_failure", "serves_exec")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXEC_FAILURE_FIELD_NUMBER: _ClassVar[int]
    SERVES_EXEC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    data: bytes
    eof: bool
    error: str
    stderr: bool
    exited: bool
    exit_code: int
    exec_failure: ExecFailure
    serves_exec: bool
    def __init__(self, request_id: _Optional[str] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ..., error: _Optional[str] = ..., stderr: _Optional[bool] = ..., exited: _Optional[bool] = ..., exit_code: _Optional[int] = ..., exec_failure: _Optional[_Union[ExecFailure, str]] = ..., serves_exec: _Optional[bool] = ...) -> None: ...
