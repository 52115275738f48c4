"""List answers kept for the cache revision they were made at, so an unchanged list is built once.

Why: a list page served from the watch cache (:mod:`controlplane.api.cached_lists`) still
cost, on every call, a scan of the records under the prefix, a size check encoding each
record, and a response copying every record: with 64 clients asking for the same unchanged
list, the server rebuilt the same answer over and over (issue 15: ListServices x64 p99 over
50 ms while the per-request cost of the server was the floor).

Why it is exact: a page served from the cache is a function of the request and of the cache's
state at its revision, and the cache's state at revision R is the etcd snapshot at R (every
change applied up to R and none after). So the answer made for a request at R *is* the answer
to the same request at R, page token, ``revision`` field and all; any change advances the
revision, and a lookup at another revision misses. Only answers made from the cache are kept
(the etcd path may answer at another revision), errors are never kept, and a hit is served
only when the cache has applied this server's last write (read-your-writes, as for the cache
path itself: :meth:`controlplane.api.common.CacheReader.current_revision`).

A kept answer is shared by the calls it serves: it is never changed after it is kept (gRPC
only serializes it). The memo holds one revision's answers, at most ``limit`` of them and
``max_bytes`` of their encoded size.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

from google.protobuf.message import Message

if TYPE_CHECKING:
    from controlplane.api.cached_lists import Listing
    from controlplane.api.common import CacheReader

M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

#: Answers kept for one revision, and their bytes: bounded, as page tokens make request keys
#: unbounded and a page may weigh up to ``reads.MAX_PAGE_BYTES``.
LIMIT = 1024
MAX_BYTES = 32 * 1024 * 1024


class ListMemo:
    """The answers made at one cache revision, keyed by the request (its type and bytes)."""

    def __init__(self, limit: int = LIMIT, max_bytes: int = MAX_BYTES) -> None:
        self.limit, self.max_bytes = limit, max_bytes
        self.revision = 0
        self.bytes = 0
        self._answers: dict[tuple[str, bytes], Message] = {}

    @staticmethod
    def key(request: Message) -> tuple[str, bytes]:
        """Every field of the request counts (cluster, parent, page size and token, filters)."""
        return request.DESCRIPTOR.full_name, request.SerializeToString(deterministic=True)

    def get(self, revision: int, key: tuple[str, bytes]) -> Message | None:
        return self._answers.get(key) if revision == self.revision else None

    def put(self, revision: int, key: tuple[str, bytes], answer: Message) -> None:
        if revision < self.revision:
            return  # made from an older snapshot than the answers kept: not worth keeping
        if revision > self.revision:
            self._answers.clear()
            self.revision, self.bytes = revision, 0
        if key in self._answers or len(self._answers) >= self.limit:
            return  # the same answer (made from the same snapshot), or no room
        size = answer.ByteSize()
        if self.bytes + size > self.max_bytes:
            return
        self._answers[key] = answer
        self.bytes += size


async def list_answer(
    cache: CacheReader,
    request: Message,
    page: Callable[[], Awaitable[Listing[M]]],
    respond: Callable[[Listing[M]], R],
) -> R:
    """The answer to a list ``request``: the one made for it at the cache's current revision,
    else ``respond(await page())``, kept when the page came from the cache.

    The servicer validates the request before calling this: a kept answer skips nothing but
    building the page and the response."""
    key = ListMemo.key(request)
    revision = cache.current_revision()
    if revision is not None:
        hit = cache.memo.get(revision, key)
        if hit is not None:
            return cast(R, hit)  # kept by this function, for a request of this type
    listing = await page()
    answer = respond(listing)
    if listing.from_cache:
        cache.memo.put(listing.revision, key, answer)
    return answer
