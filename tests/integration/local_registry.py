"""A Distribution registry (Debian ``docker-registry``) on a loopback port, for tests that push.

Without authentication: the engine trusts 127.0.0.0/8 registries without TLS, and a test must not
``docker login`` the machine's engine (its ~/.docker/config.json is shared). Registry credentials
are the i13-registry work's to test (deploy/testbed/tb_registry.py runs one with htpasswd).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port
from tests.integration import polling

__all__ = ["local_registry", "manifest_digest"]

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(addr: str) -> bool:
    try:
        with _opener().open(f"http://{addr}/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def local_registry(directory: Path) -> Iterator[str]:
    """Run a registry storing under ``directory``; yields its ``127.0.0.1:PORT``."""
    directory.mkdir(parents=True, exist_ok=True)
    addr = f"127.0.0.1:{free_port()}"
    config = directory / "registry.yml"
    config.write_text(f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: "
                      f"{directory / 'data'}}}\nhttp:\n  addr: {addr}\n")
    with (directory / "registry.log").open("ab") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    try:
        polling.wait_for(f"the registry at {addr}", lambda: _answers(addr) or None, timeout=30)
        yield addr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def manifest_digest(addr: str, repository: str, tag: str) -> str:
    """The digest the registry serves for ``repository:tag`` (its Docker-Content-Digest)."""
    req = urllib.request.Request(f"http://{addr}/v2/{repository}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": MANIFEST_TYPES})
    with _opener().open(req, timeout=10) as resp:
        return str(resp.headers["Docker-Content-Digest"])
