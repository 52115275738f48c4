"""A pull that fails for lack of disk says so (nodeagent.runtime.types.pull_failure): retried,
not a permanent "image not found", with the Engine's own text kept."""

from __future__ import annotations

from nodeagent.runtime import ImageNotFound, OutOfDisk
from nodeagent.runtime.types import pull_failure

ENOSPC = ("failed to register layer: Error processing tar file(exit status 1): write /bin/busybox: "
          "no space left on device")


def test_no_space_left_is_out_of_disk_and_retried() -> None:
    failure = pull_failure("127.0.0.1:5000/web:1@sha256:" + "a" * 64, ENOSPC)
    assert isinstance(failure, OutOfDisk) and not failure.permanent
    assert "the node is out of disk space" in failure.reason and ENOSPC in failure.reason


def test_other_pull_failures_are_image_not_found() -> None:
    failure = pull_failure("127.0.0.1:5000/web:1", "manifest unknown")
    assert isinstance(failure, ImageNotFound) and failure.permanent
    assert failure.reason == "image not found: 127.0.0.1:5000/web:1 (manifest unknown)"
