"""Requests that do not decode are refused with INVALID_ARGUMENT naming the field, not UNKNOWN.

grpc deserializes a request before any servicer code runs; when protobuf refuses the bytes (a
string field holding invalid UTF-8, which the wire allows and proto3 does not; a truncated or
corrupt message; nesting past protobuf's recursion limit), grpc.aio answers ``UNKNOWN`` with
the Python exception's text ("Unexpected <class 'DecodeError'>: ..."), which names neither
the field nor the rule, and an SDK maps UNKNOWN to "server error".

This interceptor gives every method a lenient deserializer: bytes that do not decode become an
``Undecodable`` placeholder carrying the reason, and the method's behaviour refuses it with
``INVALID_ARGUMENT`` before the servicer sees it. The reason names the field when one string
field is at fault: protobuf only says "String field had bad UTF-8", so ``bad_utf8_path`` walks
the wire format (tags and lengths, against the method's input descriptor) to the first such
field, map keys and values and nested messages included.

It runs after the token check (it is listed after ``AuthInterceptor``), so a caller without a
valid token learns nothing about how its bytes decode: the auth interceptor's refusal replaces
the behaviour and keeps this deserializer.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor

_MAX_DEPTH = 64
# A message descriptor: google.protobuf.descriptor.Descriptor, or its upb twin, which the
# type stubs count as another class.
Descriptor = Any


class Undecodable:
    """The placeholder a request that does not decode becomes; ``message`` says why."""

    def __init__(self, message: str) -> None:
        self.message = message


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]  # IndexError on truncated input: the caller gives up
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """(field number, wire type, payload) of each field on the wire; groups are not used by ccs."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated")
            out.append((number, wire, data[pos : pos + length]))
            pos += length
        else:
            raise ValueError(f"wire type {wire}")
    return out


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _map_entry(field: FieldDescriptor, raw: bytes, path: str, depth: int) -> str | None:
    entry = field.message_type
    assert entry is not None  # a map field's entry type
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    key: str = ""
    value: bytes | None = None
    for number, wire, payload in _fields(raw):
        if wire != 2 or not isinstance(payload, bytes):
            continue
        if number == 1 and key_field.type == FieldDescriptor.TYPE_STRING:
            decoded = _text(payload)
            if decoded is None:
                return f"{path}: a key is not valid UTF-8"
            key = decoded
        elif number == 2:
            value = payload
    if value is None:
        return None
    where = f"{path}.{key}"
    if value_field.type == FieldDescriptor.TYPE_STRING and _text(value) is None:
        return f"{where}: is not valid UTF-8"
    if value_field.message_type is not None:
        return _bad_utf8(value_field.message_type, value, f"{where}.", depth + 1)
    return None


def _bad_utf8(descriptor: Descriptor, data: bytes, prefix: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    seen: dict[int, int] = {}
    for number, wire, payload in _fields(data):
        field = descriptor.fields_by_number.get(number)
        if field is None or wire != 2 or not isinstance(payload, bytes):
            continue
        index = seen.get(number, 0)
        seen[number] = index + 1
        path = f"{prefix}{field.name}" + (f"[{index}]" if field.is_repeated else "")
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            found = _map_entry(field, payload, f"{prefix}{field.name}", depth)
        elif mt is not None:
            found = _bad_utf8(mt, payload, path + ".", depth + 1)
        elif field.type == FieldDescriptor.TYPE_STRING and _text(payload) is None:
            found = f"{path}: is not valid UTF-8"
        else:
            found = None
        if found is not None:
            return found
    return None


def bad_utf8_path(descriptor: Descriptor, data: bytes) -> str | None:
    """``"<field path>: is not valid UTF-8"`` for the first string field of ``data`` (a serialized
    ``descriptor`` message) that is not UTF-8, or None (none is, or the bytes do not parse)."""
    try:
        return _bad_utf8(descriptor, data, "", 0)
    except (IndexError, ValueError):
        return None


def describe(descriptor: Descriptor | None, data: bytes, error: Exception) -> str:
    """Why ``data`` is not a valid request: the field at fault when one is found."""
    if descriptor is not None and (found := bad_utf8_path(descriptor, data)) is not None:
        return f"{found} (protobuf strings are UTF-8)"
    what = descriptor.full_name if descriptor is not None else "request"
    reason = str(error).rsplit(": ", 1)[-1] or type(error).__name__
    return f"request: is not a valid {what} message ({reason})"


def _input_type(method: str) -> Descriptor | None:
    """The request type of ``/package.Service/Method``, from the default descriptor pool."""
    service, _, name = method.lstrip("/").partition("/")
    try:
        found = descriptor_pool.Default().FindServiceByName(service).methods_by_name.get(name)
    except KeyError:
        return None
    return found.input_type if found is not None else None


def _lenient(decode: Callable[[bytes], Any], descriptor: Descriptor | None) -> Callable[[bytes], Any]:
    def lenient(raw: bytes) -> Any:
        try:
            return decode(raw)
        except Exception as exc:  # any refusal of the bytes, whatever protobuf calls it
            return Undecodable(describe(descriptor, raw, exc))

    return lenient


async def _refuse(context: grpc.aio.ServicerContext, request: Undecodable) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)


def _checked_requests(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async def checked() -> AsyncIterator[Any]:
        async for item in requests:
            if isinstance(item, Undecodable):
                await _refuse(context, item)
            yield item

    return checked()


def _wrapped(handler: grpc.RpcMethodHandler, descriptor: Descriptor | None) -> grpc.RpcMethodHandler:
    decode = _lenient(handler.request_deserializer, descriptor)
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                await _refuse(context, request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, decode, serialize)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await _refuse(context, request)
            async for item in inner_us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, decode, serialize)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await inner_su(_checked_requests(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, decode, serialize)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in inner_ss(_checked_requests(requests, context), context):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, decode, serialize)


def _streams_by_generator(handler: grpc.RpcMethodHandler) -> bool:
    """Whether a streaming behaviour yields its responses (ccs's servicers all do); one that
    writes through ``context.write`` (grpc's health Watch) is left as it is."""
    for behaviour in (handler.unary_stream, handler.stream_stream):
        if behaviour is not None:
            return inspect.isasyncgenfunction(behaviour)
    return True


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):
    """Refuse undecodable requests with INVALID_ARGUMENT naming the field (see the module).

    The wrapped handler depends only on the method and the handler the server registered for
    it (the same object for every call), so it is made once per method and kept: looking up
    the input descriptor and building the wrappers on every call was per-request work for
    nothing (issue 15). A method whose registered handler is another object is wrapped anew."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None or not _streams_by_generator(handler):
            return handler
        method = details.method
        kept = self._wrapped.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = _wrapped(handler, _input_type(method))
        self._wrapped[method] = (handler, wrapped)  # bounded: only registered methods have a handler
        return wrapped
