"""The systemd units in ``deploy/systemd/`` as ``deploy/install.sh --systemd`` installs them
(its ``deploy/install-systemd.sh``, pointed at a temporary directory instead of /etc), checked by
``systemd-analyze verify`` (Debian's ``systemd`` package gives it without systemd as PID 1):
rendered paths that exist, no unknown key or bad value (verify only warns about those, so the
installer fails on any output), and env files created 0600 once and kept afterwards."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("ccs-server", "ccs-agent")


def install(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CCS_INSTALL_UNIT_DIR": str(tmp_path / "units"), "CCS_INSTALL_ETC_DIR": str(tmp_path / "etc")}
    return subprocess.run(["bash", str(ROOT / "deploy" / "install-systemd.sh")], env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def test_the_units_install_and_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    done = install(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "systemd-analyze verify: ok" in done.stdout and done.stderr == ""
    for unit in UNITS:
        text = (tmp_path / "units" / f"{unit}.service").read_text()
        lines = text.splitlines()
        assert "Restart=always" in lines and "NoNewPrivileges=yes" in lines
        env_file = tmp_path / "etc" / ("server.env" if unit == "ccs-server" else "agent.env")
        assert f"EnvironmentFile={env_file}" in lines
        assert f"ExecStart={ROOT}/.venv/bin/{unit}" in lines  # no flag would override the env file
        assert "@PREFIX@" not in text and "@ETC@" not in text
        assert env_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc").stat().st_mode & 0o777 == 0o700
    server = (tmp_path / "units" / "ccs-server.service").read_text().splitlines()
    assert {"CapabilityBoundingSet=", "ProtectSystem=strict", "ReadWritePaths=/var/lib/ccs"} <= set(server)
    agent = (tmp_path / "units" / "ccs-agent.service").read_text().splitlines()
    caps = next(line for line in agent if line.startswith("CapabilityBoundingSet=")).split("=", 1)[1].split()
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"} <= set(caps)


def test_a_reinstall_keeps_the_operators_env_files(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    env_file = tmp_path / "etc" / "agent.env"
    env_file.write_text("CCS_AGENT_SERVER=ccs.example.com:7443\n")
    done = install(tmp_path)
    assert done.returncode == 0 and f"{env_file} kept" in done.stdout
    assert env_file.read_text() == "CCS_AGENT_SERVER=ccs.example.com:7443\n"


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check is real: a unit with an unknown key or a missing binary does not pass it."""
    assert install(tmp_path).returncode == 0
    unit = tmp_path / "units" / "ccs-agent.service"
    unit.write_text(unit.read_text().replace("Restart=always", "Restart=always\nRestartt=always"))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                         check=False)
    assert "Unknown key 'Restartt'" in out.stdout + out.stderr
