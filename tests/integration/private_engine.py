"""A throwaway Docker Engine of a test's own: its own network namespace, data root and socket.

Why: a test that fills an engine with a thousand networks must not leave them on the shared
root engine (removing 1,000 bridge networks one by one took 398 s here), and must not slow
every later test down with a thousand stale bridges and their iptables rules. A private engine
is simply killed and its directories and namespace removed: that clean-up costs seconds, and
nothing of it can leak into the next test. It is started as the testbed starts its hosts
(``nsenter --net``, see ENGINEERING.md), and with ``--iptables=false``: with 6 rules per
network, Docker 20.10's network create slows from 133 ms to 441 ms by the 1,000th network
(``tests/bench/networks.py`` measures that cost on the real configuration); the address
management a test of this kind checks is the same either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker

START_TIMEOUT = 90.0


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def private_engine(name: str, log_dir: Path, *, load_images: tuple[str, ...] = ()) -> Iterator[docker.DockerClient]:
    """Start a private dockerd in namespace ``name`` with its state under ``/run/NAME`` (short:
    containerd's socket path must fit a unix socket's 108 bytes), its log in ``log_dir``; load
    ``load_images`` into it from the root engine, yield a client; kill it and remove everything
    but the log at exit."""
    root = Path("/run") / name
    netns = f"/var/run/netns/{name}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    data, exec_root = root / "data", root / "exec"
    data.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    exec_root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    log_path = log_dir / "dockerd.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        ["nsenter", f"--net={netns}", "dockerd", "--host", f"unix://{sock}", "--data-root", str(data),
         "--exec-root", str(exec_root), "--pidfile", str(root / "dockerd.pid"), "--iptables=false",
         "--bridge=none", "--config-file", str(_empty_config(root))],
        stdout=log, stderr=log, start_new_session=True,
    )
    client: docker.DockerClient | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while client is None:
            if proc.poll() is not None:
                raise RuntimeError(f"private dockerd exited ({proc.returncode}); see {log_path}")
            with contextlib.suppress(docker.errors.DockerException):
                client = docker.DockerClient(base_url=f"unix://{sock}", timeout=120)
            if client is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"private dockerd did not answer in {START_TIMEOUT:.0f} s")
                time.sleep(0.2)
        for image in load_images:
            save = subprocess.Popen(["docker", "-H", "unix:///var/run/docker.sock", "save", image],
                                    stdout=subprocess.PIPE)
            subprocess.run(["docker", "-H", f"unix://{sock}", "load", "-q"], stdin=save.stdout, check=True,
                           capture_output=True)
            assert save.wait() == 0, f"docker save {image} failed"
        yield client
    finally:
        if client is not None:
            client.close()
        # Everything this engine started names its exec root (containerd, shims, containers' init).
        for pid in [proc.pid, *_pids_mentioning(str(exec_root))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(30)
        for mount in _mounts_under(root):  # the engine's data root and overlay mounts, deepest first
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(root)], capture_output=True, check=False)
        log.close()


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True)


def _empty_config(root: Path) -> Path:
    """An empty daemon.json of its own, so /etc/docker/daemon.json cannot leak in."""
    path = root / "daemon.json"
    path.write_text("{}\n")
    return path
