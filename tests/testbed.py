"""Python wrapper around ``deploy/testbed/testbed.py`` for integration tests.

The testbed (N simulated hosts, each a network namespace with its own dockerd, one registry) is
driven through its CLI in a subprocess rather than imported: the CLI is the supported surface,
it must run as root anyway, and a crashed test can still be cleaned up with ``testbed.py down``.

Only one testbed can exist per machine (fixed bridge and addresses), so :class:`Testbed` holds an
exclusive ``flock`` from ``start`` to ``stop``; a second test session waits for the first.

Use in a conftest::

    from tests.testbed import testbed  # session-scoped fixture: 2 hosts, local/busybox:1 loaded
    # or: big_testbed = testbed_fixture(hosts=3, scope="module")
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "testbed" / "testbed.py"
BUILD_IMAGES = REPO / "deploy" / "images" / "build.sh"
LOCK_FILE = Path("/run/ccs-testbed.lock")
REQUIRED_TOOLS = ("ip", "iptables", "nsenter", "dockerd", "docker", "docker-registry", "htpasswd")
ROOT_DOCKER = "unix:///var/run/docker.sock"
Scope = Literal["session", "package", "module", "class", "function"]


class TestbedError(RuntimeError):
    """A testbed command failed; the message carries the command's stderr."""

    __test__ = False  # not a test class, despite the name


