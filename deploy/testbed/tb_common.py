"""Shared constants, paths and small helpers for the ccs multi-host testbed.

Design choices:
- Every address lives in 10.77.0.0/24 (the bridge ``ccsbr0`` owns 10.77.0.1, host *i* owns
  10.77.0.(10+i)). Nothing in the testbed routes anywhere else: hosts get no default route.
- Every object the testbed creates carries a recognisable name (``ccstb-`` namespaces and veths,
  the ``ccs-testbed`` iptables comment, ``/ccstb-hostN`` cgroups), so ``down`` can find and remove
  leftovers even when the state directory is gone or a previous run crashed half-way.
- Only the standard library is used, so the script runs with any Python >= 3.11 as root, without
  the project's virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BRIDGE = "ccsbr0"
GATEWAY_IP = "10.77.0.1"
PREFIX_LEN = 24
NAME_PREFIX = "ccstb-"
IPT_COMMENT = "ccs-testbed"
REGISTRY_PORT = 5000
REGISTRY_ADDR = f"{GATEWAY_IP}:{REGISTRY_PORT}"
# The root-namespace dockerd trusts 127.0.0.0/8 registries without TLS but not 10.77.0.1, and we
# must not reconfigure a daemon other people use. A second registry front end on this loopback
# alias (not 127.0.0.1, which someone else may own) serves the same storage for pushes.
REGISTRY_LOOPBACK_ADDR = f"127.77.0.1:{REGISTRY_PORT}"
REGISTRY_USER = "ccs"
MAX_HOSTS = 50
DEFAULT_STATE_DIR = Path(os.environ.get("CCS_TESTBED_STATE_DIR", "/var/lib/ccs-testbed"))
NETNS_DIR = Path("/var/run/netns")
MARKER = "testbed.json"
# Proxy variables would send registry traffic from dockerd to a proxy outside 10.77.0.0/24.
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class TestbedError(Exception):
    """A failure the CLI reports as one clear line (exit code 1) instead of a traceback."""


@dataclass(frozen=True)
class HostLayout:
    """Names, addresses and paths of simulated host number ``index`` (1-based)."""

    index: int
    state_dir: Path

    @property
    def name(self) -> str:
        return f"host{self.index}"

    @property
    def netns(self) -> str:
        return f"{NAME_PREFIX}{self.name}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def veth(self) -> str:
        """Root-namespace end of the host's veth; its peer is ``eth0`` inside the namespace."""
        return f"{NAME_PREFIX}h{self.index}"

    @property
    def ip(self) -> str:
        return f"10.77.0.{10 + self.index}"

    @property
    def bip(self) -> str:
        """docker0 inside the host: distinct per host and outside 10.77.0.0/24."""
        return f"10.78.{self.index}.1/24"

    @property
    def address_pool(self) -> str:
        """User-defined Docker networks on this host come from a per-host /16."""
        return f"base=10.{100 + self.index}.0.0/16,size=24"

    @property
    def cgroup_parent(self) -> str:
        return f"/{NAME_PREFIX}{self.name}"

    @property
    def dir(self) -> Path:
        return self.state_dir / "hosts" / self.name

    @property
    def docker_sock(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_sock}"

    @property
    def docker_config(self) -> Path:
        """Per-host docker CLI config holding this host's registry login."""
        return self.dir / "docker-config"

    @property
    def dockerd_pidfile(self) -> Path:
        return self.dir / "dockerd.pid"

    @property
    def agent_pidfile(self) -> Path:
        return self.dir / "agent.pid"

    @property
    def agent_spec(self) -> Path:
        """argv of the agent, kept so that ``start`` brings the agent back like a boot would."""
        return self.dir / "agent.json"

    def env(self) -> dict[str, str]:
        """Environment for clients and agents that talk to this host's dockerd."""
        return {
            "DOCKER_HOST": self.docker_host,
            "DOCKER_CONFIG": str(self.docker_config),
            "CCS_TESTBED_HOST": self.name,
            "CCS_TESTBED_IP": self.ip,
            "CCS_TESTBED_NETNS": str(self.netns_path),
        }


def parse_host(name: str, state_dir: Path) -> HostLayout:
    """Accept ``host3`` or ``3``; reject anything else with a message naming the argument."""
    digits = name[4:] if name.startswith("host") else name
    if not digits.isdigit() or not 1 <= int(digits) <= MAX_HOSTS:
        raise TestbedError(f"HOST: expected host1..host{MAX_HOSTS} (or 1..{MAX_HOSTS}), got {name!r}")
    return HostLayout(int(digits), state_dir)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without proxy settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; on failure raise TestbedError with its stderr."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, env=clean_env(env), input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise TestbedError(f"{' '.join(argv)} failed ({proc.returncode}): {detail}")
    return proc


def log(message: str) -> None:
    """Progress goes to stderr so that stdout stays machine-readable (status JSON, env)."""
    print(f"testbed: {message}", file=sys.stderr, flush=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically so a crash never leaves half a state file behind."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
