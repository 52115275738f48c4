"""Typed reads: get one resource, or list a prefix page by page at a pinned revision.

A record that does not decode fails the read with :class:`Corrupt` naming its key (and, for
a list, every such key of the page), as Kubernetes does (KEP-3926). A list does not leave the
bad records out: a caller that diffs a list against its own state (a CI script deleting what
it no longer sees, a sync tool) would take an omitted object for a deleted one. The objects
stay reachable one by one, and deleting the application removes them (see
``ApplicationServicer.DeleteApplication``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from controlplane.store.codec import decode
from controlplane.store.errors import Corrupt, FutureRevision, NotFound
from controlplane.store.etcd import KV, Etcd

M = TypeVar("M", bound=Message)

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
# A page also ends once its records hold this many bytes (the next token goes on from there),
# so an answer stays well under the clients' receive limit (ccs.message_size) whatever the
# records weigh: 1,000 containers whose spec carries a large environment are tens of MB.
MAX_PAGE_BYTES = 4 * 1024 * 1024


class BadPageToken(ValueError):
    pass


@dataclass
class Page(Generic[M]):
    items: list[M]
    next_page_token: str
    revision: int


def _encode_token(revision: int, next_key: str) -> str:
    raw = json.dumps({"r": revision, "k": next_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        revision, key = data["r"], data["k"]
    except (ValueError, KeyError, TypeError) as e:
        raise BadPageToken("page_token: not a token this server issued") from e
    # An etcd revision is a positive int64; anything else was not issued here.
    if type(revision) is not int or not 0 < revision < 2**63 or not isinstance(key, str):
        raise BadPageToken("page_token: not a token this server issued")
    return revision, key


async def get(etcd: Etcd, key: str, cls: type[M], kind: str, name: str) -> M:
    """The record at ``key``: :class:`NotFound` naming ``kind`` and ``name`` if there is none,
    :class:`Corrupt` naming them if it does not decode."""
    return _decoded(await etcd.get(key), cls, kind, name)


async def get_with_revision(etcd: Etcd, key: str, cls: type[M], kind: str, name: str) -> tuple[M, int]:
    """As :func:`get`, with etcd's revision at the read (linearizable: every change committed
    before the call is at or below it), for a caller that must then wait until a cache has
    applied that revision (``RouteService/ListRoutes``)."""
    kv, revision = await etcd.get_with_revision(key)
    return _decoded(kv, cls, kind, name), revision


def _decoded(kv: KV | None, cls: type[M], kind: str, name: str) -> M:
    if kv is None:
        raise NotFound(kind, name)
    try:
        return decode(kv, cls)
    except Corrupt as e:
        raise e.named(f"{kind} {name!r}") from e


def decode_all(kvs: list[KV], cls: type[M], what: str) -> list[M]:
    """Every value decoded, or :class:`Corrupt` naming all the keys that do not decode."""
    out: list[M] = []
    bad: dict[str, str] = {}
    for kv in kvs:
        try:
            out.append(decode(kv, cls))
        except Corrupt as e:
            bad.update(e.bad)
    if bad:
        raise Corrupt(bad, what)
    return out


async def list_page(
    etcd: Etcd,
    prefix: str,
    cls: type[M],
    *,
    page_size: int = 0,
    page_token: str = "",
    keep: Callable[[M], bool] | None = None,
    start: str = "",
    each: Callable[[KV, M], None] | None = None,
) -> Page[M]:
    """One page of the resources under ``prefix``.

    Later pages are read at the first page's revision, so paging through a list that is
    being written to still yields one consistent snapshot (or ``Compacted`` if it aged
    out). ``keep`` filters server-side; a filtered page may hold fewer items. ``start`` (a
    key under ``prefix``) is where the first page begins; ``each`` sees every item with its
    key's metadata before ``keep``.
    """
    size, revision, begin = page_bounds(prefix, page_size, page_token, start)
    try:
        res = await etcd.range(prefix, start=begin, limit=size, revision=revision)
    except FutureRevision as e:
        raise BadPageToken("page_token: not a token this server issued (its revision is in the future)") from e
    kvs, cut = _within_bytes(res.kvs)
    items = decode_all(kvs, cls, f"list of {prefix}")
    if each is not None:
        for kv, item in zip(kvs, items, strict=True):
            each(kv, item)
    if keep is not None:
        items = [m for m in items if keep(m)]
    token = ""
    if (res.more or cut) and kvs:
        token = next_page_token(revision or res.revision, kvs[-1].key)
    return Page(items, token, revision or res.revision)


def page_bounds(prefix: str, page_size: int, page_token: str, start: str = "") -> tuple[int, int, str | None]:
    """A request's page: (items at most, revision it is pinned to or 0 for "now", first key or
    None), or :class:`BadPageToken`. Shared with the API's cache path
    (:mod:`controlplane.api.cached_lists`), so a token one path issued works on the other."""
    if page_size < 0:
        raise BadPageToken("page_size: must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    revision, begin = _decode_token(page_token) if page_token else (0, start or None)
    if begin is not None and not begin.startswith(prefix):
        raise BadPageToken("page_token: belongs to another list")
    return size, revision, begin


def next_page_token(revision: int, last_key: str) -> str:
    """The token of the page after the one that ended at ``last_key``, pinned to ``revision``."""
    return _encode_token(revision, last_key + "\0")


async def page_at(etcd: Etcd, prefix: str, cls: type[M], *, offset: int, page_size: int = 0) -> Page[M]:
    """The page of the resources under ``prefix`` that begins after the first ``offset``, read
    at the current revision (a view re-reading the page it shows; a page token would pin the
    revision of its first page). The ``offset`` keys before it are read without their values
    (etcd ``keys_only``), so the cost is the page's records, not the list's. Past the end: an
    empty page."""
    if offset < 0:
        raise BadPageToken("offset: must not be negative")
    if not offset:
        return await list_page(etcd, prefix, cls, page_size=page_size)
    keys = await etcd.range(prefix, limit=offset + 1, keys_only=True)
    if len(keys.kvs) <= offset:
        return Page([], "", keys.revision)
    return await list_page(etcd, prefix, cls, page_size=page_size,
                           page_token=_encode_token(keys.revision, keys.kvs[offset].key))


def _within_bytes(kvs: list[KV]) -> tuple[list[KV], bool]:
    """The first records of ``kvs`` that fit ``MAX_PAGE_BYTES`` (at least one), and whether any
    were left out."""
    total = 0
    for i, kv in enumerate(kvs):
        total += len(kv.value)
        if total > MAX_PAGE_BYTES and i > 0:
            return kvs[:i], True
    return kvs, False


async def list_all(etcd: Etcd, prefix: str, cls: type[M]) -> tuple[list[M], int]:
    """Every resource under ``prefix`` in one consistent read (for internal use)."""
    res = await etcd.range(prefix)
    return decode_all(res.kvs, cls, f"list of {prefix}"), res.revision
