"""Debian's ``docker-registry`` (Distribution 2.8) as the tests run it: its config file with
htpasswd basic auth (and TLS when asked), and the process, stopped whatever happens.

Why one module: the loopback registry fixture (:mod:`tests.integration.registry_fixture`), the
testbed's TLS registry (:mod:`tests.integration.e2e.tls_registry`) and the pipeline build test
each wrote the same config and started and stopped the same process by hand; a fix to one (a
key Distribution renames, a process left behind) was missed in the others. What differs between
them (address, realm, TLS files, how readiness is probed) is a parameter or stays with them.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path


def write_config(base: Path, addr: str, *, user: str, password: str, realm: str = "ccs-test",
                 tls: tuple[Path, Path] | None = None) -> Path:
    """``base/config.yml`` for a registry on ``addr`` (HOST:PORT) storing under ``base/data``
    (deletes allowed), with one htpasswd login (``base/htpasswd``, bcrypt by ``htpasswd -Bbn``)
    and, with ``tls`` = (certificate chain, key), HTTPS only. Returns the config's path."""
    base.mkdir(parents=True, exist_ok=True)
    line = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True,
                          check=True).stdout.strip()
    (base / "htpasswd").write_text(line + "\n")
    http = f"addr: {addr}, secret: {secrets.token_hex(16)}"
    if tls is not None:
        http += f", tls: {{certificate: {tls[0]}, key: {tls[1]}}}"
    config = base / "config.yml"
    config.write_text("\n".join([
        "version: 0.1",
        "log: {level: info}",
        f"storage: {{filesystem: {{rootdirectory: {base / 'data'}}}, delete: {{enabled: true}}}}",
        f"http: {{{http}}}",
        f"auth: {{htpasswd: {{realm: {realm}, path: {base / 'htpasswd'}}}}}",
        "",
    ]))
    return config


@contextlib.contextmanager
def serving(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``docker-registry serve CONFIG``, its output appended to ``log``, in a session of its own
    (a test's Ctrl-C does not reach it first); terminated, then killed, on the way out. The
    caller waits for it to answer (plain HTTP or TLS: it knows which)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
