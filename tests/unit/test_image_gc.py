"""Which images an agent collects (nodeagent.image_gc), and the record it keeps of them
(nodeagent.images) over the fake runtime."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.image_gc import collectable, remember
from nodeagent.images import NodeImages
from nodeagent.runtime import FakeRuntime

R = "127.0.0.1:5000/shop/web:1@sha256:"
A, B, C, D = (R + c * 64 for c in "abcd")


@pytest.mark.parametrize(("pulled", "in_use", "history", "keep", "want"), [
    ([A, B], [], {}, 3, [A, B]),                       # nothing needs them
    ([A, B], [B], {}, 3, [A]),                         # a container uses B
    ([A, B, C, D], [], {"shop/web": [A, B, C, D]}, 3, [A]),  # the last 3 a service ran stay
    ([A, B], [], {"shop/web": [A, B]}, 1, [A]),
    (["local/busybox:1", "nginx:1"], [], {}, 3, []),  # no registry: never
    ([], [], {"shop/web": [A]}, 3, []),                # not pulled by this agent: not ours
])
def test_collectable(pulled: list[str], in_use: list[str], history: dict[str, list[str]], keep: int,
                     want: list[str]) -> None:
    assert collectable(pulled, in_use, history, keep) == want


def test_remember_keeps_the_newest_distinct() -> None:
    assert remember([A, B, C], A, 3) == [B, C, A]
    assert remember([A, B, C], D, 3) == [B, C, D]
    assert remember([], A, 3) == [A]


def container(app: str, service: str, image: str) -> pb.Container:
    return pb.Container(application=app, service=service, spec=pb.ServiceSpec(image=image))


async def test_prune_removes_what_nothing_needs_and_says_what_it_freed() -> None:
    rt = FakeRuntime()
    images = NodeImages(keep=2)
    for image in (A, B, C):
        rt.pulled.append(image)
        images.ran(container("shop", "web", image), pulled=True)
    images.ran(container("shop", "db", "local/busybox:1"), pulled=True)  # no registry: not recorded
    result = await images.prune(rt, in_use=[C], request=7, now=1_700_000_000.0)
    assert (result.request, list(result.images), result.images_removed) == (7, [A], 1)
    assert result.bytes_freed == 1 << 20 and not result.message
    assert rt.removed_images == [A] and images.pulled == {B, C}
    again = await images.prune(rt, in_use=[C], request=8, now=1_700_000_001.0)
    assert again.images_removed == 0 and again.bytes_freed == 0
