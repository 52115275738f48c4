"""The testbed's one image registry (Distribution 2.8, ``docker-registry serve``) and image moves.

Design choices:
- Basic auth from an htpasswd file (``htpasswd -Bbn``) with a random password stored in the
  state directory, so every pull in the testbed uses real credentials.
- Two front ends share one storage directory: 10.77.0.1:5000 for the hosts, and 127.77.0.1:5000
  for pushes from the root-namespace dockerd, which trusts plain HTTP only on 127.0.0.0/8 and
  must not be reconfigured (other work uses it). Both use the same config and http secret and no
  blob-descriptor cache, so neither can serve stale metadata written through the other.
- The root docker CLI uses a private DOCKER_CONFIG, so our login never touches /root/.docker.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import tb_procs
from tb_common import (
    REGISTRY_ADDR,
    REGISTRY_LOOPBACK_ADDR,
    REGISTRY_USER,
    HostLayout,
    TestbedError,
    clean_env,
    log,
    run,
)

FRONT_ENDS = {"bridge": REGISTRY_ADDR, "loopback": REGISTRY_LOOPBACK_ADDR}


def registry_dir(state_dir: Path) -> Path:
    return state_dir / "registry"


def root_docker_config(state_dir: Path) -> Path:
    return state_dir / "root-docker-config"


def ensure_credentials(state_dir: Path) -> str:
    """Return the registry password, creating it and the htpasswd file on first use."""
    rdir = registry_dir(state_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    pw_file = rdir / "password"
    if not pw_file.exists():
        pw_file.write_text(secrets.token_urlsafe(18) + "\n")
        pw_file.chmod(0o600)
    password = pw_file.read_text().strip()
    htpasswd = rdir / "htpasswd"
    if not htpasswd.exists():
        line = run(["htpasswd", "-Bbn", REGISTRY_USER, password]).stdout.strip()
        htpasswd.write_text(line + "\n")
    return password


def _config(state_dir: Path, addr: str) -> str:
    rdir = registry_dir(state_dir)
    secret_file = rdir / "http-secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(16) + "\n")
    return "\n".join([
        "version: 0.1",
        "log:",
        "  level: info",
        "  fields: {service: ccs-testbed-registry}",
        "storage:",
        f"  filesystem: {{rootdirectory: {rdir / 'data'}}}",
        "  delete: {enabled: true}",
        "http:",
        f"  addr: {addr}",
        f"  secret: {secret_file.read_text().strip()}",
        "auth:",
        f"  htpasswd: {{realm: ccs-testbed, path: {rdir / 'htpasswd'}}}",
        "",
    ])


def registry_pid(state_dir: Path, front: str) -> int | None:
    rdir = registry_dir(state_dir)
    return tb_procs.owned_pid(rdir / f"{front}.pid", None, str(rdir / f"{front}.yml"))


def start_registry(state_dir: Path) -> None:
    ensure_credentials(state_dir)
    rdir = registry_dir(state_dir)
    (rdir / "data").mkdir(exist_ok=True)
    for front, addr in FRONT_ENDS.items():
        if registry_pid(state_dir, front) is not None:
            continue
        cfg = rdir / f"{front}.yml"
        cfg.write_text(_config(state_dir, addr))
        with open(rdir / f"{front}.log", "ab") as out:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(cfg)], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, env=clean_env(), close_fds=True,
            )
        (rdir / f"{front}.pid").write_text(f"{proc.pid}\n")
    for addr in FRONT_ENDS.values():
        _wait_http(addr)


def _wait_http(addr: str, timeout: float = 30.0) -> None:
    """The registry is up when ``/v2/`` answers 401 (auth required) to an anonymous request."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            opener.open(f"http://{addr}/v2/", timeout=2)
            raise TestbedError(f"registry at {addr} answers without authentication")
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.2)
    raise TestbedError(f"registry at {addr} not ready after {timeout:.0f}s: {last}")


def stop_registry(state_dir: Path) -> None:
    pids = {p for f in FRONT_ENDS if (p := registry_pid(state_dir, f)) is not None}
    tb_procs.terminate(pids, 10)


def target_ref(image: str, name: str | None) -> str:
    """Repository path for ``image`` in the registry: its name without any registry host."""
    ref = name or image
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    if not ref or ref.startswith("/"):
        raise TestbedError(f"IMAGE: cannot derive a repository name from {image!r}")
    return ref


def push_image(state_dir: Path, image: str, name: str | None = None) -> str:
    """Tag ``image`` from the root dockerd, push it, untag; return the 10.77.0.1:5000/... ref."""
    password = ensure_credentials(state_dir)
    path = target_ref(image, name)
    via = f"{REGISTRY_LOOPBACK_ADDR}/{path}"
    cfg = root_docker_config(state_dir)
    cfg.mkdir(parents=True, exist_ok=True)
    env = {"DOCKER_CONFIG": str(cfg), "DOCKER_HOST": "unix:///var/run/docker.sock"}
    run(["docker", "login", REGISTRY_LOOPBACK_ADDR, "--username", REGISTRY_USER,
         "--password-stdin"], env=env, input_text=password)
    run(["docker", "image", "inspect", image], env=env)
    run(["docker", "tag", image, via], env=env)
    try:
        run(["docker", "push", via], env=env)
    finally:
        run(["docker", "rmi", "--no-prune", via], env=env, check=False)
    return f"{REGISTRY_ADDR}/{path}"


def load_image(state_dir: Path, image: str, hosts: list[HostLayout]) -> None:
    """``docker save`` from the root dockerd once, ``docker load`` into each given host."""
    root_env = {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    with tempfile.TemporaryDirectory(dir=state_dir) as tmp:
        tar = Path(tmp) / "image.tar"
        run(["docker", "save", "-o", str(tar), image], env=root_env)
        for host in hosts:
            log(f"loading {image} into {host.name}")
            run(["docker", "load", "-q", "-i", str(tar)], env=host.env())

