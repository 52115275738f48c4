"""The ``ccs`` CLI run as a user runs it: a subprocess of ``python -m cli``, from the repository
root, with a config file, a timeout and a bare environment.

Why one module: the tests that drive the CLI as a process each had their own copy of this
(``run``/``ok``/``cli``), with the same argv, environment and exit-code assertion, and the
copies drifted (timeouts, stdin, bytes or text). Here it is written once.

Why a bare environment (``PATH`` and ``HOME`` only, plus what a caller adds): the CLI must not
pick up the developer's or the CI runner's ``CCS_*`` variables or ``~/.ccs`` config, so a test
sees what a user with only the given config file sees. ``HOME`` defaults to the config file's
folder (the per-server state folder the fixtures create).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[2]
PATH = "/usr/bin:/bin"


class Configured(Protocol):
    """A server fixture (``ServerProc``) or anything with the client config file to use."""

    @property
    def config_path(self) -> Path: ...


def command(*args: str) -> list[str]:
    """The argv of ``ccs ARGS`` (for callers that need a ``Popen``: a terminal, a follow)."""
    return [sys.executable, "-m", "cli", *args]


def environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``PATH`` and ``HOME``, then ``extra`` (which may replace either)."""
    return {"PATH": PATH, "HOME": str(home), **(extra or {})}


def run_cli(*args: str, home: Path, stdin: str | None = None, timeout: float = 60,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ccs ARGS`` with text output, whatever its exit code (see :func:`checked`)."""
    return subprocess.run(command(*args), capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          input=stdin, env=environment(home, env))


def config_of(server: Configured | Path) -> Path:
    """The client config file: the server fixture's, or the path given."""
    return server if isinstance(server, Path) else server.config_path


def cli(server: Configured | Path, *args: str, stdin: str | None = None, timeout: float = 60,
        home: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ccs --config <the server's client config, or the path given> ARGS``, whatever its exit code."""
    config = config_of(server)
    return run_cli("--config", str(config), *args, home=home or config.parent, stdin=stdin, timeout=timeout, env=env)


def checked(server: Configured | Path, *args: str, stdin: str | None = None, timeout: float = 60,
            home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """As :func:`cli`, asserting exit code 0 (the failure shows the arguments and both outputs)."""
    res = cli(server, *args, stdin=stdin, timeout=timeout, home=home)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def ok(server: Configured | Path, *args: str, stdin: str | None = None, timeout: float = 60,
       home: Path | None = None) -> str:
    """The standard output of :func:`checked`."""
    return checked(server, *args, stdin=stdin, timeout=timeout, home=home).stdout


def cli_bytes(server: Configured, *args: str, stdin: bytes | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """As :func:`cli`, with bytes in and out (``ccs exec`` passes a program's bytes through)."""
    return subprocess.run(command("--config", str(server.config_path), *args), capture_output=True, cwd=ROOT,
                          timeout=timeout, input=stdin, env=environment(server.config_path.parent))
