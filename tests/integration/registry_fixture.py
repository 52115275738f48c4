"""A real image registry for integration tests: Debian's ``docker-registry`` (Distribution 2.8)
on a free 127.0.0.1 port, htpasswd basic auth (``htpasswd -Bbn``), its own storage directory.

The root Engine trusts 127.0.0.0/8 registries over plain HTTP, so ``docker push`` works without
TLS; the docker CLI logs in with a private ``DOCKER_CONFIG`` (never /root/.docker), so the
Engine's own pulls have no credentials for it: a pull that works went with ccs's pull auth.
Pushing uses the Docker Engine: run under ``flock /run/ccs-docker.lock`` (BRIEFING).
"""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.registry_process import serving, write_config

USER = "ci"


@dataclass(frozen=True)
class Registry:
    addr: str  # 127.0.0.1:PORT
    user: str
    password: str
    docker_config: Path

    def _docker(self, *args: str, stdin: str | None = None) -> str:
        res = subprocess.run(["docker", *args], capture_output=True, text=True, input=stdin, timeout=120,
                             env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_CONFIG": str(self.docker_config),
                                  "DOCKER_HOST": "unix:///var/run/docker.sock"}, check=False)
        if res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {res.stdout}{res.stderr}")
        return res.stdout

    def push(self, image: str, repo: str) -> str:
        """Push local ``image`` as ``ADDR/repo``, untag it again; return the pushed digest."""
        target = f"{self.addr}/{repo}"
        self._docker("login", self.addr, "-u", self.user, "--password-stdin", stdin=self.password)
        self._docker("tag", image, target)
        try:
            out = self._docker("push", target)
        finally:
            # Untagged again (with its digest reference), so a node must pull it, with credentials.
            self._docker("rmi", "--no-prune", target)
        digest = next(w for line in out.splitlines() if "digest:" in line for w in line.split()
                      if w.startswith("sha256:"))
        return digest


def _wait(addr: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("docker-registry exited at start")
        try:
            opener.open(f"http://{addr}/v2/", timeout=2)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"docker-registry at {addr} not ready")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("registry")
    password = secrets.token_urlsafe(18)
    addr = f"127.0.0.1:{free_port()}"
    config = write_config(base, addr, user=USER, password=password)
    (base / "docker-config").mkdir()
    with serving(config, base / "registry.log") as proc:
        _wait(addr, proc)
        yield Registry(addr, USER, password, base / "docker-config")
