"""Write a file only its owner can read, atomically: the CLI's contexts (tokens), the agent's
identity (its key and credential) and the router's certificate keys.

One writer for all three, in the package every side may import: the temporary file is made in
the target's directory with mode 0600 before a byte is written (never a moment readable by
others), synced, then renamed over the target (a reader sees the old file or the new one, never
a half-written one); on any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
