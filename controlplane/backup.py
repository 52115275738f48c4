"""Back up the control plane's state (an etcd snapshot) and restore it onto an empty data dir.

All of ccs's state is in etcd (the architecture's rule), so a backup is an etcd snapshot and
nothing else:

- **Backup** streams etcd's maintenance ``Snapshot`` RPC through aetcd (``Client.snapshot``)
  to a temporary file beside the target, written 0600, fsync'ed and renamed into place: a failed
  or interrupted backup never leaves a truncated file under the name given. The snapshot carries
  etcd's own integrity hash, which the restore checks.
- **The keys stay apart.** The master key (which wraps the cluster CA's key) and the secrets key
  (which wraps the secrets' data keys) are files in the state directory, never in etcd, so the
  snapshot holds their *wrapped* material only. A stolen backup alone opens neither the CA nor a
  secret; a restore needs the same two key files, which the operator keeps apart.
- **Restore** is ``etcdctl snapshot restore`` (Debian's etcd-client; etcd 3.4 has no
  ``etcdutl``), into a fresh directory beside the data dir, renamed into place only when it
  succeeded. It refuses a data dir that is not empty or that a running etcd uses: a restore never
  overwrites live state. The member name and peer URL are the embedded etcd's, so the server
  starts on the restored data as it would on its own.

Why etcdctl for the restore rather than Python: rebuilding a member's WAL and snapshot files from
a backend database is etcd's own code (hash check, member metadata, a new cluster id), and the
binary that ships with the server is the one that matches it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccs.private_files import private_writer
from controlplane.embedded_etcd import MEMBER_NAME, etcds_on
from controlplane.store.etcd import Etcd

#: Seconds one snapshot stream may take (aetcd's per-call timeout).
SNAPSHOT_TIMEOUT = 600


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    size: int
    sha256: str


def target(out: Path) -> Path:
    """``out`` made absolute, or BackupError when no file can be written there."""
    out = out.absolute()
    if out.is_dir():
        raise BackupError(f"{out}: is a directory; give a file name")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent}: no such directory")
    return out


async def save(etcd: Etcd, out: Path) -> Snapshot:
    """Write etcd's snapshot to ``out`` (absolute: ``target``), 0600, atomically."""
    await etcd.connect()
    digest = hashlib.sha256()
    with private_writer(out) as f:

        class _Sink:  # aetcd writes each streamed chunk to a file-like object
            @staticmethod
            def write(chunk: bytes) -> None:
                f.write(chunk)
                digest.update(chunk)

        await etcd.client.snapshot(_Sink())
        size = f.tell()
        if size == 0:
            raise BackupError("etcd sent an empty snapshot")
    return Snapshot(out, size, digest.hexdigest())


def restore(snapshot: Path, data_dir: Path, peer_url: str, *, etcdctl: str | None = None) -> None:
    """Restore ``snapshot`` into ``data_dir`` (absent or empty, no etcd running on it)."""
    binary = etcdctl or shutil.which("etcdctl")
    if binary is None:
        raise BackupError("etcdctl is not installed (apt-get install etcd-client)")
    if not snapshot.is_file():
        raise BackupError(f"{snapshot}: no such file")
    data_dir = data_dir.absolute()
    if etcds_on(data_dir):
        raise BackupError(f"{data_dir}: an etcd is running on it; stop ccs-server first")
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir}: not empty; a restore goes onto an empty data dir "
                          "(stop ccs-server and move the old one aside first)")
    data_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore.", dir=data_dir.parent))
    target = work / "member-data"
    try:
        done = subprocess.run(
            [binary, "snapshot", "restore", str(snapshot), "--data-dir", str(target),
             "--name", MEMBER_NAME, "--initial-cluster", f"{MEMBER_NAME}={peer_url}",
             "--initial-advertise-peer-urls", peer_url],
            env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise BackupError(f"etcdctl snapshot restore failed: {detail[-1] if detail else done.returncode}")
        os.chmod(target, 0o700)
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.replace(target, data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
