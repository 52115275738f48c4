"""Write a file only its owner can read, atomically: the CLI's contexts (tokens), the agent's
identity (its key and credential) and its list of API servers, the router's certificate keys,
and the control plane's etcd backups.

One writer for all of them, in the package every side may import: the temporary file is made in
the target's directory with mode 0600 before a byte is written (never a moment readable by
others), synced, then renamed over the target (a reader sees the old file or the new one, never
a half-written one); on any error the temporary file is removed. :func:`private_writer` is the
same for a writer that streams (a backup is as large as etcd's database).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def private_writer(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content to; it replaces ``path`` when the block ends
    without an error, and is removed when the block raises (``path`` is then left as it was)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private(path: Path, data: bytes) -> None:
    with private_writer(path) as out:
        out.write(data)
