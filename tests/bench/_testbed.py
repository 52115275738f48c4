"""The 3-host testbed with etcd, ccs-server and one agent per host, for benchmark scripts.

Why reuse the e2e suite's :class:`Cluster3` (``tests/integration/e2e/conftest.py``) instead of
writing another: the benchmarks then measure exactly the processes the end-to-end tests start
(same server flags, same agent command line, same testbed), and its helpers (CLI, SDK,
``docker`` on a host) come for free. Only the pytest fixture around it is replaced by
:func:`cluster3`, a context manager with the same steps and the same teardown.

``local/netbench:1`` (``netbench.c``, compiled statically here) is made the way
``deploy/images/build.sh`` makes its images: a busybox root with ``docker import``, no base
image and no registry; it carries the hash of its inputs and is rebuilt only when they change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import tests.testbed as tb  # noqa: E402
from tests.conftest import free_port, start_etcd  # noqa: E402
from tests.integration.e2e.conftest import CLUSTER, Cluster3  # noqa: E402

NETBENCH = "local/netbench:1"
NETBENCH_SRC = HERE / "netbench.c"
BUSYBOX = Path("/bin/busybox")
ROOT_ENV = {**os.environ, "DOCKER_HOST": tb.ROOT_DOCKER}
LOCK_WAIT = 1800.0  # the testbed is one per machine; e2e sessions may hold it for many minutes


def _image_hash() -> str:
    return hashlib.sha256(NETBENCH_SRC.read_bytes() + BUSYBOX.read_bytes()).hexdigest()[:16]


def build_netbench_image() -> None:
    """``local/netbench:1`` on the root dockerd: busybox plus ``/bin/netbench`` (static)."""
    digest = _image_hash()
    have = subprocess.run(
        ["docker", "image", "inspect", "-f", '{{index .Config.Labels "ccs-bench.image-hash"}}', NETBENCH],
        capture_output=True, text=True, env=ROOT_ENV, check=False).stdout.strip()
    if have == digest:
        return
    with tempfile.TemporaryDirectory(prefix="netbench-") as work:
        root = Path(work) / "root"
        (root / "bin").mkdir(parents=True)
        (root / "tmp").mkdir()
        (root / "etc").mkdir()
        shutil.copy(BUSYBOX, root / "bin" / "busybox")
        applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        gcc = subprocess.run(["gcc", "-O2", "-static", "-o", str(root / "bin" / "netbench"), str(NETBENCH_SRC)],
                             capture_output=True, text=True, check=False)
        if gcc.returncode != 0:
            raise RuntimeError(f"cannot compile netbench.c (apt-get install -y gcc libc6-dev):\n{gcc.stderr}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "--change", f"LABEL ccs-bench.image-hash={digest}",
                        "--change", "ENV PATH=/bin", "--change", 'CMD ["sh"]', "-", NETBENCH],
                       stdin=tar.stdout, env=ROOT_ENV, check=True, capture_output=True)
        tar.wait()


@contextlib.contextmanager
def cluster3(images: tuple[str, ...] = ("local/busybox:1", NETBENCH), keep: bool = False) -> Iterator[Cluster3]:
    """etcd, ccs-server, the 3-host testbed, cluster ``e2e`` and 3 READY agents (as the e2e
    fixture makes them); everything is stopped and removed on exit."""
    reason = tb.missing_requirements()
    if reason:
        raise SystemExit(f"cannot run on the testbed: {reason}")
    tb.ensure_test_images()
    build_netbench_image()
    workdir = Path(tempfile.mkdtemp(prefix="ccs-bench-tb-"))
    bed = tb.Testbed()
    if not _try_lock():
        print(f"waiting for the testbed lock {tb.LOCK_FILE} (another session holds it) ...", flush=True)
    bed.start(3, lock_timeout=LOCK_WAIT)
    etcd = None
    c: Cluster3 | None = None
    try:
        for image in images:
            bed.load_image(image)
        etcd = start_etcd(workdir)
        c = Cluster3(bed, etcd, None, free_port(), workdir)  # type: ignore[arg-type]
        c.start_server()
        c.ccs("cluster", "create", CLUSTER)
        c.join_token = c.ccs("cluster", "join-token", CLUSTER).stdout.strip()
        for h in c.host_names:
            c.start_agent(h)
        c.wait_nodes_ready()
        yield c
    finally:
        if c is not None:
            for h in c.host_names:
                subprocess.run([sys.executable, str(tb.SCRIPT), "agent-stop", h], capture_output=True, check=False)
            c.save_logs()
            if c.server is not None:
                c.server.stop(signal.SIGTERM)
        bed.stop()
        if etcd is not None:
            etcd.stop()
        if keep:
            print(f"(kept logs in {workdir / 'logs'})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _try_lock() -> bool:
    """Whether the testbed lock is free right now (only to say that we are waiting)."""
    import fcntl

    with open(tb.LOCK_FILE, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True
