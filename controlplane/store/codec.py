"""Encode and decode stored protobuf values.

A value that does not parse raises :class:`~controlplane.store.errors.Corrupt` naming its key
(never a bare protobuf ``DecodeError``, which would reach a client as INTERNAL).

``resource_version`` is the etcd mod_revision and is never trusted from the stored
bytes: :func:`decode` overwrites it from the key's metadata, and :func:`encode` clears
it so a value never carries a stale copy.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from google.protobuf.message import Message

from ccs.v1 import resources_pb2 as pb
from controlplane.store.errors import Corrupt
from controlplane.store.etcd import KV


class _HasMeta(Protocol):
    @property
    def meta(self) -> pb.Meta: ...


M = TypeVar("M", bound=Message)


def decode(kv: KV, cls: type[M]) -> M:
    msg = cls()
    try:
        msg.ParseFromString(kv.value)
    except Exception as e:  # any parse failure means the same thing: bad bytes
        raise Corrupt({kv.key: f"{type(e).__name__}: {e}"}) from e
    if msg.DESCRIPTOR.fields_by_name.get("meta") is not None:
        msg.meta.resource_version = kv.mod_revision  # type: ignore[attr-defined]
    return msg


def encode(msg: Message) -> bytes:
    if msg.DESCRIPTOR.fields_by_name.get("meta") is not None and msg.HasField("meta"):
        copy = type(msg)()
        copy.CopyFrom(msg)
        copy.meta.resource_version = 0  # type: ignore[attr-defined]
        return copy.SerializeToString()
    return msg.SerializeToString()
