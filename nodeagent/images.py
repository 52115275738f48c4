"""The images this agent pulled and each service ran on its node; their collection.

In memory on purpose: after an agent restart it knows of no pull of its own, so it removes
nothing it did not pull since (the safe direction) — an image left behind then is collected by
nobody until the next pull of it, or removed by hand. What may go is decided by the pure
:func:`nodeagent.image_gc.collectable`; this module only keeps the record and calls the Engine.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import resources_pb2
from nodeagent.image_gc import DEFAULT_KEEP, collectable, from_registry, remember
from nodeagent.runtime import Runtime, RuntimeFailure

#: Seconds between the agent's own collections (``ccs node prune`` runs one at once).
GC_PERIOD = 600.0


class NodeImages:
    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.keep = keep
        self.pulled: set[str] = set()
        self.history: dict[str, list[str]] = {}  # "app/service" -> images it ran here, newest last

    def ran(self, c: resources_pb2.Container, pulled: bool) -> None:
        """``c`` was prepared on this node (its image pulled now, or already there)."""
        key = f"{c.application}/{c.service}"
        self.history[key] = remember(self.history.get(key, []), c.spec.image, self.keep)
        if pulled and from_registry(c.spec.image):
            self.pulled.add(c.spec.image)

    async def prune(self, runtime: Runtime, in_use: Iterable[str], request: int,
                    now: float) -> resources_pb2.ImagePrune:
        """Remove every collectable image; what was removed, the bytes freed, what could not be."""
        removed: list[str] = []
        freed = 0
        problems: list[str] = []
        doomed = collectable(self.pulled, in_use, self.history, self.keep)
        before = await runtime.image_disk_usage() if doomed else 0
        for image in doomed:
            try:
                await runtime.remove_image(image)
            except RuntimeFailure as exc:
                problems.append(f"{image}: {exc.reason}")
                continue
            removed.append(image)
            self.pulled.discard(image)
        if removed:  # layers shared with kept images stay: the difference is what was freed
            freed = max(0, before - await runtime.image_disk_usage())
        at = Timestamp()
        at.FromNanoseconds(int(now * 1e9))
        return resources_pb2.ImagePrune(request=request, images_removed=len(removed), bytes_freed=freed,
                                        images=removed, at=at, message="; ".join(problems)[:2000])
