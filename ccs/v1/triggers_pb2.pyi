import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ccs.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TriggerAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_ACTION_UNSPECIFIED: _ClassVar[TriggerAction]
    TRIGGER_ACTION_REDEPLOY: _ClassVar[TriggerAction]
    TRIGGER_ACTION_UPDATE_IMAGE: _ClassVar[TriggerAction]
    TRIGGER_ACTION_SCALE: _ClassVar[TriggerAction]
TRIGGER_ACTION_UNSPECIFIED: TriggerAction
TRIGGER_ACTION_REDEPLOY: TriggerAction
TRIGGER_ACTION_UPDATE_IMAGE: TriggerAction
TRIGGER_ACTION_SCALE: TriggerAction

class Trigger(_message.Message):
    __slots__ = ("meta", "cluster", "application", "action", "service", "callback_url", "secret_version", "application_id", "url", "rotated_at")
    META_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    meta: _resources_pb2.Meta
    cluster: str
    application: str
    action: TriggerAction
    service: str
    callback_url: str
    secret_version: int
    application_id: str
    url: str
    rotated_at: _timestamp_pb2.Timestamp
    def __init__(self, meta: _Optional[_Union[_resources_pb2.Meta, _Mapping]] = ..., cluster: _Optional[str] = ..., application: _Optional[str] = ..., action: _Optional[_Union[TriggerAction, str]] = ..., service: _Optional[str] = ..., callback_url: _Optional[str] = ..., secret_version: _Optional[int] = ..., application_id: _Optional[str] = ..., url: _Optional[str] = ..., rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTriggerRequest(_message.Message):
    __slots__ = ("cluster", "application", "name", "action", "service", "callback_url")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_URL_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    application: str
    name: str
    action: TriggerAction
    service: str
    callback_url: str
    def __init__(self, cluster: _Optional[str] = ..., application: _Optional[str] = ..., name: _Optional[str] = ..., action: _Optional[_Union[TriggerAction, str]] = ..., service: _Optional[str] = ..., callback_url: _Optional[str] = ...) -> None: ...

class CreateTriggerResponse(_message.Message):
    __slots__ = ("trigger", "secret")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    secret: str
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ("cluster", "application")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    application: str
    def __init__(self, cluster: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers",)
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    def __init__(self, triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ...) -> None: ...

class DeleteTriggerRequest(_message.Message):
    __slots__ = ("cluster", "application", "name")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    application: str
    name: str
    def __init__(self, cluster: _Optional[str] = ..., application: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteTriggerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateTriggerRequest(_message.Message):
    __slots__ = ("cluster", "application", "name")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    application: str
    name: str
    def __init__(self, cluster: _Optional[str] = ..., application: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class InvokeTriggerRequest(_message.Message):
    __slots__ = ("cluster", "application", "name", "tag", "replicas", "has_replicas", "version")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    HAS_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    application: str
    name: str
    tag: str
    replicas: int
    has_replicas: bool
    version: str
    def __init__(self, cluster: _Optional[str] = ..., application: _Optional[str] = ..., name: _Optional[str] = ..., tag: _Optional[str] = ..., replicas: _Optional[int] = ..., has_replicas: _Optional[bool] = ..., version: _Optional[str] = ...) -> None: ...

class TriggerResult(_message.Message):
    __slots__ = ("trigger", "result", "release", "status_url", "revision", "message")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    STATUS_URL_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    trigger: str
    result: str
    release: str
    status_url: str
    revision: int
    message: str
    def __init__(self, trigger: _Optional[str] = ..., result: _Optional[str] = ..., release: _Optional[str] = ..., status_url: _Optional[str] = ..., revision: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
