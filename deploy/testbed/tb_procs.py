"""Process, mount and cgroup bookkeeping for simulated hosts.

Design choices:
- A host's processes are found by *what they are*, not by a process tree: everything whose
  network namespace is the host's (agent, dockerd, containerd, shims, docker-proxy) plus
  everything in the host's cgroup parent (the containers, which have namespaces of their own).
  A process tree would miss the shims, which daemonise and get re-parented.
- PIDs from pidfiles are trusted only if the process still matches (same namespace or a
  command line that names the state directory), so a recycled PID is never signalled.
- Zombies count as dead: PID 1 on these machines does not always reap orphans.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from tb_common import NAME_PREFIX, HostLayout, TestbedError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def is_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def netns_inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pids_in_netns(path: Path) -> set[int]:
    """Live processes whose network namespace is the one bind-mounted at ``path``."""
    inode = netns_inode(path)
    if inode is None:
        return set()
    wanted = f"net:[{inode}]"
    found = set()
    for pid in _all_pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == wanted and is_alive(pid):
                found.add(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _cgroup_dirs(name: str) -> list[Path]:
    """The directory of cgroup ``name`` (e.g. ``ccstb-host1``) in every mounted v1 hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return []
    return [d / name for d in CGROUP_ROOT.iterdir() if (d / name).is_dir()]


def pids_in_cgroup(name: str) -> set[int]:
    found: set[int] = set()
    for top in _cgroup_dirs(name):
        for procs in _procs_files(top):
            try:
                found.update(int(p) for p in procs.read_text().split())
            except (FileNotFoundError, OSError):
                continue
    return {p for p in found if is_alive(p)}


def _procs_files(top: Path) -> list[Path]:
    """Every ``cgroup.procs`` below ``top``. A walk with os.walk, whose errors are ignored: a
    container's cgroup directory can vanish while it is read (the container exited), which makes
    Path.rglob raise FileNotFoundError halfway through the host's tree."""
    return [Path(d) / "cgroup.procs" for d, _, files in os.walk(top, onerror=lambda _: None)
            if "cgroup.procs" in files]


def host_pids(host: HostLayout) -> set[int]:
    """Every live process that belongs to ``host`` (see the module docstring)."""
    return pids_in_netns(host.netns_path) | pids_in_cgroup(host.cgroup_parent.lstrip("/"))


def owned_pid(pidfile: Path, host: HostLayout | None, marker: str) -> int | None:
    """The PID in ``pidfile`` if that process is still ours, else None."""
    pid = read_pid(pidfile)
    if pid is None or not is_alive(pid):
        return None
    if host is not None and pid in pids_in_netns(host.netns_path):
        return pid
    return pid if marker and marker in cmdline(pid) else None


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def wait_gone(pids: Iterable[int], timeout: float) -> set[int]:
    """Wait until ``pids`` are dead; return the ones still alive at the deadline."""
    remaining = set(pids)
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        remaining = {p for p in remaining if is_alive(p)}
        if remaining:
            time.sleep(0.1)
    return {p for p in remaining if is_alive(p)}


def terminate(pids: set[int], grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left."""
    signal_all(pids, signal.SIGTERM)
    left = wait_gone(pids, grace)
    if left:
        signal_all(left, signal.SIGKILL)
        wait_gone(left, 10)


def kill_host_processes(host: HostLayout) -> None:
    """SIGKILL everything of ``host`` until nothing is left (a shim may fork while we kill)."""
    for _ in range(20):
        pids = host_pids(host)
        if not pids:
            return
        signal_all(pids, signal.SIGKILL)
        wait_gone(pids, 10)
    left = host_pids(host)
    if left:
        raise TestbedError(f"{host.name}: processes survive SIGKILL: {sorted(left)}")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest last (mountinfo order)."""
    prefix = str(path.resolve()) if path.exists() else str(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mnt = line.split()[4].replace("\\040", " ")
        if mnt == prefix or mnt.startswith(prefix + "/"):
            found.append(mnt)
    return found


def unmount_all(path: Path) -> None:
    """Lazily unmount everything below ``path`` (overlays, shm, netns binds a crash leaves)."""
    for _ in range(5):
        mounts = mounts_under(path)
        if not mounts:
            return
        for mnt in reversed(mounts):
            subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)
    left = mounts_under(path)
    if left:
        raise TestbedError(f"cannot unmount {len(left)} mounts under {path}: {left[:3]}")


def remove_cgroups() -> None:
    """Remove every ``/ccstb-*`` cgroup (children first); they must be empty by now."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        for top in hierarchy.glob(f"{NAME_PREFIX}*"):
            dirs = sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts))
            for d in [*dirs, top]:
                try:
                    d.rmdir()
                except OSError:
                    continue


def leftover_cgroups() -> list[str]:
    if not CGROUP_ROOT.is_dir():
        return []
    return [str(top) for h in CGROUP_ROOT.iterdir() for top in h.glob(f"{NAME_PREFIX}*")]
