"""How ``ccs app get`` and ``ccs app history`` show images: tag and digest, or unpinned.

A registry image is run by the digest its tag named at deploy (``name:tag@sha256:...``); an image
without a registry (``local/busybox:1``) keeps its tag and is shown ``unpinned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ccs.v1 import resources_pb2

SHORT = 19  # "sha256:" and 12 hex digits, as docker shows image ids
HEADERS = ("SERVICE", "IMAGE", "DIGEST")


def split_pinned(image: str) -> tuple[str, str]:
    """``name:tag@digest`` -> (``name:tag``, digest); (image, "") when it has none."""
    name, at, digest = image.partition("@")
    return (name, digest) if at else (image, "")


def image_rows(services: Iterable[resources_pb2.Service], pins: Mapping[str, str]) -> list[list[str]]:
    """SERVICE, IMAGE (tag), DIGEST (or ``unpinned``) for each service."""
    out = []
    for svc in services:
        name, digest = split_pinned(pins.get(svc.meta.name) or svc.spec.image)
        out.append([svc.meta.name, name, digest or "unpinned"])
    return out


def pins_text(pins: Mapping[str, str]) -> str:
    """One revision's pinned images, short: ``web=r:5000/shop/web:2@sha256:0123456789ab``."""
    if not pins:
        return "-"
    return " ".join(f"{svc}={name}@{digest[:SHORT]}" for svc, (name, digest) in
                    sorted((s, split_pinned(i)) for s, i in pins.items()))
