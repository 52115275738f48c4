"""Secrets and configs on the node: files on a tmpfs, bind-mounted read-only into the container.

The values arrive with the container's assignment (``Assignment.files``, only for containers
of this node). Before the container is created they are written under
``ROOT/<container id>/`` with the Compose ``uid``/``gid``/``mode``, and the container gets one
read-only bind mount per file at its target. So a value is never in the container's
environment, labels or create request: ``docker inspect`` shows a bind mount of a path, not the
value. ``ROOT`` is a tmpfs the agent mounts (never written to a disk, gone with a reboot); the
files of a container are removed when the container is.

Swarm does the same (its secrets are a tmpfs under the engine's data root, bind-mounted);
Kubernetes mounts a tmpfs volume per pod.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import structlog

from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.runtime.types import InvalidSpec

log = structlog.get_logger("ccs.agent")

#: Where agents keep them by default: /run is memory on every current distribution, and the
#: agent mounts a tmpfs of its own there anyway (a size bound, and memory even where it is not).
DEFAULT_ROOT = Path("/run/ccs/files")
TMPFS_SIZE = "64m"


def _is_mount(path: Path) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return False


class MountedFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._ready = False

    def _ensure_tmpfs(self) -> None:
        if self._ready:
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _is_mount(self.root):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0700,size={TMPFS_SIZE}", "tmpfs",
                                   str(self.root)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise InvalidSpec("spec.secrets", f"cannot mount a tmpfs at {self.root} for secret files: "
                                  f"{done.stderr.strip()[:200]}")
        self._ready = True

    def _write(self, cid: str, c: resources_pb2.Container,
               files: Sequence[agent_pb2.MountedFile]) -> resources_pb2.Container:
        self._ensure_tmpfs()
        values = {(f.kind, f.name, f.version): f.data for f in files}
        out = resources_pb2.Container()
        out.CopyFrom(c)
        base = self.root / cid
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(mode=0o700)
        for kind, refs in (("secret", c.spec.secrets), ("config", c.spec.configs)):
            for i, ref in enumerate(refs):
                data = values.get((kind, ref.name, ref.version))
                if data is None:
                    raise InvalidSpec(f"spec.{kind}s[{i}]", f"the value of {kind} {ref.name}@{ref.version} was not "
                                      "delivered with the assignment (removed from the cluster?)")
                path = base / f"{kind}-{i}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out_file:
                    out_file.write(data)
                os.chown(path, int(ref.uid or 0), int(ref.gid or 0))
                os.chmod(path, ref.mode)
                out.spec.volumes.append(resources_pb2.VolumeMount(type="bind", source=str(path), target=ref.target,
                                                                  read_only=True))
        return out

    async def mount(self, cid: str, c: resources_pb2.Container,
                    files: Sequence[agent_pb2.MountedFile]) -> resources_pb2.Container:
        """``c`` with a read-only bind mount per secret and config, their files written first.
        A container without any is returned as it is. InvalidSpec (permanent) naming the field."""
        if not c.spec.secrets and not c.spec.configs:
            return c
        return await asyncio.to_thread(self._write, cid, c, files)

    async def remove(self, cid: str) -> None:
        base = self.root / cid
        if await asyncio.to_thread(base.exists):
            await asyncio.to_thread(shutil.rmtree, base, True)
