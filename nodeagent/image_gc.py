"""Which images an agent may remove from its node: pure (no clock, no I/O), tested by tables.

Rule (issue 13, "Images on nodes"): an image is collected only when

- it came from a registry (its reference names a registry host), so it can be pulled back;
  an image without one (``local/busybox:1``, built or loaded on the node) is never touched;
- this agent pulled it (``pulled``): images the node's operator or other software put there
  are not ccs's to remove;
- no container assigned to the node uses it (``in_use``: desired and being removed);
- it is not one of the last ``keep`` images each service ran on this node (``history``, newest
  last), so a rollback to one of the application's last revisions finds its image here.

Why "the last images each service ran here" for "the application's last revisions": a revision
that did not change a service's image needs no other image, so counting distinct images per
service keeps at least what the last ``keep`` revisions use, without the control plane sending
every node the revision history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ccs.image_refs import parse_image

DEFAULT_KEEP = 3


def from_registry(image: str) -> bool:
    try:
        return parse_image(image).names_registry
    except ValueError:
        return False


def collectable(pulled: Iterable[str], in_use: Iterable[str], history: Mapping[str, Sequence[str]],
                keep: int = DEFAULT_KEEP) -> list[str]:
    """The images to remove, sorted."""
    kept = set(in_use)
    for images in history.values():
        kept.update(images[-keep:] if keep > 0 else ())
    return sorted(i for i in set(pulled) if i not in kept and from_registry(i))


def remember(history: list[str], image: str, limit: int) -> list[str]:
    """``history`` with ``image`` as the newest (moved there if present), at most ``limit`` long."""
    out = [i for i in history if i != image] + [image]
    return out[-max(limit, 1):]
