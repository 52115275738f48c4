"""List pages served from the watch cache, with the same answers as the paged etcd read.

Why: a list read etcd twice (the parent's record, then a range) and decoded every record on
each call, while a get was already answered from the informer's cache
(:class:`controlplane.api.common.CacheReader`); at 64 clients the lists' p99 was half again
the gets' (issue 15). A page from the cache costs no etcd round trip and no decoding.

The answer must be the one :func:`controlplane.store.reads.list_page` gives, so that a client
cannot tell the two paths apart, and so that a page token of one path works on the other:

- *When*: only once the cache holds this server's last write (read-your-writes, as gets), and
  the page is the state at ``revision`` = the cache's revision: the cache applied every
  change up to it and none after, so it is the etcd snapshot at that revision. A token pins a
  revision; a later page is served here only while the cache is still at exactly that
  revision, else etcd reads the pinned revision (the token format is the store's own).
- *Order and paging*: keys in etcd's order (byte order of the key; Python compares strings
  by code point, which is UTF-8 byte order); ``page_size`` raw records per page, the filter
  (``keep``) applied after the cut, as the etcd path does; a token when more records follow.
- *Errors*: a missing cluster or application is NotFound as before; a bad token or page
  size is refused by the same code (:func:`reads.page_bounds`).
- *Falls back to etcd* (returns None) when the cache cannot answer exactly: it lags, a record
  under the prefix or the parent's record does not decode (the cache keeps the last good
  copy; the etcd path names the bad keys), the page might reach the byte budget
  (``MAX_PAGE_BYTES`` counts stored bytes; a cached record is never smaller than its stored
  bytes, as the stored value is the same message without ``resource_version``), or the set
  to scan is larger than ``MAX_SCAN`` (each page costs a scan of the set under the prefix:
  bounded, so a 100,000-container cluster-wide list stays on etcd's index).

A write made through *another* API server can be missed for the watch delay (milliseconds),
as for gets; the ``revision`` returned says which snapshot the page is.

:func:`list_page` is the one entry the list servicers call: it picks the path (the cache, else
etcd after the parent check; etcd alone for a page by ``offset`` or one ``with_total``, which
count keys: the cache would walk the whole list for the same answer), so the rule "answer from
the cache, else etcd, with the same answer" is written once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Literal, TypeVar

from google.protobuf.message import Message

from ccs.v1 import resources_pb2 as pb
from controlplane.store import NotFound, keys, reads

if TYPE_CHECKING:
    from controlplane.api.common import CacheReader
    from controlplane.informer import ClusterState

M = TypeVar("M", bound=Message)

#: The record a list's prefix belongs under: it must exist, or the list is NotFound.
Parent = tuple[Literal["cluster", "application"], str]

#: Records a page may scan in the cache; a larger set is listed by etcd (see the module doc).
MAX_SCAN = 20_000


@dataclass
class Listing(reads.Page[M]):
    """A page, and the number of records under the prefix at its revision when asked for
    (``with_total``; else 0); ``from_cache``: served from the cache, at its revision (an
    answer made from it may be kept for that revision: :mod:`controlplane.api.list_memo`)."""

    total: int = 0
    from_cache: bool = False


async def list_page(
    cache: CacheReader,
    cluster: str,
    parent: Parent,
    prefix: str,
    cls: type[M],
    entries: Callable[[ClusterState], Iterable[tuple[str, M]] | None],
    *,
    page_size: int,
    page_token: str,
    keep: Callable[[M], bool] | None = None,
    offset: int = 0,
    with_total: bool = False,
) -> Listing[M]:
    """The page a list request asks for: from the cache when it answers exactly
    (:func:`cached_page`), else from etcd, the parent checked first. A page by ``offset`` or
    one ``with_total`` is read from etcd alone: it reads only the page's records and counts
    keys, where the cache would walk the whole list. ``keep`` filters after the cut on either
    path; it cannot go with ``offset``/``with_total`` (they count keys, not kept records: the
    servicer refuses that request, naming its field)."""
    if offset or with_total:
        if keep is not None:
            raise ValueError("keep: not with offset or with_total (they count keys)")
        await _check_parent(cache, cluster, parent)
        if offset:
            page = await reads.page_at(cache.etcd, prefix, cls, offset=offset, page_size=page_size)
        else:
            page = await reads.list_page(cache.etcd, prefix, cls, page_size=page_size, page_token=page_token)
        total = await cache.etcd.count(prefix, page.revision) if with_total else 0
        return Listing(page.items, page.next_page_token, page.revision, total)
    cached = await cached_page(cache, cluster, parent, prefix, entries, page_size=page_size,
                               page_token=page_token, keep=keep)
    if cached is not None:
        return Listing(cached.items, cached.next_page_token, cached.revision, from_cache=True)
    await _check_parent(cache, cluster, parent)
    read = await reads.list_page(cache.etcd, prefix, cls, page_size=page_size, page_token=page_token, keep=keep)
    return Listing(read.items, read.next_page_token, read.revision)


async def _check_parent(cache: CacheReader, cluster: str, parent: Parent) -> None:
    """NotFound (or Corrupt naming the key) unless the list's parent record is in etcd."""
    kind, name = parent
    if kind == "application":
        await reads.get(cache.etcd, keys.app(cluster, name), pb.Application, "application", name)
    else:
        await reads.get(cache.etcd, keys.cluster(cluster), pb.Cluster, "cluster", cluster)


async def cached_page(
    cache: CacheReader,
    cluster: str,
    parent: Parent,
    prefix: str,
    entries: Callable[[ClusterState], Iterable[tuple[str, M]] | None],
    *,
    page_size: int,
    page_token: str,
    keep: Callable[[M], bool] | None = None,
) -> reads.Page[M] | None:
    """The page from the cache, or None: read etcd. ``parent`` must exist (else NotFound, as
    the etcd path checks first); ``entries`` gives the (etcd key, record) pairs under
    ``prefix`` in any order, or None when there are more than ``MAX_SCAN``."""
    snap = await cache.snapshot(cluster)
    if snap is False:
        return None
    state, revision = snap
    kind, name = parent
    if kind == "cluster":
        if state is None or not state.exists:
            raise NotFound("cluster", cluster)
        if not state.record_decodes:
            return None
    else:
        if state is not None and keys.app(cluster, name) in state.undecodable:
            return None
        if state is None or name not in state.apps:
            raise NotFound("application", name)
    size, pinned, begin = reads.page_bounds(prefix, page_size, page_token)
    if pinned and pinned != revision:
        return None  # the cache moved on since the first page: etcd reads the pinned revision
    if any(k.startswith(prefix) for k in state.undecodable):
        return None
    listed = entries(state)
    if listed is None:
        return None
    if begin is not None:
        listed = ((k, m) for k, m in listed if k >= begin)
    chosen = heapq.nsmallest(size + 1, listed, key=itemgetter(0))
    more = len(chosen) > size
    del chosen[size:]
    if sum(m.ByteSize() for _, m in chosen) > reads.MAX_PAGE_BYTES:
        return None  # the etcd path may cut this page short on stored bytes
    items = [m for _, m in chosen]
    if keep is not None:
        items = [m for m in items if keep(m)]
    token = reads.next_page_token(revision, chosen[-1][0]) if more and chosen else ""
    return reads.Page(items, token, revision)


def bounded(pairs: Iterable[tuple[str, M]], count: int) -> Iterable[tuple[str, M]] | None:
    """``pairs``, or None when ``count`` (their number) is past ``MAX_SCAN``."""
    return None if count > MAX_SCAN else pairs