@dataclass(frozen=True)
class Host:
    """One simulated host. Lifecycle methods act through the owning :class:`Testbed`."""

    testbed: Testbed = field(repr=False)
    name: str
    ip: str
    docker_host: str
    docker_config: str
    netns_path: str

    def env(self) -> dict[str, str]:
        """Environment for a docker CLI (or SDK) aimed at this host, with its registry login."""
        return {**os.environ, "DOCKER_HOST": self.docker_host, "DOCKER_CONFIG": self.docker_config}

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this host's daemon."""
        return _run(["docker", *args], env=self.env(), check=check)

    def in_netns(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside this host's network namespace (as the agent would be)."""
        return _run(["nsenter", f"--net={self.netns_path}", "--", *argv], check=check)

    def kill(self) -> None:
        self.testbed.run("kill", self.name)

    def stop(self) -> None:
        self.testbed.run("stop", self.name)

    def start(self) -> None:
        """Boot the host again. If its dockerd needed a second try (see the testbed's
        ``start_and_wait_dockerd``), say so as a warning: the test passes, the hang is reported."""
        stderr = self.testbed.run_process("start", self.name).stderr
        hung = [line for line in stderr.splitlines() if "did not answer" in line]
        if hung:
            warnings.warn(f"{self.name}: {hung[0]}", stacklevel=2)

    def partition(self) -> None:
        self.testbed.run("partition", self.name)

    def heal(self) -> None:
        self.testbed.run("heal", self.name)

    def status(self) -> dict[str, Any]:
        for entry in self.testbed.status()["hosts"]:
            if entry["name"] == self.name:
                return dict(entry)
        raise TestbedError(f"{self.name} is not in the testbed status")


# Seconds between starting `docker network rm` and the crash. Here 0.02-0.1 s lands in the
# window every time (the CLI needs ~20 ms to send the request); the spread allows slower machines.
CRASH_DELAYS = (0.05, 0.03, 0.08, 0.02, 0.12, 0.16, 0.06, 0.2, 0.04, 0.25, 0.1, 0.3)


def _boot_needed_repair(host: Host) -> bool:
    """Boot ``host``; tell whether its dockerd needed the moby#45057 repair (the testbed's
    ``start`` warns; see ``tb_docker.start_and_wait_dockerd``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host.start()
    return any("moby#45057" in str(w.message) for w in caught)


def crash_inside_network_rm(host: Host, network: str, delay: float) -> bool:
    """Crash ``host`` ``delay`` seconds after a ``docker network rm`` of a new network starts,
    boot it again, and tell whether the boot needed the repair. A race: whether the crash lands
    in the window depends on the machine; :func:`boot_with_half_deleted_network` makes the same
    state without racing."""
    host.docker("network", "create", network)
    rm = subprocess.Popen(["docker", "network", "rm", network], env=host.env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    host.kill()
    rm.wait()
    return _boot_needed_repair(host)


def boot_with_half_deleted_network(host: Host, network: str) -> bool:
    """Crash ``host`` leaving a new network ``network`` exactly as a kill inside its
    ``docker network rm`` leaves it (``testbed.py half-delete-network``, see tb_netstore),
    boot it again, and tell whether the boot needed the repair (it must, every time)."""
    host.docker("network", "create", network)
    host.testbed.run("half-delete-network", host.name, network)
    return _boot_needed_repair(host)


class Testbed:
    """Start/stop the testbed and reach its hosts; see the module docstring."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, state_dir: Path | None = None, python: str = sys.executable) -> None:
        self.state_dir = state_dir
        self.python = python
        self._lock: IO[str] | None = None

    def run(self, *args: str) -> str:
        """Run one testbed command; return its stdout or raise TestbedError."""
        return self.run_process(*args).stdout

    def run_process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Like :meth:`run`, with the stderr (the testbed's progress lines) too."""
        argv = [self.python, str(SCRIPT)]
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        return _run([*argv, *args])

    def start(self, n: int, *, lock_timeout: float = 240.0) -> None:
        """Take the machine-wide lock, remove any stale testbed, bring up ``n`` hosts."""
        self._acquire(lock_timeout)
        try:
            self.run("down")
            self.run("up", str(n))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """``down`` (removes everything) and release the lock; safe to call twice."""
        try:
            self.run("down")
        finally:
            if self._lock is not None:
                self._lock.close()  # closing the file drops the flock
                self._lock = None

    @property
    def started(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._lock is not None

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.run("status")))

    @property
    def hosts(self) -> list[Host]:
        return [self._host(h) for h in self.status()["hosts"]]

    def host(self, i: int) -> Host:
        """Host number ``i`` (1-based, as in host1)."""
        for entry in self.status()["hosts"]:
            if entry["name"] == f"host{i}":
                return self._host(entry)
        raise TestbedError(f"host{i} is not part of the testbed")

    @property
    def registry(self) -> dict[str, Any]:
        """address (10.77.0.1:5000), username, password of the testbed registry."""
        return dict(self.status()["registry"])

    def push_image(self, image: str, name: str | None = None) -> str:
        """Push a root-daemon image into the registry; return the 10.77.0.1:5000/... reference."""
        extra = ["--name", name] if name else []
        return self.run("push-image", image, *extra).strip()

    def load_image(self, image: str) -> None:
        self.run("load-image", image)

    def agent_start(self, host: Host | str, argv: Sequence[str]) -> int:
        """Start ``argv`` in the host's namespace (DOCKER_HOST set); return its PID."""
        return int(self.run("agent-start", _name(host), "--", *argv).strip())

    def agent_stop(self, host: Host | str) -> None:
        self.run("agent-stop", _name(host))

    def _host(self, entry: dict[str, Any]) -> Host:
        return Host(self, entry["name"], entry["ip"], entry["docker_host"],
                    entry["docker_config"], entry["netns_path"])

    def _acquire(self, timeout: float) -> None:
        if self._lock is not None:
            return
        lock = open(LOCK_FILE, "w")  # noqa: SIM115 - held open until stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise TestbedError(f"another testbed holds {LOCK_FILE} for {timeout:.0f}s") from None
                time.sleep(1)
        self._lock = lock


def _name(host: Host | str) -> str:
    return host.name if isinstance(host, Host) else host


def _run(argv: Sequence[str], env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise TestbedError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


def missing_requirements() -> str | None:
    """Why the testbed cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the testbed needs root"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    if not Path("/var/run/docker.sock").exists():
        return "no Docker Engine at /var/run/docker.sock"
    return None


def ensure_test_images() -> None:
    """Make sure the root daemon has local/busybox:1 (deploy/images/build.sh if present)."""
    env = {**os.environ, "DOCKER_HOST": ROOT_DOCKER}
    if BUILD_IMAGES.exists():
        _run(["bash", str(BUILD_IMAGES)], env=env)
        return
    if _run(["docker", "image", "inspect", "local/busybox:1"], env=env, check=False).returncode == 0:
        return
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"ccs-busybox-{os.getpid()}"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy("/bin/busybox", root / "bin" / "busybox")
        for applet in ("sh", "httpd", "sleep", "echo", "mkdir", "cat"):
            (root / "bin" / applet).symlink_to("busybox")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", "local/busybox:1"], stdin=tar.stdout,
                       env=env, check=True, capture_output=True)
        tar.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Shared:
    """The one testbed of this process, shared by every fixture that asks for one.

    A machine holds one testbed, so a module-scoped fixture and the session fixture must not
    each start their own (the second would wait for the first's lock forever). Fixtures take a
    reference instead; the last one out tears the testbed down.
    """

    bed: Testbed | None = None
    refs = 0


def testbed_fixture(
    hosts: int = 2, *, scope: Scope = "session", images: Sequence[str] = ("local/busybox:1",),
) -> Callable[..., Any]:
    """A pytest fixture that yields a started :class:`Testbed` with at least ``hosts`` hosts.

    ``images`` are loaded into every host (``docker save | docker load``) so tests need no pull.
    All such fixtures in one process share one testbed (see :class:`_Shared`).
    """

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[Testbed]:
        reason = missing_requirements()
        if reason:
            pytest.skip(reason)
        ensure_test_images()
        bed = _Shared.bed
        if bed is None or not bed.started:
            bed = _Shared.bed = Testbed()
            bed.start(hosts)
        else:
            bed.run("up", str(hosts))  # idempotent: only adds missing hosts
        _Shared.refs += 1
        try:
            for image in images:
                bed.load_image(image)
            yield bed
        finally:
            _Shared.refs -= 1
            if _Shared.refs == 0:
                bed.stop()
                _Shared.bed = None

    return _fixture


testbed = testbed_fixture()
